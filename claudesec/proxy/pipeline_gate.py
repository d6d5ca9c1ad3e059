"""The proxy's :class:`~claudesec.proxy.gate.Gate` over the audit building blocks.

INTERIM: ``claudesec.audit.pipeline`` (identity -> policy -> DLP -> call -> record, shared with
``AuditedAnthropic``) did not exist yet when the proxy was written. This adapter composes the
public pieces it would wrap (:class:`~claudesec.audit.policy.Policy`,
:class:`~claudesec.audit.dlp.DlpScanner`, :class:`~claudesec.audit.store.AuditStore`) so the
proxy enforces and records today; once the pipeline lands, each method here becomes one call
into it and the logic below is deleted. Nothing outside this module depends on how it works.
"""

from __future__ import annotations

import json
import os
import random
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from claudesec.audit.events import AuditEvent, Decision, EventType
from claudesec.proxy.gate import Caller, Denial, PassThroughStream, RequestInfo, Usage

if TYPE_CHECKING:
    from claudesec.audit.dlp import DlpScanner
    from claudesec.audit.policy import Policy
    from claudesec.audit.store import AuditStore
    from claudesec.config import Config

_HOST = socket.gethostname()[:255]


class PipelineGate:
    def __init__(
        self,
        config: Config,
        *,
        policy: Policy,
        store: AuditStore | None,
        scanner: DlpScanner | None,
        sample_rate: float = 1.0,
    ) -> None:
        self._config = config
        self._policy = policy
        self._store = store
        self._scanner = scanner
        self._sample_rate = sample_rate
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: Config, *, store: AuditStore | None = None) -> PipelineGate:
        from claudesec.audit.dlp import DlpScanner
        from claudesec.audit.policy import Policy
        from claudesec.audit.store import AuditStore

        env = os.environ.get("CLAUDESEC_ENV") or config.audit.environment
        rate = config.audit.sample_rates.get(env, 1.0)
        return cls(
            config,
            policy=Policy.from_config(config),
            store=store if store is not None else AuditStore.from_config(config.audit),
            scanner=DlpScanner.from_config(config.dlp),
            sample_rate=rate,
        )

    # ----------------------------------------------------------------- recording

    def record(self, event: AuditEvent, *, always: bool = True) -> None:
        if self._store is None:
            return
        if not always and self._sample_rate < 1.0 and random.random() >= self._sample_rate:
            return
        try:
            with self._lock:
                self._store.append(event)
        except Exception:
            if self._config.audit.fail_closed:
                raise
            import logging

            logging.getLogger("claudesec.proxy").exception("audit record lost")

    def _event(self, info: RequestInfo, **fields: Any) -> AuditEvent:
        extra = {"via": "proxy", "path": info.path, "client": info.client}
        if info.token_id:
            extra["token_id"] = info.token_id
        if info.credential_hint and fields.get("type") == EventType.DENIAL:
            extra["credential_hint"] = info.credential_hint
        return AuditEvent(
            request_id=info.request_id,
            host=_HOST,
            app=self._config.audit.app or "claudesec-proxy",
            extra=extra,
            **fields,
        )

    # ----------------------------------------------------------------- the Gate

    def reject_identity(self, info: RequestInfo, reason: str, message: str) -> None:
        self.record(
            self._event(
                info,
                type=EventType.DENIAL,
                decision=Decision.DENY,
                reason=reason,
                identity_source=info.credential,
            )
        )

    def admit(
        self, caller: Caller, body: Mapping[str, Any] | None, info: RequestInfo
    ) -> _Call | Denial:
        from claudesec.audit.identity import Identity

        identity = caller.identity
        source = "proxy_token" if info.token_id else identity.source
        if info.token_id:
            # The token itself grants its role (an admin issued it for that role), like an
            # IdP group does: evaluate it the way policy treats roles from a verified token.
            identity = Identity(
                user=identity.user, roles=identity.roles, source="oidc", subject=info.token_id
            )
        if body is None:
            roles = caller.role or (identity.roles[0] if identity.roles else "")
            known = roles in self._config.policy.roles or identity.user in self._config.policy.users
            if not known:
                self.record(
                    self._event(
                        info,
                        type=EventType.DENIAL,
                        user=identity.user,
                        identity_source=source,
                        decision=Decision.DENY,
                        reason="unknown_role",
                    )
                )
                return Denial(
                    403, "permission_error", "denied: the caller has no role", "unknown_role"
                )
            return _Call(self, info, identity.user, roles, source, "", None, ())
        checked = body
        if info.path.endswith("/count_tokens") and "max_tokens" not in body:
            # count_tokens generates nothing; policy still checks the model and prompt size.
            checked = {**body, "max_tokens": 1}
        decision = self._policy.evaluate(identity, checked, role=caller.role)
        model = str(body.get("model", ""))[:256]
        if not decision.allowed:
            self.record(
                self._event(
                    info,
                    type=EventType.DENIAL,
                    user=identity.user,
                    role=decision.role,
                    identity_source=source,
                    model=model,
                    decision=Decision.DENY,
                    reason=decision.reason.value,
                )
            )
            return Denial(403, "permission_error", decision.message, decision.reason.value)
        forwarded, kinds, denial = self._dlp(body, decision.role, info)
        if denial is not None:
            self.record(
                self._event(
                    info,
                    type=EventType.DLP_HIT,
                    user=identity.user,
                    role=decision.role,
                    identity_source=source,
                    model=model,
                    decision=Decision.DENY,
                    reason="dlp_blocked",
                    dlp_kinds=kinds,
                )
            )
            return denial
        return _Call(self, info, identity.user, decision.role, source, model, forwarded, kinds)

    def _dlp(
        self, body: Mapping[str, Any], role: str, info: RequestInfo
    ) -> tuple[dict[str, Any] | None, tuple[str, ...], Denial | None]:
        if self._scanner is None:
            return None, (), None
        from claudesec.audit.dlp import (
            DlpReport,
            redact_findings,
            replace_texts,
            request_text_slots,
        )

        slots = request_text_slots(info.path, body)
        if not slots:
            return None, (), None
        found = self._scanner.scan_parts([s.text for s in slots])
        report = DlpReport()
        for findings in found:
            report = report.merged(DlpReport.of(findings))
        if not report:
            return None, (), None
        mode = self._config.policy.roles[role].dlp
        if mode == "block":
            return (
                None,
                report.kinds,
                Denial(
                    403,
                    "permission_error",
                    f"denied (dlp): the request holds {report.describe()}",
                    "dlp_blocked",
                ),
            )
        if mode == "log":
            return None, report.kinds, None
        replacements = {
            slot.path: redact_findings(slot.text, findings)
            for slot, findings in zip(slots, found, strict=True)
            if findings
        }
        return replace_texts(body, replacements), report.kinds, None

    def redact_text(self, text: str) -> str:
        mode = self._config.dlp.responses
        if self._scanner is None or mode == "off" or not text:
            return text
        redacted, _ = self._scanner.redact(text, pii=mode == "all")
        return redacted

    @property
    def redacts_responses(self) -> bool:
        return self._scanner is not None and self._config.dlp.responses != "off"


@dataclass
class _Call:
    gate: PipelineGate
    info: RequestInfo
    user: str
    role: str
    source: str
    model: str
    _body: dict[str, Any] | None
    kinds: tuple[str, ...]

    @property
    def body(self) -> Mapping[str, Any] | None:
        return self._body

    def filter_response(self, data: Any) -> Any:
        if not self.gate.redacts_responses or not isinstance(data, dict):
            return data
        content = data.get("content")
        if not isinstance(content, list):
            return data
        changed = False
        blocks = []
        for block in content:
            out = block
            if isinstance(block, dict) and block.get("type") == "text":
                text = str(block.get("text", ""))
                redacted = self.gate.redact_text(text)
                if redacted != text:
                    out = {**block, "text": redacted}
                    changed = True
            blocks.append(out)
        return {**data, "content": blocks} if changed else data

    def stream_filter(self) -> PassThroughStream:
        if self.gate.redacts_responses:
            return _RedactingStream(gate=self.gate)
        return PassThroughStream()

    def finish(
        self, *, status: int, usage: Usage | None, latency_ms: float, error: str = ""
    ) -> None:
        u = usage or Usage()
        ok = 200 <= status < 300 and not error
        decision = Decision.REDACT if self.kinds else Decision.ALLOW
        self.gate.record(
            self.gate._event(
                self.info,
                type=EventType.CALL,
                user=self.user,
                role=self.role,
                identity_source=self.source,
                model=u.model or self.model,
                input_tokens=max(0, u.input_tokens),
                output_tokens=max(0, u.output_tokens),
                latency_ms=max(0.0, latency_ms),
                stop_reason=u.stop_reason[:64],
                decision=decision if ok else Decision.ERROR,
                reason=error or ("" if ok else f"http_{status}"),
                dlp_kinds=self.kinds,
            ),
            always=not ok or bool(self.kinds),
        )


@dataclass
class _RedactingStream(PassThroughStream):
    """Redacts text deltas event by event; events pass on as soon as they are complete.

    A secret split across two deltas is not seen (each delta is scanned alone): closing that
    gap needs the pipeline's stream redactor, which holds back a partial match.
    """

    gate: PipelineGate | None = None
    _pending: bytes = field(default=b"")

    def feed(self, chunk: bytes) -> bytes:
        self._scan(chunk)
        data = self._pending + chunk
        end = data.rfind(b"\n\n")
        if end < 0:
            self._pending = data
            return b""
        ready, self._pending = data[: end + 2], data[end + 2 :]
        if b"text_delta" not in ready:
            return ready
        return b"\n\n".join(self._event(e) for e in ready.split(b"\n\n"))

    def close(self) -> bytes:
        rest, self._pending = self._pending, b""
        return rest

    def _event(self, raw: bytes) -> bytes:
        if b"text_delta" not in raw or self.gate is None:
            return raw
        lines = raw.split(b"\n")
        for index, line in enumerate(lines):
            if not line.startswith(b"data:"):
                continue
            try:
                event = json.loads(line[5:])
                text = event["delta"]["text"]
            except (ValueError, KeyError, TypeError):
                continue
            redacted = self.gate.redact_text(str(text))
            if redacted != text:
                event["delta"]["text"] = redacted
                lines[index] = b"data: " + json.dumps(event).encode()
        return b"\n".join(lines)
