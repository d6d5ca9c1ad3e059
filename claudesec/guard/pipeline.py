"""The zero-trust pipeline every Claude call goes through: identity -> policy -> DLP -> call ->
record.

It works on plain request and response data (a method, a path, the JSON body, status, headers
and body bytes), never on SDK objects, and never imports ``anthropic``: the audited client
(:mod:`claudesec.guard.client`) is one thin adapter over it, and a network gateway can be
another. An adapter does three things per HTTP attempt::

    admission = pipeline.admit(caller, ApiRequest("POST", "/v1/messages", body))
    # raises CallDenied (already recorded) before anything is sent
    send admission.body
    pipeline.finish(admission, Outcome(status=200, input_tokens=..., ...))
    # or, for an SSE response: monitor = pipeline.stream_monitor(admission, ...);
    # forward monitor.feed(chunk) for each chunk; monitor.finish("complete" | "abandoned" | ...)

What is recorded: one record per HTTP attempt (the SDK retries a 429 or 5xx: each attempt is
its own record, with ``attempt`` in its extra fields), allowed or denied, with the HTTP status
the caller got as ``http_status`` (the alert on bursts of 401s reads it). Allowed calls may be
sampled (``audit.sample_rates``); denials, redactions, DLP hits and errors are always kept.

A gateway (``claudesec proxy``) is one more adapter: it establishes who calls from its own
credential (``Caller(identity=...)``, source ``proxy_token``), records refusals that happen
before anyone is identified with :meth:`AuditPipeline.reject`, and describes itself in
``ApiRequest.origin`` (recorded as ``via``, ``client``, ``token_id``...). It answers a
:class:`CallDenied` with :attr:`CallDenied.status`, which the denial's record already carries.

Write ahead: :meth:`AuditPipeline.admit` commits an ``admission`` record (who, role, model,
prompt hash, path, the gateway's request id) before it returns, so before any byte goes
upstream; :meth:`AuditPipeline.finish` writes the attempt's ``call`` record with
``admission_seq`` pointing back at it. Both are in the hash chain. A process killed in between
leaves an admission without a completion: ``logs query --incomplete`` lists it and
``logs verify`` counts it (an interrupted call, not tampering). A writer with an intent journal
(the audited client's own store and the proxy's, see
:func:`claudesec.audit.writer.journaled_writer`) takes the admission as a journal line instead,
and the ``call`` record carries its ``call_id``; a crash leaves the line, which the next writer
imports as the admission record. Sampled-out calls write
neither record unless their outcome must be kept (errors, DLP). Event loops use
:meth:`AuditPipeline.admit_async` / :meth:`AuditPipeline.finish_async`, which never wait on
SQLite on the loop.

Fail closed: when the admission record cannot be committed the call is refused (503,
``audit.unavailable``) before anything is sent; when the outcome record cannot be written,
:meth:`AuditPipeline.finish` raises :class:`AuditUnavailable` instead of handing the response
over; and the pipeline refuses every later call before sending anything, until a record (the
refusal itself) can be written again. No call reaches the API without its admission record.
With ``audit.fail_closed = false`` the call proceeds and a :class:`AuditWriteWarning` is
issued (and logged) instead.
"""

from __future__ import annotations

import asyncio
import atexit
import hashlib
import hmac
import json
import logging
import os
import random
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from claudesec.audit.events import AuditEvent, Decision, EventType
from claudesec.audit.intents import CALL_ID
from claudesec.errors import ClaudesecError
from claudesec.guard.dlp import (
    DlpReport,
    DlpScanner,
    Finding,
    RequestInspection,
)
from claudesec.guard.jsonbody import MAX_DEPTH, json_depth, text_has_lone_surrogate
from claudesec.guard.model import (
    Admission,
    ApiRequest,
    AuditUnavailable,
    AuditWriteWarning,
    CallDenied,
    Caller,
    Origin,
    Outcome,
    RecordSink,
    StreamEnd,
    Usage,
    denial_status,
    positive_int,
    short_str,
)
from claudesec.guard.stream import SseMonitor, finalize_on_collect

if TYPE_CHECKING:
    from claudesec.audit.intents import IntentJournal
    from claudesec.audit.prompt_vault import PromptVault
    from claudesec.audit.secrets import AuditKeys
    from claudesec.audit.store import StoredRecord
    from claudesec.audit.writer import BackgroundWriter
    from claudesec.config import Config, PolicyConfig
    from claudesec.guard.identity import Identity, OidcVerifier
    from claudesec.guard.policy import Policy, PolicyDecision

log = logging.getLogger("claudesec.audit")

ResponseMode = Literal["off", "secrets", "all"]
__all__ = [
    "Admission",
    "ApiRequest",
    "AuditPipeline",
    "AuditUnavailable",
    "AuditWriteWarning",
    "CallDenied",
    "Caller",
    "Origin",
    "Outcome",
    "RecordSink",
    "SseMonitor",
    "StreamEnd",
    "Usage",
    "denial_status",
    "finalize_on_collect",
    "resolve_environment",
]

_MESSAGE_PATHS = ("/v1/messages", "/v1/messages/count_tokens")
_BATCH_PATH = "/v1/messages/batches"
_IDENTITY_CACHE = 256


def resolve_environment(explicit: str | None, configured: str) -> str:
    """The environment that picks the sample rate: argument, then CLAUDESEC_ENV, then config."""
    return explicit or os.environ.get("CLAUDESEC_ENV", "") or configured or "prod"


class AuditPipeline:
    """Identity -> policy -> DLP -> record, over plain request data. Thread-safe.

    Build with :meth:`from_config`. One pipeline serves any number of callers and clients;
    it holds the store, the policy (with its token budgets) and the compiled detectors.
    """

    def __init__(
        self,
        *,
        store: RecordSink,
        policy: Policy,
        scanner: DlpScanner,
        prompt_key: bytes,
        verifier: OidcVerifier | None = None,
        fail_closed: bool = True,
        responses: ResponseMode = "secrets",
        environment: str = "prod",
        sample_rate: float = 1.0,
        rng: Callable[[], float] = random.random,
        owns_store: bool = False,
        prompt_vault: PromptVault | None = None,
    ) -> None:
        self.store = store
        self.prompt_vault = prompt_vault
        self.policy = policy
        self.scanner = scanner
        self.verifier = verifier
        self.fail_closed = fail_closed
        self.responses: ResponseMode = responses
        self.environment = environment
        self.sample_rate = min(1.0, max(0.0, sample_rate))
        self._prompt_key = prompt_key
        self._rng = rng
        self._owns_store = owns_store
        self._lock = threading.Lock()
        self._store_broken = False
        self._identities: dict[tuple[str, str], tuple[Identity, float]] = {}
        self._recordable_cache: dict[str, str] = {}

    @classmethod
    def from_config(
        cls,
        config: Config | None = None,
        *,
        store: RecordSink | None = None,
        policy: Policy | PolicyConfig | None = None,
        verifier: OidcVerifier | None = None,
        keys: AuditKeys | None = None,
        environment: str | None = None,
        rng: Callable[[], float] | None = None,
    ) -> AuditPipeline:
        """A pipeline from the configuration (found from the current directory if None).

        ``store`` defaults to the configured audit store (opened now, so a store that cannot
        be written fails here, before any call); ``policy`` to ``[policy]``; ``verifier`` to
        one for ``[identity]`` when an issuer is configured.
        """
        from claudesec.audit.secrets import AuditKeys
        from claudesec.audit.store import AuditStore
        from claudesec.config import PolicyConfig, load_config
        from claudesec.guard.policy import Policy, validate_policy

        if config is None:
            config = load_config().config
        if isinstance(policy, PolicyConfig):
            validate_policy(policy, config.identity.group_roles)
            policy = Policy(config=policy)
        elif policy is None:
            policy = Policy.from_config(config)
        if verifier is None:
            from claudesec.guard.identity import oidc_verifier

            verifier = oidc_verifier(config.identity)
        scanner = DlpScanner.from_config(config.dlp)
        owns = store is None
        if store is None:
            store = AuditStore.from_config(config.audit)
        try:
            prompt_key = (keys or AuditKeys.from_config(config.audit)).prompt_key()
        except BaseException:
            if owns and isinstance(store, AuditStore):
                store.close()
            raise
        vault = None
        if config.prompt_vault.enabled:
            from claudesec.audit.prompt_vault import PromptVault

            try:
                # A missing key-encryption key fails here, before any call is made.
                vault = PromptVault.from_config(config.prompt_vault)
            except BaseException:
                if owns and isinstance(store, AuditStore):
                    store.close()
                raise
        env = resolve_environment(environment, config.audit.environment)
        if owns and vault is None:
            store = _queued_outcomes(store)
        return cls(
            store=store,
            policy=policy,
            scanner=scanner,
            prompt_key=prompt_key,
            verifier=verifier,
            fail_closed=config.audit.fail_closed,
            responses=config.dlp.responses,
            environment=env,
            sample_rate=config.audit.sample_rates.get(env, 1.0),
            rng=rng or random.random,
            owns_store=owns,
            prompt_vault=vault,
        )

    def close(self) -> None:
        """Close the store if this pipeline opened it, and the prompt vault."""
        close = getattr(self.store, "close", None)
        if self._owns_store and callable(close):
            close()
        if self.prompt_vault is not None:
            self.prompt_vault.close()

    # ----------------------------------------------------------------- identity

    def identify(self, caller: Caller) -> Identity:
        """The caller's verified identity (cached per token until it expires)."""
        from claudesec.guard.identity import resolve_identity

        if caller.identity is not None:
            return caller.identity
        if not caller.token:
            return resolve_identity(user=caller.user, policy=self.policy.config)
        key = (caller.token, caller.user or "")
        now = time.time()
        cached = self._identities.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        identity = resolve_identity(
            user=caller.user, token=caller.token, verifier=self.verifier, policy=self.policy.config
        )
        expires = min(_token_expiry(caller.token), now + 300)
        with self._lock:
            if len(self._identities) >= _IDENTITY_CACHE:
                self._identities.clear()
            self._identities[key] = (identity, expires)
        return identity

    # ----------------------------------------------------------------- admission

    def admit(self, caller: Caller, request: ApiRequest) -> Admission:
        """Decide one attempt before anything is sent: returns what to send, or raises
        :class:`CallDenied` after recording the denial.

        An allowed attempt's admission record is committed before this returns (write
        ahead): send nothing before it does. Blocks on the store; see :meth:`admit_async`.
        """
        admission = self._judge(caller, request)
        if not admission.sampled:
            return admission
        return self._admitted(admission, self._write_ahead(admission))

    async def admit_async(self, caller: Caller, request: ApiRequest) -> Admission:
        """:meth:`admit` for an event loop: the admission record's commit is awaited (one
        group commit shared with concurrent calls through a queued writer's ``submit``, or
        a worker thread for a plain store), never waited for on the loop."""
        admission = self._judge(caller, request)
        if not admission.sampled:
            return admission
        if getattr(self.store, "journal", None) is not None:
            return self._admitted(admission, self._write_ahead(admission))  # one write()
        submit = getattr(self.store, "submit", None)
        if submit is None:
            return await asyncio.to_thread(
                lambda: self._admitted(admission, self._write_ahead(admission))
            )
        event = self._admission_event(admission)
        record: StoredRecord | BaseException
        try:
            # The writer thread idle: one commit here beats two thread hops (a lone call's
            # case); busy: the call joins its next group commit.
            now = getattr(self.store, "append_now", None)
            done = now(event) if now is not None else None
            record = done if done is not None else await asyncio.wrap_future(submit(event))
        except (ClaudesecError, OSError) as exc:
            record = exc
        return self._admitted(admission, record)

    def _write_ahead(self, admission: Admission) -> StoredRecord | Admission | BaseException:
        journal = getattr(self.store, "journal", None)
        if journal is not None:
            return self._journal_ahead(admission, journal)
        event = self._admission_event(admission)
        now = getattr(self.store, "append_now", None)
        durable = getattr(self.store, "append_durable", None)
        try:
            # A queued writer idle: commit here, with the outcomes queued before it (one
            # commit per call, and no thread hop); busy: join its next group commit.
            record = now(event) if callable(now) else None
            if record is None:
                record = durable(event) if callable(durable) else self.store.append(event)
        except (ClaudesecError, OSError) as exc:
            return exc
        if record is None:
            # A sink that only queues cannot say the record is durable: fail like a failed write.
            return AuditUnavailable("the record sink cannot write ahead (it only queues)")
        return record

    def _journal_ahead(
        self, admission: Admission, journal: IntentJournal
    ) -> Admission | BaseException:
        """The admission made durable in the client's intent journal (one ``write()``, no
        commit); its call record, queued later, carries the same ``call_id``."""
        # A failing store has refused the call already, in _judge (recording_problem).
        call_id = journal.new_call_id()
        event = self._admission_event(admission, call_id)
        try:
            journal.admit(call_id, event)
        except OSError as exc:
            return exc
        return replace(admission, call_id=call_id)

    def _admitted(
        self, admission: Admission, record: StoredRecord | Admission | BaseException
    ) -> Admission:
        """The admission with its record's seq (or journal call id); or, when the record
        could not be written, the refusal (fail closed) or the warning (fail open)."""
        if not isinstance(record, BaseException):
            if self._store_broken:
                with self._lock:
                    self._store_broken = False
            if isinstance(record, Admission):
                return record
            return replace(admission, admission_seq=record.seq)
        text = record.message if isinstance(record, ClaudesecError) else type(record).__name__
        with self._lock:
            self._store_broken = True
        if self.fail_closed:
            log.error("claudesec admission record not written (call refused): %s", text)
            request = admission.request
            self._deny(
                request,
                admission.started,
                "audit.unavailable",
                f"the audit log cannot be written ({text}), so calls are refused "
                "(audit.fail_closed)",
                user=admission.identity.user,
                role=admission.role,
                source=admission.identity.source,
                model=admission.model,
                hint="fix the audit store; the next call is allowed once it records again",
            )
        log.warning("claudesec admission record not written (call proceeds): %s", text)
        warnings.warn(
            AuditWriteWarning(
                f"claudesec could not write an audit record ({text}); the call proceeds "
                "because audit.fail_closed is off"
            ),
            stacklevel=3,
        )
        return admission

    def _admission_event(self, admission: Admission, call_id: str = "") -> AuditEvent:
        request = admission.request
        extra: dict[str, Any] = {"path": request.path, **admission.extra}
        if call_id:
            extra[CALL_ID] = call_id
        if request.attempt:
            extra["attempt"] = request.attempt
        if request.origin is not None:
            extra.update(request.origin.fields(refused=False))
        if request.stream:
            extra["stream"] = True
        # No decision, tokens or DLP kinds: those (and the rollup counters they feed) belong
        # to the call's own record, which completes this one.
        return AuditEvent(
            type=EventType.ADMISSION,
            user=admission.identity.user,
            role=admission.role,
            identity_source=admission.identity.source,
            model=admission.model,
            prompt_hash=admission.prompt_hash,
            reason="admitted",
            upstream=request.upstream,
            extra=extra,
        )

    def _judge(self, caller: Caller, request: ApiRequest) -> Admission:
        """Identity, policy and DLP: the admission, or :class:`CallDenied` once recorded."""
        from claudesec.guard.identity import IdentityProviderError, IdentityRejected

        started = time.perf_counter()
        if caller.identity is not None:
            source: str = caller.identity.source
        else:
            source = "oidc" if caller.token else "trusted"
        path = request.path
        try:
            identity = self.identify(caller)
        except IdentityRejected as exc:
            self._deny(
                request,
                started,
                f"identity.{exc.reason.value}",
                exc.message,
                user=caller.user or "",
                role=caller.role or "",
                source=source,
            )
        except IdentityProviderError as exc:
            self._deny(
                request,
                started,
                "identity.idp_unavailable",
                exc.message,
                user=caller.user or "",
                role=caller.role or "",
                source=source,
                hint="the IdP could not be reached; calls are refused until it can",
            )

        body = request.body if isinstance(request.body, Mapping) else None
        if body is not None and json_depth(body, MAX_DEPTH) > MAX_DEPTH:
            # Refused before anything walks it: policy and DLP would recurse that deep.
            self._deny(
                request,
                started,
                "request.malformed",
                f"the request body nests deeper than {MAX_DEPTH} levels",
                user=identity.user,
                role=caller.role or "",
                source=identity.source,
            )
        decision, model = self._decide(identity, caller.role, request, body)
        model = self._recordable(model)
        user, role = identity.user, decision.role
        if not decision.allowed:
            self._deny(
                request,
                started,
                f"policy.{decision.reason.value}",
                decision.message,
                user=user,
                role=role,
                source=identity.source,
                model=model,
            )

        role_config = self.policy.config.roles.get(role)
        mode = role_config.dlp if role_config is not None else "block"
        allow = (
            self.scanner.allowlist(
                role_config.dlp_allow_values,
                role_config.dlp_allow_patterns,
                key=f"policy.roles.{role}",
            )
            if role_config is not None
            else None
        )
        inspection = (
            self.scanner.inspect_request(path, body, allow=allow)
            if body is not None
            else RequestInspection()
        )
        texts = inspection.prompt_texts
        if any(not text.isascii() and text_has_lone_surrogate(text) for text in texts):
            # Upstream parsers drop or replace a lone surrogate: the halves of a secret DLP
            # saw apart would be joined again past it.
            self._deny(
                request,
                started,
                "request.malformed",
                "the request's text holds a lone UTF-16 surrogate (\\ud800-\\udfff)",
                user=user,
                role=role,
                source=identity.source,
                model=model,
            )
        prompt_hash = _hash_texts(self._prompt_key, texts) if texts else ""
        report = inspection.report
        extra = _batch_extra(request, body)
        if "batch_models" in extra:
            extra["batch_models"] = [self._recordable(m) for m in extra["batch_models"]]
        if inspection.allowed:
            extra["dlp_allowed_counts"] = dict(inspection.allowed.counts)
        if request.headers or request.query:
            carried = self.scanner.inspect_fields(request.headers, request.query, allow=allow)
            if carried.report and mode != "log":
                # A header or query value cannot be redacted: an id replaced by a placeholder
                # is a different request. Refuse, naming the fields (never their values).
                self._deny(
                    request,
                    started,
                    "dlp.blocked",
                    f"the request's {', '.join(carried.names)} "
                    f"{'holds' if len(carried.names) == 1 else 'hold'} "
                    f"{carried.report.describe()}; header and query values cannot be redacted",
                    user=user,
                    role=role,
                    source=identity.source,
                    model=model,
                    dlp=carried.report.merged(report),
                    prompt_hash=prompt_hash,
                    hint="remove the values from the request's headers and query parameters",
                    extra=extra,
                )
            report = report.merged(carried.report)
        send: Any = request.body
        verdict = Decision.ALLOW
        if request.opaque and mode != "log":
            self._deny(
                request,
                started,
                "dlp.uninspectable",
                "the request body is not JSON, so DLP cannot inspect it",
                user=user,
                role=role,
                source=identity.source,
                model=model,
                hint=f"role {role!r} has dlp = {mode!r}; uploads need dlp = 'log'",
            )
        signed = inspection.signed_findings if mode == "redact" else DlpReport()
        if report and (mode == "block" or signed):
            where = (
                _batch_items_with_findings(body, list(inspection.slots), inspection.per_slot)
                if body
                else ""
            )
            # A signed thinking block cannot be redacted (the API rejects it changed), and
            # sending the value in clear would break the role's promise: refuse instead.
            if signed:
                message = (
                    f"the request{where} holds {report.describe()}; {signed.describe()} in "
                    "signed thinking blocks cannot be redacted"
                )
                hint = "drop the thinking blocks that hold them from the conversation"
            else:
                message = f"the request{where} holds {report.describe()}; role {role!r} blocks them"
                hint = "remove the values, or use a role with dlp = 'redact'"
            self._deny(
                request,
                started,
                "dlp.blocked",
                message,
                user=user,
                role=role,
                source=identity.source,
                model=model,
                dlp=report,
                prompt_hash=prompt_hash,
                hint=hint,
                extra=extra,
            )
        if report and mode == "redact":
            send = inspection.redacted(request.body)
            verdict = Decision.REDACT

        if decision.max_tokens_cap:
            from claudesec.guard.policy import clamp_max_tokens

            send, clamped = clamp_max_tokens(send, decision.max_tokens_cap)
            if clamped:
                extra["max_tokens_clamped"] = clamped

        problem = self.recording_problem() if self.fail_closed else ""
        if problem:
            self._refuse_while_broken(request, started, user, role, identity.source, model, problem)
        sampled = self.sample_rate >= 1.0 or self._rng() < self.sample_rate
        return Admission(
            request=request,
            body=send,
            identity=identity,
            role=role,
            model=model,
            decision=verdict,
            dlp=report,
            prompt_hash=prompt_hash,
            sampled=sampled,
            started=started,
            extra=extra,
        )

    def _recordable(self, value: str) -> str:
        """``value`` (a model id from the request) as it may be recorded: a secret or PII
        planted there is redacted, since records are kept and exported. Remembered per
        value: there are few models."""
        if not value:
            return value
        safe = self._recordable_cache.get(value)
        if safe is None:
            safe = self.scanner.redact(value)[0]
            if len(self._recordable_cache) >= _IDENTITY_CACHE:
                self._recordable_cache.clear()
            self._recordable_cache[value] = safe
        return safe

    def reject(
        self,
        request: ApiRequest,
        reason: str,
        message: str,
        *,
        source: str = "",
        user: str = "",
        started: float | None = None,
        hint: str | None = None,
    ) -> NoReturn:
        """Record a refusal that happens before anyone is identified, and raise it.

        For a gateway's own checks: no credential, a credential of the wrong kind (an
        Anthropic key), one of its own tokens that is unknown, expired or revoked, or a
        request it will not relay (``request.too_large``, ``request.malformed``,
        ``request.not_proxied``). ``reason`` is a code like those of :meth:`admit`.
        Raises :class:`CallDenied` like :meth:`admit` does, after recording it.
        """
        self._deny(
            request,
            time.perf_counter() if started is None else started,
            reason,
            message,
            user=user,
            role="",
            source=source,
            hint=hint,
        )

    def _decide(
        self,
        identity: Identity,
        role: str | None,
        request: ApiRequest,
        body: Mapping[str, Any] | None,
    ) -> tuple[PolicyDecision, str]:
        from claudesec.guard.policy import PolicyRequest, estimate_input_tokens

        path = request.path
        model = short_str(body.get("model")) if body is not None else ""
        if body is not None and path == "/v1/messages":
            return self.policy.evaluate(identity, body, role=role), model
        if body is not None and path == "/v1/messages/count_tokens":
            counted = PolicyRequest(
                model=model,
                input_tokens=estimate_input_tokens(body),
                tools=bool(body.get("tools")),
            )
            return self.policy.evaluate(identity, counted, role=role), model
        if body is not None and path == _BATCH_PATH and request.method.upper() == "POST":
            return self._decide_batch(identity, role, body)
        # Endpoints without a prompt (models, batch results, files...): the caller must still
        # hold a defined role; the model checks have nothing to look at.
        decision = self.policy.evaluate(identity, PolicyRequest(model=""), role=role)
        if decision.checks and decision.checks[0].passed:
            from claudesec.guard.policy import Reason

            return replace(decision, allowed=True, reason=Reason.ALLOWED, message="allowed"), model
        return decision, model

    def _decide_batch(
        self, identity: Identity, role: str | None, body: Mapping[str, Any]
    ) -> tuple[PolicyDecision, str]:
        """Each request of a batch is judged as if sent alone; the first refused one decides,
        named by its ``custom_id``. One record covers the batch (it is one HTTP attempt)."""
        from claudesec.guard.policy import Check, PolicyDecision, PolicyRequest, Reason

        requests = body.get("requests")
        first: PolicyDecision | None = None
        model = ""
        for index, item in enumerate(requests if isinstance(requests, list) else []):
            params = item.get("params") if isinstance(item, Mapping) else None
            params = params if isinstance(params, Mapping) else {}
            decision = self.policy.evaluate(identity, params, role=role)
            model = model or short_str(params.get("model"))
            if not decision.allowed:
                name = _custom_id(item, index)
                return replace(decision, message=f"batch request {name}: {decision.message}"), (
                    short_str(params.get("model")) or model
                )
            first = first or decision
        if first is not None:
            return first, model
        # An empty batch sends no prompt, but it must not slip through as a "read".
        decision = self.policy.evaluate(identity, PolicyRequest(model=""), role=role)
        if decision.checks and not decision.checks[0].passed:
            return decision, model
        message = "a batch needs a non-empty list of requests"
        return PolicyDecision(
            allowed=False,
            reason=Reason.MALFORMED_REQUEST,
            message=message,
            user=identity.user,
            role=decision.role,
            checks=(
                decision.checks[0],
                Check("request", False, message, Reason.MALFORMED_REQUEST),
            ),
        ), model

    # ----------------------------------------------------------------- recording

    def finish(self, admission: Admission, outcome: Outcome) -> StoredRecord | None:
        """Record how an admitted attempt ended; charge its tokens to the user's budget.

        Raises :class:`AuditUnavailable` when the record cannot be written and the pipeline
        fails closed (the caller must then withhold the response).
        """
        tokens = outcome.input_tokens + outcome.output_tokens
        if tokens:
            self.policy.record_usage(admission.identity.user, tokens)
        keep = (
            admission.sampled
            or admission.decision is not Decision.ALLOW
            or bool(admission.dlp)
            or bool(outcome.error)
            or bool(outcome.response_dlp)
            or "dlp_allowed_counts" in admission.extra  # allowlisted hits are always counted
        )
        if not keep:
            return None
        request = admission.request
        extra: dict[str, Any] = {"path": request.path, **admission.extra, **outcome.extra}
        if admission.admission_seq:
            extra["admission_seq"] = admission.admission_seq
        if admission.call_id:
            extra[CALL_ID] = admission.call_id
        if request.attempt:
            extra["attempt"] = request.attempt
        if request.origin is not None:
            extra.update(request.origin.fields(refused=False))
        if outcome.status:
            extra["http_status"] = outcome.status
        if request.stream:
            extra["stream"] = True
        if admission.dlp:
            extra["dlp_counts"] = dict(admission.dlp.counts)
        if outcome.response_dlp:
            extra["response_dlp_counts"] = dict(outcome.response_dlp.counts)
        if self.sample_rate < 1.0:
            extra["sample_rate"] = self.sample_rate
        decision = Decision.ERROR if outcome.error else admission.decision
        if outcome.error:
            reason = outcome.error
        elif admission.redacted:
            reason = "dlp.redacted"
        else:
            reason = "allowed"
        kinds = admission.dlp.merged(outcome.response_dlp).kinds
        event = AuditEvent(
            type=EventType.CALL,
            user=admission.identity.user,
            role=admission.role,
            identity_source=admission.identity.source,
            model=outcome.model or admission.model,
            prompt_hash=admission.prompt_hash,
            input_tokens=outcome.input_tokens,
            output_tokens=outcome.output_tokens,
            latency_ms=round((time.perf_counter() - admission.started) * 1000, 3),
            stop_reason=outcome.stop_reason,
            decision=decision,
            reason=reason,
            dlp_kinds=kinds,
            request_id=outcome.request_id[:200],
            upstream=request.upstream,
            extra=extra,
        )
        record = self._write(event, raising=self.fail_closed)
        if record is not None and self.prompt_vault is not None:
            self._store_prompt(admission, record, outcome.request_id, event.time_ns)
        return record

    async def finish_async(self, admission: Admission, outcome: Outcome) -> StoredRecord | None:
        """:meth:`finish` for an event loop: a sink that queues is written to at once; a plain
        store in a worker thread, so the loop never waits on SQLite. Fails closed alike."""
        if getattr(self.store, "submit", None) is not None:
            return self.finish(admission, outcome)
        return await asyncio.to_thread(self.finish, admission, outcome)

    def _store_prompt(
        self, admission: Admission, record: StoredRecord, request_id: str, time_ns: int
    ) -> None:
        """Seal the body as sent (after redaction) beside its record, for prompt_vault users.

        Only records written synchronously get one: a queued writer (the proxy's) has no
        ``seq`` to seal against yet.
        """
        assert self.prompt_vault is not None
        if admission.body is None or admission.request.opaque:
            return
        try:
            self.prompt_vault.store_prompt(
                record.seq, record.rec_hash, admission.body, request_id=request_id, time_ns=time_ns
            )
        except (ClaudesecError, OSError) as exc:
            text = exc.message if isinstance(exc, ClaudesecError) else type(exc).__name__
            if self.fail_closed:
                raise AuditUnavailable(
                    f"the prompt vault could not be written: {text}",
                    hint="audit.fail_closed is on, so the call's result is withheld",
                ) from None
            log.warning("claudesec prompt not stored in the vault: %s", text)

    def _deny(
        self,
        request: ApiRequest,
        started: float,
        reason: str,
        message: str,
        *,
        user: str,
        role: str,
        source: str,
        model: str = "",
        dlp: DlpReport | None = None,
        prompt_hash: str = "",
        hint: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> NoReturn:
        report = dlp or DlpReport()
        extra = {**(extra or {}), "path": request.path}
        if request.attempt:
            extra["attempt"] = request.attempt
        if request.origin is not None:
            # A gateway answers the refusal over HTTP: record the status its caller sees.
            extra.update(request.origin.fields(refused=True))
            extra["http_status"] = denial_status(reason)[0]
        if report:
            extra["dlp_counts"] = dict(report.counts)
        event = AuditEvent(
            type=EventType.DENIAL,
            user=user[:256],
            role=role[:256],
            identity_source=source,
            model=model,
            prompt_hash=prompt_hash,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            decision=Decision.DENY,
            reason=reason,
            dlp_kinds=report.kinds,
            extra=extra,
        )
        record: StoredRecord | None = None
        try:
            record = self._write(event, raising=True)
        except AuditUnavailable:
            # The call is refused either way; the failed write is already logged.
            record = None
        raise CallDenied(
            reason, message, user=user, role=role, dlp=report, record=record, hint=hint
        ) from None

    def recording_problem(self) -> str:
        """Why records cannot be written now ("" when they can): what a fail-closed pipeline
        refuses calls for, and what a health check reports."""
        problem = getattr(self.store, "problem", None)
        if isinstance(problem, str):
            return problem  # the sink knows better than our last write did
        return "the last record could not be written" if self._store_broken else ""

    def _refuse_while_broken(
        self,
        request: ApiRequest,
        started: float,
        user: str,
        role: str,
        source: str,
        model: str,
        problem: str,
    ) -> None:
        try:
            self._deny(
                request,
                started,
                "audit.unavailable",
                f"the audit log cannot be written ({problem}), so calls are refused "
                "(audit.fail_closed)",
                user=user,
                role=role,
                source=source,
                model=model,
                hint="fix the audit store; the next call is allowed once it records again",
            )
        except CallDenied as exc:
            if exc.record is not None:
                with self._lock:
                    self._store_broken = False
            raise

    def _write(self, event: AuditEvent, *, raising: bool) -> StoredRecord | None:
        try:
            record = self.store.append(event)
        except (ClaudesecError, OSError) as exc:
            text = exc.message if isinstance(exc, ClaudesecError) else type(exc).__name__
            with self._lock:
                self._store_broken = True
            if raising:
                log.error("claudesec audit record not written (call refused): %s", text)
                raise AuditUnavailable(
                    f"the audit record could not be written: {text}",
                    hint="audit.fail_closed is on, so the call's result is withheld",
                ) from None
            log.warning("claudesec audit record not written (call proceeds): %s", text)
            warnings.warn(
                AuditWriteWarning(
                    f"claudesec could not write an audit record ({text}); the call proceeds "
                    "because audit.fail_closed is off"
                ),
                stacklevel=4,
            )
            return None
        if self._store_broken:
            with self._lock:
                self._store_broken = False
        return record

    # ----------------------------------------------------------------- responses

    def response_outcome(
        self, admission: Admission, status: int, request_id: str, body: bytes | None
    ) -> tuple[Outcome, bytes | None]:
        """The outcome of a non-streamed response, and its body rewritten when response
        redaction found something (None: send the body as it is)."""
        if status >= 400 or status == 0:
            return Outcome(status=status, request_id=request_id, error=f"http.{status}"), None
        if body is None or admission.request.path not in _MESSAGE_PATHS:
            return Outcome(status=status, request_id=request_id), None
        try:
            message = json.loads(body)
        except ValueError:
            return Outcome(status=status, request_id=request_id), None
        if not isinstance(message, dict):
            return Outcome(status=status, request_id=request_id), None
        if admission.request.path.endswith("/count_tokens"):
            counted = positive_int(message.get("input_tokens"))
            return Outcome(
                status=status, request_id=request_id, extra={"counted_tokens": counted}
            ), None
        usage = Usage.of(message)
        report = DlpReport()
        rewritten: bytes | None = None
        if self.responses != "off":
            report = self._redact_message(message)
            if report:
                rewritten = json.dumps(message, ensure_ascii=False).encode("utf-8")
        extra = {"cache_tokens": usage.cache_tokens} if usage.cache_tokens else {}
        return (
            Outcome(
                status=status,
                request_id=request_id,
                model=usage.model,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                stop_reason=usage.stop_reason,
                response_dlp=report,
                extra=extra,
            ),
            rewritten,
        )

    def _redact_message(self, message: dict[str, Any]) -> DlpReport:
        content = message.get("content")
        if not isinstance(content, list):
            return DlpReport()
        pii = self.responses == "all"
        report = DlpReport()
        for block in content:
            if isinstance(block, dict) and isinstance(block.get("text"), str):
                text, found = self.scanner.redact(block["text"], pii=pii)
                if found:
                    block["text"] = text
                    report = report.merged(found)
        return report

    def stream_monitor(self, admission: Admission, *, status: int, request_id: str) -> SseMonitor:
        """A monitor for an SSE response: forward ``feed(chunk)``'s output, then ``finish``."""
        return SseMonitor(self, admission, status=status, request_id=request_id)


# Writers of pipelines that opened their own store, closed (drained) at interpreter exit: a
# script that never closes its client still gets every outcome it queued written.
_OPEN_WRITERS: weakref.WeakSet[BackgroundWriter] = weakref.WeakSet()


def _close_open_writers() -> None:
    for writer in list(_OPEN_WRITERS):
        writer.close()


atexit.register(_close_open_writers)


def _queued_outcomes(store: RecordSink) -> RecordSink:
    """The pipeline's own store behind a :class:`BackgroundWriter`, admissions journaled.

    An admission is made durable in the client's intent journal (one ``write()`` on the
    calling thread, see :mod:`claudesec.audit.intents`): write ahead without a commit. The
    call's record, carrying the admission's ``call_id``, is queued and committed by the
    writer thread while the client does other work (several calls share a commit when they
    come fast). A crash before that commit leaves the admission in the journal; the next
    process that opens the store imports it as an admission no call completes, which
    ``logs verify`` and ``logs query --incomplete`` list: the call is never unrecorded.

    A store with ``synchronous = "full"`` (an fsync per commit) keeps the synchronous
    admission commit instead: the journal is not fsynced, so it would weaken that promise.
    """
    from claudesec.audit.store import AuditStore
    from claudesec.audit.writer import journaled_writer

    if not isinstance(store, AuditStore):
        return store
    writer = journaled_writer(store)
    _OPEN_WRITERS.add(writer)
    return writer


def _custom_id(item: Any, index: int) -> str:
    custom = item.get("custom_id") if isinstance(item, Mapping) else None
    return repr(custom[:64]) if isinstance(custom, str) and custom else f"#{index}"


def _batch_items_with_findings(
    body: Mapping[str, Any], slots: list[Any], per_slot: Sequence[Sequence[Finding]]
) -> str:
    """`` (batch requests 'a', 'b')`` naming the items that hold findings; "" otherwise."""
    requests = body.get("requests")
    if not isinstance(requests, list):
        return ""
    indices = sorted(
        {
            slot.path[1]
            for slot, found in zip(slots, per_slot, strict=True)
            if found and len(slot.path) > 1 and slot.path[0] == "requests"
        }
    )
    if not indices:
        return ""
    # An item whose custom_id itself holds a finding is named by position: naming it by its
    # id would echo the value back.
    tainted = {
        slot.path[1]
        for slot, found in zip(slots, per_slot, strict=True)
        if found and len(slot.path) > 2 and slot.path[0] == "requests"
        and slot.path[2] == "custom_id"
    }  # fmt: skip
    named = [f"#{i}" if i in tainted else _custom_id(requests[i], i) for i in indices[:5]]
    more = f" and {len(indices) - 5} more" if len(indices) > 5 else ""
    return f" (batch requests {', '.join(named)}{more})"


def _batch_extra(request: ApiRequest, body: Mapping[str, Any] | None) -> dict[str, Any]:
    if body is None or request.path != _BATCH_PATH or request.method.upper() != "POST":
        return {}
    requests = body.get("requests")
    items = requests if isinstance(requests, list) else []
    models = {
        short_str(item["params"].get("model"))
        for item in items
        if isinstance(item, Mapping) and isinstance(item.get("params"), Mapping)
    }
    return {"batch_requests": len(items), "batch_models": sorted(m for m in models if m)[:20]}


def _hash_texts(key: bytes, texts: list[str]) -> str:
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for index, text in enumerate(texts):
        if index:
            mac.update(b"\n\x00\n")
        mac.update(text.encode("utf-8", "surrogatepass"))
    return mac.hexdigest()


def _token_expiry(token: str) -> float:
    """``exp`` of a token that has just been verified (0 when absent: do not cache)."""
    import base64

    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        exp = claims.get("exp") if isinstance(claims, dict) else None
    except (IndexError, ValueError):
        return 0.0
    return float(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else 0.0
