"""The seam between the HTTP server and the audit pipeline.

The server knows HTTP: routes, credentials, bodies, streams, limits. Everything about *whether*
a call may go ahead and *what is recorded* (identity -> policy -> DLP -> sampling -> audit) is
the pipeline's, shared with :class:`claudesec.audit.client.AuditedAnthropic`. This module
names the few operations the server needs from it, so the server can be tested with a stand-in
and the adapter in :mod:`claudesec.proxy.pipeline_gate` stays a thin translation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from claudesec.audit.identity import Identity


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What the server knows about a request, for the audit record."""

    request_id: str
    method: str
    path: str
    client: str  # peer address
    user_agent: str = ""
    credential: str = ""  # the credential kind: proxy_token, jwt, anthropic_key, ...
    credential_hint: str = ""  # redacted, never the credential
    token_id: str = ""  # the proxy token's id, when one was used


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller and the role it acts as (a proxy token fixes one)."""

    identity: Identity
    role: str | None = None


@dataclass(frozen=True, slots=True)
class Denial:
    """A refusal, in Anthropic's error vocabulary so every client shows it sensibly."""

    status: int
    error_type: str  # authentication_error, permission_error, invalid_request_error, ...
    message: str
    reason: str = ""  # machine-readable reason code for the record

    def body(self) -> dict[str, Any]:
        return {"type": "error", "error": {"type": self.error_type, "message": self.message}}


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    stop_reason: str = ""
    model: str = ""


class StreamFilter(Protocol):
    """Rewrites a streamed (SSE) response on its way to the client: response-side DLP.

    ``feed`` may hold back bytes (a secret can straddle two events); ``close`` returns the
    rest. A pass-through filter returns its input at once, which keeps streaming unbuffered.
    """

    def feed(self, chunk: bytes) -> bytes: ...

    def close(self) -> bytes: ...

    @property
    def usage(self) -> Usage: ...


class Call(Protocol):
    """One admitted call: the body to forward and what to do with the answer."""

    @property
    def body(self) -> Mapping[str, Any] | None:
        """The request body to forward (DLP may have redacted it); None: forward as received."""
        ...

    def filter_response(self, data: Any) -> Any:
        """Response-side DLP on a JSON answer."""
        ...

    def stream_filter(self) -> StreamFilter: ...

    def finish(
        self, *, status: int, usage: Usage | None, latency_ms: float, error: str = ""
    ) -> None:
        """Record the outcome (may raise when the store cannot be written and fail_closed)."""
        ...


class Gate(Protocol):
    """What the server asks of the pipeline."""

    def reject_identity(self, info: RequestInfo, reason: str, message: str) -> None:
        """Record a request refused before anyone was identified (401)."""
        ...

    def admit(
        self, caller: Caller, body: Mapping[str, Any] | None, info: RequestInfo
    ) -> Call | Denial:
        """Decide one request; ``body`` is None for reads (model lists, batch status)."""
        ...


# --------------------------------------------------------------------------- pass-through


@dataclass
class PassThroughStream:
    """A filter that changes nothing but still reads usage from the events going by."""

    _usage: dict[str, Any] = field(default_factory=dict)
    _tail: bytes = b""

    def feed(self, chunk: bytes) -> bytes:
        self._scan(chunk)
        return chunk

    def close(self) -> bytes:
        return b""

    @property
    def usage(self) -> Usage:
        u = self._usage
        return Usage(
            int(u.get("input_tokens", 0)),
            int(u.get("output_tokens", 0)),
            str(u.get("stop_reason", "")),
            str(u.get("model", "")),
        )

    def _scan(self, chunk: bytes) -> None:
        import json

        data = self._tail + chunk
        lines = data.split(b"\n")
        self._tail = lines.pop()[-65536:]
        for line in lines:
            if not line.startswith(b"data:"):
                continue
            if b"usage" not in line and b"stop_reason" not in line:
                continue
            try:
                event = json.loads(line[5:])
            except ValueError:
                continue
            read_usage_event(event, self._usage)


def read_usage_event(event: Any, into: dict[str, Any]) -> None:
    """Fold one SSE event's usage (message_start / message_delta) into ``into``."""
    if not isinstance(event, dict):
        return
    message = event.get("message") if event.get("type") == "message_start" else None
    if isinstance(message, dict):
        into["model"] = message.get("model", "")
        usage = message.get("usage") or {}
    else:
        usage = event.get("usage") or {}
    if isinstance(usage, dict):
        for name in ("input_tokens", "output_tokens"):
            value = usage.get(name)
            if isinstance(value, int) and value >= into.get(name, 0):
                into[name] = value
    delta = event.get("delta")
    if isinstance(delta, dict) and delta.get("stop_reason"):
        into["stop_reason"] = delta["stop_reason"]
