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

Fail closed: when a record cannot be written, :meth:`AuditPipeline.finish` raises
:class:`AuditUnavailable` instead of handing the response over, and the pipeline refuses every
later call before sending anything, until a record (the refusal itself) can be written again.
So at most the one call in flight when the store broke reaches the API unrecorded, and its
caller never sees its answer. With ``audit.fail_closed = false`` the call proceeds and a
:class:`AuditWriteWarning` is issued (and logged) instead.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import random
import re
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NoReturn, Protocol

from claudesec.audit.events import AuditEvent, Decision, EventType
from claudesec.errors import CheckFailed, ClaudesecError, StoreError
from claudesec.guard.dlp import (
    DlpReport,
    DlpScanner,
    Finding,
    redact_findings,
    replace_texts,
    request_text_slots,
)

if TYPE_CHECKING:
    from claudesec.audit.prompt_vault import PromptVault
    from claudesec.audit.secrets import AuditKeys
    from claudesec.audit.store import StoredRecord
    from claudesec.config import Config, PolicyConfig
    from claudesec.guard.identity import Identity, OidcVerifier
    from claudesec.guard.policy import Policy, PolicyDecision

log = logging.getLogger("claudesec.audit")

StreamEnd = Literal["complete", "abandoned", "failed"]
ResponseMode = Literal["off", "secrets", "all"]
_MESSAGE_PATHS = ("/v1/messages", "/v1/messages/count_tokens")
_BATCH_PATH = "/v1/messages/batches"
_IDENTITY_CACHE = 256


class RecordSink(Protocol):
    """Where records go: :class:`claudesec.audit.store.AuditStore`, a
    :class:`claudesec.audit.writer.BackgroundWriter` in front of one (which returns None: the
    record is queued, not yet written), or anything alike.

    A sink may also have a ``problem`` attribute (a string, empty while healthy): while it is
    set, a fail-closed pipeline refuses new calls before anything is sent.
    """

    def append(self, event: AuditEvent) -> StoredRecord | None: ...


# The HTTP answer a gateway gives to a refusal, by the reason's prefix (or whole code): what an
# Anthropic client expects, so SDKs and Claude Code show it sensibly. 401 says "your credential
# is not good here"; 403 "you, but not this"; 503 "claudesec itself cannot decide now".
_DENIAL_STATUS: dict[str, tuple[int, str]] = {
    "identity": (401, "authentication_error"),
    "identity.idp_unavailable": (503, "api_error"),
    "identity.token_store_unavailable": (503, "api_error"),
    "audit.unavailable": (503, "api_error"),
    "policy.malformed_request": (400, "invalid_request_error"),
    "request.malformed": (400, "invalid_request_error"),
    "request.too_large": (413, "request_too_large"),
    "request.not_proxied": (404, "not_found_error"),
}
_DENIED = (403, "permission_error")


def denial_status(reason: str) -> tuple[int, str]:
    """The HTTP status and Anthropic ``error.type`` a gateway answers a denial with."""
    found = _DENIAL_STATUS.get(reason) or _DENIAL_STATUS.get(reason.partition(".")[0])
    return found or _DENIED


class CallDenied(CheckFailed):
    """The call was refused before any byte left; the refusal is in the audit log.

    ``reason`` is a stable code (``identity.expired``, ``policy.model_not_allowed``,
    ``dlp.blocked``, ``audit.unavailable``...). Messages name kinds and counts, never values.
    """

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        user: str = "",
        role: str = "",
        dlp: DlpReport | None = None,
        record: StoredRecord | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(f"claudesec denied the call ({reason}): {message}", hint=hint)
        self.reason = reason
        self.status, self.error_type = denial_status(reason)
        self.user = user
        self.role = role
        self.dlp = dlp or DlpReport()
        self.record = record


class AuditUnavailable(StoreError):
    """The audit record could not be written, so the call's result is withheld (fail closed)."""


class AuditWriteWarning(UserWarning):
    """A record could not be written and ``audit.fail_closed`` is off: the call went ahead."""


@dataclass(frozen=True, slots=True)
class Caller:
    """Who says they are calling: a trusted user id, or an OIDC token; and the role asked for.

    ``identity`` is one the adapter has already established from a credential of its own
    (the proxy's tokens): the pipeline takes it as verified, so only code that checked a
    credential may set it.
    """

    user: str | None = None
    token: str | None = field(default=None, repr=False)
    role: str | None = None
    identity: Identity | None = None


@dataclass(frozen=True, slots=True)
class Origin:
    """Where an attempt came from when a gateway relays it; every non-empty field is recorded.

    ``via`` names the gateway (``proxy``); ``client`` is the peer address; ``token_id`` the
    gateway credential's id (never the credential); ``request_id`` the gateway's own id, the
    one its answer carries (``x-claudesec-request-id``); ``credential`` the kind presented and
    ``credential_hint`` its redacted form, recorded with refusals only.
    """

    via: str = ""
    client: str = ""
    token_id: str = ""
    request_id: str = ""
    credential: str = ""
    credential_hint: str = ""

    def fields(self, *, refused: bool) -> dict[str, str]:
        found = {
            "via": self.via,
            "client": self.client,
            "token_id": self.token_id,
            "claudesec_request_id": self.request_id,
        }
        if refused:
            found["credential"] = self.credential
            found["credential_hint"] = self.credential_hint
        return {k: v[:256] for k, v in found.items() if v}


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One HTTP attempt as the pipeline sees it.

    ``body`` is the parsed JSON body (None for GETs); ``opaque`` says the body is something DLP
    cannot read (a multipart upload, raw bytes). ``path`` has no query string. ``origin`` is
    set by a gateway; with one, refusals are answered over HTTP, so their records carry the
    status (:attr:`CallDenied.status`).
    """

    method: str
    path: str
    body: Any = None
    opaque: bool = False
    stream: bool = False
    attempt: int = 0
    origin: Origin | None = None


@dataclass(frozen=True, slots=True)
class Admission:
    """An allowed attempt: what to send, and what the record will say about it."""

    request: ApiRequest
    body: Any
    identity: Identity
    role: str
    model: str
    decision: Decision
    dlp: DlpReport
    prompt_hash: str
    sampled: bool
    started: float  # perf_counter() when the attempt was admitted
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def redacted(self) -> bool:
        return self.decision is Decision.REDACT


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an attempt ended. ``error`` is empty on success (a short code otherwise)."""

    status: int = 0
    request_id: str = ""
    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    stop_reason: str = ""
    error: str = ""
    response_dlp: DlpReport = field(default_factory=DlpReport)
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Usage:
    """What a Messages response (or its final SSE events) says about cost and ending."""

    input_tokens: int = 0
    output_tokens: int = 0
    stop_reason: str = ""
    model: str = ""
    cache_tokens: int = 0

    @classmethod
    def of(cls, message: Mapping[str, Any]) -> Usage:
        usage = message.get("usage")
        usage = usage if isinstance(usage, Mapping) else {}
        cache = _int(usage.get("cache_creation_input_tokens")) + _int(
            usage.get("cache_read_input_tokens")
        )
        return cls(
            input_tokens=_int(usage.get("input_tokens")),
            output_tokens=_int(usage.get("output_tokens")),
            stop_reason=_str(message.get("stop_reason")),
            model=_str(message.get("model")),
            cache_tokens=cache,
        )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _str(value: Any) -> str:
    return value[:200] if isinstance(value, str) else ""


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
        if verifier is None and config.identity.issuer:
            from claudesec.guard.identity import OidcVerifier

            verifier = OidcVerifier(config.identity)
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
        :class:`CallDenied` after recording the denial."""
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
        decision, model = self._decide(identity, caller.role, request, body)
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

        mode = self.policy.config.roles[role].dlp if role in self.policy.config.roles else "block"
        slots = request_text_slots(path, body) if body is not None else []
        texts = [slot.text for slot in slots]
        prompt_hash = _hash_texts(self._prompt_key, texts) if texts else ""
        per_slot = self.scanner.scan_parts(texts) if texts else []
        findings = [f for found in per_slot for f in found]
        report = DlpReport.of(findings)
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
        if report:
            if mode == "block":
                where = _batch_items_with_findings(body, slots, per_slot) if body else ""
                self._deny(
                    request,
                    started,
                    "dlp.blocked",
                    f"the request{where} holds {report.describe()}; role {role!r} blocks them",
                    user=user,
                    role=role,
                    source=identity.source,
                    model=model,
                    dlp=report,
                    prompt_hash=prompt_hash,
                    hint="remove the values, or use a role with dlp = 'redact'",
                )
            if mode == "redact":
                replacements = {
                    slot.path: redact_findings(slot.text, found)
                    for slot, found in zip(slots, per_slot, strict=True)
                    if found
                }
                send = replace_texts(request.body, replacements)
                verdict = Decision.REDACT

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
            extra=_batch_extra(request, body),
        )

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
        model = _str(body.get("model")) if body is not None else ""
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
            from dataclasses import replace

            from claudesec.guard.policy import Reason

            return replace(decision, allowed=True, reason=Reason.ALLOWED, message="allowed"), model
        return decision, model

    def _decide_batch(
        self, identity: Identity, role: str | None, body: Mapping[str, Any]
    ) -> tuple[PolicyDecision, str]:
        """Each request of a batch is judged as if sent alone; the first refused one decides,
        named by its ``custom_id``. One record covers the batch (it is one HTTP attempt)."""
        from dataclasses import replace

        from claudesec.guard.policy import Check, PolicyDecision, PolicyRequest, Reason

        requests = body.get("requests")
        first: PolicyDecision | None = None
        model = ""
        for index, item in enumerate(requests if isinstance(requests, list) else []):
            params = item.get("params") if isinstance(item, Mapping) else None
            params = params if isinstance(params, Mapping) else {}
            decision = self.policy.evaluate(identity, params, role=role)
            model = model or _str(params.get("model"))
            if not decision.allowed:
                name = _custom_id(item, index)
                return replace(decision, message=f"batch request {name}: {decision.message}"), (
                    _str(params.get("model")) or model
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
        )
        if not keep:
            return None
        request = admission.request
        extra: dict[str, Any] = {"path": request.path, **admission.extra, **outcome.extra}
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
            extra=extra,
        )
        record = self._write(event, raising=self.fail_closed)
        if record is not None and self.prompt_vault is not None:
            self._store_prompt(admission, record, outcome.request_id, event.time_ns)
        return record

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
    ) -> NoReturn:
        report = dlp or DlpReport()
        extra: dict[str, Any] = {"path": request.path}
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
            counted = _int(message.get("input_tokens"))
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


def _custom_id(item: Any, index: int) -> str:
    custom = item.get("custom_id") if isinstance(item, Mapping) else None
    return repr(custom[:64]) if isinstance(custom, str) and custom else f"#{index}"


def _batch_items_with_findings(
    body: Mapping[str, Any], slots: list[Any], per_slot: list[list[Finding]]
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
    named = [_custom_id(requests[i], i) for i in indices[:5]]
    more = f" and {len(indices) - 5} more" if len(indices) > 5 else ""
    return f" (batch requests {', '.join(named)}{more})"


def _batch_extra(request: ApiRequest, body: Mapping[str, Any] | None) -> dict[str, Any]:
    if body is None or request.path != _BATCH_PATH or request.method.upper() != "POST":
        return {}
    requests = body.get("requests")
    items = requests if isinstance(requests, list) else []
    models = {
        _str(item["params"].get("model"))
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


# --------------------------------------------------------------------------- streams

# Where a value split across deltas may still be growing: a PEM block not yet closed, or a
# run of number groups ("4111 1111 ") at the end, or the last word.
_DIGIT_TAIL = re.compile(r"(?:[+(]?\d[\d().-]*[ ]?){1,8}\Z")
_HOLD_LIMIT = 8192


class _HeldText:
    """Per content block: emit text as it streams, holding back a tail that might be the start
    of a secret, and redact with the last emitted characters as context.

    The limit: a value is caught if it has no whitespace (keys, tokens, emails), or is a run
    of number groups (cards, phones), or a PEM block; a value with other spaces in it that
    straddles two deltas can slip through in pieces. The final message (``messages.stream()``'s
    accumulated one) is built from these redacted deltas.
    """

    def __init__(self, scanner: DlpScanner, pii: bool) -> None:
        self._scanner = scanner
        self._pii = pii
        self._pending = ""
        self._context = ""  # the last emitted characters, unredacted
        self.report = DlpReport()

    def push(self, text: str) -> str:
        self._pending += text
        cut = _safe_cut(self._pending)
        if cut <= 0:
            return ""
        return self._emit(cut)

    def flush(self) -> str:
        return self._emit(len(self._pending)) if self._pending else ""

    @property
    def holding(self) -> bool:
        return bool(self._pending)

    def _emit(self, cut: int) -> str:
        out, self._pending = self._pending[:cut], self._pending[cut:]
        context = self._context
        joined = context + out
        data = joined.encode("utf-8", "surrogatepass")
        base = len(context.encode("utf-8", "surrogatepass"))
        findings = [f for f in self._scanner.scan_bytes(data, pii=self._pii) if f.end > base]
        self._context = joined[-256:]
        if not findings:
            return out
        # Only the part past the context is still ours to change.
        clipped = [
            Finding(f.kind, f.category, max(0, f.start - base), f.end - base) for f in findings
        ]
        self.report = self.report.merged(DlpReport.of(clipped))
        return redact_findings(out, clipped)


def _safe_cut(text: str) -> int:
    begin = text.rfind("-----BEGIN")
    if begin != -1 and text.find("-----END", begin) == -1 and len(text) - begin < _HOLD_LIMIT:
        return begin
    cut = max(text.rfind(" "), text.rfind("\n"), text.rfind("\t")) + 1
    if cut <= 0:
        return 0 if len(text) < _HOLD_LIMIT else len(text)
    tail = _DIGIT_TAIL.search(text, max(0, cut - 64), cut)
    if tail is not None and tail.start() < cut:
        cut = tail.start()
    return cut


class SseMonitor:
    """Watches an SSE response as it streams: usage from ``message_start``/``message_delta``,
    errors from ``error`` events, and (when response redaction is on) rewrites text deltas.

    Without redaction, chunks pass through untouched. With redaction, output is released one
    complete event at a time, and only text deltas are decoded. Either way the events that
    carry usage or errors are only kept as bytes on the way through and decoded when the
    stream ends: nothing delays the first event. ``finish`` is idempotent: the first call
    writes the record.
    """

    def __init__(
        self, pipeline: AuditPipeline, admission: Admission, *, status: int, request_id: str
    ) -> None:
        self._pipeline = pipeline
        self._admission = admission
        self._status = status
        self._request_id = request_id
        self._redact = pipeline.responses != "off" and admission.request.path == "/v1/messages"
        self._pii = pipeline.responses == "all"
        self._partial = b""
        self._event = b""
        self._usage_in = 0
        self._usage_out = 0
        self._cache = 0
        self._stop_reason = ""
        self._model = ""
        self._error = ""
        self._noted: list[tuple[bytes, bytes]] = []
        self._released = False  # whether any bytes have been handed out yet
        self._held: dict[int, _HeldText] = {}
        self._report = DlpReport()
        self._done = False
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- bytes in, bytes out

    def feed(self, chunk: bytes) -> bytes:
        """Observe ``chunk``; return the bytes to forward in its place."""
        if not self._redact:
            self._watch(chunk)
            return chunk
        return b"".join(self.feed_parts(chunk))

    def feed_parts(self, chunk: bytes) -> Iterator[bytes]:
        """:meth:`feed` in pieces, each to be forwarded as soon as it is yielded.

        Until the first bytes have gone out, the events that need no rewriting
        (``message_start``, ``ping``...) are a piece of their own, released before any text
        delta of the same chunk is decoded and scanned: the caller's time to first byte does
        not wait for DLP. Later chunks come out in one piece (one write each)."""
        if not self._redact:
            self._watch(chunk)
            if chunk:
                yield chunk
            return
        data = (
            self._partial + chunk.replace(b"\r", b"") if b"\r" in chunk else self._partial + chunk
        )
        find = data.find
        frames: list[tuple[int, int, bytes, bytes]] = []
        first = -1  # the first frame to rewrite
        start = 0
        end = find(b"\n\n")
        while end != -1:
            event, raw = _event_and_data(data, start, end)
            if event in _NOTED_EVENTS:
                # Noted for the whole chunk up front: a caller that stops reading after the
                # first piece still gets the usage the upstream reported in this chunk.
                self._note(event, raw)
            elif event in _REWRITTEN_EVENTS and first == -1:
                first = len(frames)
            frames.append((start, end + 2, event, raw))
            start = end + 2
            end = find(b"\n\n", start)
        self._partial = data[start:]
        if first == -1:
            if start:
                self._released = True
                yield data[:start]
            return
        out: list[bytes] = []
        if first and not self._released:
            self._released = True
            yield data[: frames[first][0]]
        elif first:
            out.append(data[: frames[first][0]])
        for begin, stop, event, raw in frames[first:]:
            if event in _REWRITTEN_EVENTS:
                out.append(self._rewrite(event, raw, data[begin:stop]))
            else:
                out.append(data[begin:stop])
        self._released = True
        yield b"".join(out)

    def _watch(self, chunk: bytes) -> None:
        """Pass-through mode: find the data lines of the events that carry usage or errors."""
        data = self._partial + chunk if self._partial else chunk
        cut = data.rfind(b"\n") + 1
        self._partial = data[cut:]
        if not cut:
            return
        if self._event not in _NOTED_EVENTS and b"message_" not in data and b"error" not in data:
            # Only other events' lines here: whatever event is current after them is not one
            # to note either.
            self._event = b""
            return
        for line in data[: cut - 1].split(b"\n"):
            self._line(line.rstrip(b"\r"))

    def _line(self, line: bytes) -> None:
        if not line:
            self._event = b""
        elif line.startswith(b"event:"):
            self._event = line[6:].strip()
        elif line.startswith(b"data:") and self._event in _NOTED_EVENTS:
            self._note(self._event, line[5:].strip())

    def _note(self, event: bytes, raw: bytes) -> None:
        # Decoded at the end (a stream has one message_start and usually one message_delta);
        # folded early should an upstream send many, so memory stays bounded.
        noted = self._noted
        noted.append((event, raw))
        if len(noted) >= _NOTE_LIMIT:
            self._fold()

    def _fold(self) -> None:
        noted, self._noted = self._noted, []
        for event, raw in noted:
            self._data(event, raw)

    def _data(self, event: bytes, raw: bytes) -> dict[str, Any] | None:
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        if event == b"message_start":
            message = data.get("message")
            if isinstance(message, Mapping):
                usage = Usage.of(message)
                self._usage_in = usage.input_tokens
                self._usage_out = usage.output_tokens
                self._cache = usage.cache_tokens
                self._model = usage.model
        elif event == b"message_delta":
            counts = data.get("usage")
            if isinstance(counts, Mapping):
                # Cumulative counts: the last message_delta has the final figures.
                self._usage_out = _int(counts.get("output_tokens")) or self._usage_out
                self._usage_in = _int(counts.get("input_tokens")) or self._usage_in
            delta = data.get("delta")
            if isinstance(delta, Mapping) and delta.get("stop_reason"):
                self._stop_reason = _str(delta.get("stop_reason"))
        elif event == b"error":
            error = data.get("error")
            kind = error.get("type") if isinstance(error, Mapping) else None
            self._error = f"stream.{kind}" if isinstance(kind, str) else "stream.error"
        return data

    def _rewrite(self, event: bytes, raw: bytes, frame: bytes) -> bytes:
        data = self._data(event, raw)
        if data is None:
            return frame
        if event == b"content_block_delta":
            delta = data.get("delta")
            if isinstance(delta, dict) and delta.get("type") == "text_delta":
                held = self._held_for(data.get("index"))
                text = _str_any(delta.get("text"))
                out = held.push(text)
                if out == text and not held.holding:
                    return frame  # nothing held back, nothing redacted: the bytes as they came
                delta["text"] = out
                return _frame(event, data)
            return frame
        index = data.get("index")
        ending = self._held.get(index) if isinstance(index, int) else None
        if ending is not None:
            rest = ending.flush()
            self._report = self._report.merged(ending.report)
            del self._held[index]  # type: ignore[arg-type]
            if rest:
                flush = {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "text_delta", "text": rest},
                }
                return _frame(b"content_block_delta", flush) + frame
        return frame

    def _held_for(self, index: Any) -> _HeldText:
        key = index if isinstance(index, int) else 0
        held = self._held.get(key)
        if held is None:
            held = self._held[key] = _HeldText(self._pipeline.scanner, self._pii)
        return held

    # ----------------------------------------------------------------- the end

    def finish(self, how: StreamEnd, error: str = "") -> StoredRecord | None:
        """Write the attempt's record: the stream completed, was closed early, or failed."""
        with self._lock:
            if self._done:
                return None
            self._done = True
        if self._partial and not self._redact:
            self._line(self._partial.rstrip(b"\r"))
        self._fold()
        report = self._report
        for held in self._held.values():
            report = report.merged(held.report)
        code = self._error or error
        if code:
            how = "failed"
        if how == "failed" and not code:
            code = "stream.failed"
        extra: dict[str, Any] = {"stream_end": how}
        if self._cache:
            extra["cache_tokens"] = self._cache
        outcome = Outcome(
            status=self._status,
            request_id=self._request_id,
            model=self._model,
            input_tokens=self._usage_in,
            output_tokens=self._usage_out,
            stop_reason=self._stop_reason,
            error=code,
            response_dlp=report,
            extra=extra,
        )
        return self._pipeline.finish(self._admission, outcome)

    def finish_quietly(self, how: StreamEnd) -> None:
        """``finish`` from a finaliser or a close path that must not raise."""
        try:
            self.finish(how)
        except ClaudesecError as exc:
            log.error("claudesec: %s", exc.message)


_NOTED_EVENTS = frozenset({b"message_start", b"message_delta", b"error"})
_REWRITTEN_EVENTS = frozenset({b"content_block_delta", b"content_block_stop"})
_NOTE_LIMIT = 16


def _event_and_data(data: bytes, start: int, end: int) -> tuple[bytes, bytes]:
    """The event name and the (last) data line of the SSE frame ``data[start:end]``."""
    event = b""
    raw = b""
    for line in data[start:end].split(b"\n"):
        if line.startswith(b"event:"):
            event = line[6:].strip()
        elif line.startswith(b"data:"):
            raw = line[5:].strip()
    return event, raw


def _str_any(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _frame(event: bytes, data: Mapping[str, Any]) -> bytes:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return b"event: " + event + b"\ndata: " + body + b"\n\n"


def finalize_on_collect(owner: object, monitor: SseMonitor) -> None:
    """Record an abandoned stream whose owner is garbage-collected without being closed."""
    weakref.finalize(owner, monitor.finish_quietly, "abandoned")
