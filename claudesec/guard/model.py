"""The protocol between an adapter and the audit pipeline: what an attempt is, how it ends.

An adapter (the audited client, the proxy, LangChain) describes who calls (:class:`Caller`)
and what it sends (:class:`ApiRequest`, with an :class:`Origin` when a gateway relays it);
the pipeline answers with an :class:`Admission` (what to send and what the record will say)
or raises :class:`CallDenied`; the adapter reports how the attempt ended as an
:class:`Outcome`. Plain data only: no SDK object, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from claudesec.audit.events import AuditEvent, Decision
from claudesec.errors import CheckFailed, StoreError
from claudesec.guard.dlp import DlpReport

if TYPE_CHECKING:
    from claudesec.audit.store import StoredRecord
    from claudesec.guard.identity import Identity

StreamEnd = Literal["complete", "abandoned", "failed"]


class RecordSink(Protocol):
    """Where records go: :class:`claudesec.audit.store.AuditStore`, a
    :class:`claudesec.audit.writer.BackgroundWriter` in front of one (which returns None: the
    record is queued, not yet written), or anything alike.

    A sink may also have a ``problem`` attribute (a string, empty while healthy): while it is
    set, a fail-closed pipeline refuses new calls before anything is sent.
    """

    def append(self, event: AuditEvent) -> StoredRecord | None: ...


# The HTTP answer a gateway gives to a refusal, by the reason (whole code, else its prefix),
# chosen by how clients *show* it. The Python and TypeScript SDKs map 400 -> BadRequestError,
# 401 -> AuthenticationError, 403 -> PermissionDeniedError, 413 -> ContentTooLargeError,
# 429 -> RateLimitError (retried after ``retry-after``), 5xx -> InternalServerError (retried;
# 503 -> ServiceUnavailableError); Claude Code shows both 401 and 403 as "Failed to
# authenticate" and anything else as "API Error: <status> <message>". So 401 is kept for callers
# who are not authenticated, and a caller who *is* authenticated but refused gets 400
# ``invalid_request_error`` (shown with its message, never retried) with a message that names
# the reason and the fix. 403 is not used: no client tested renders it as "not allowed".
# 429 only where waiting helps (a per-minute budget); 503 "claudesec itself cannot decide now".
_DENIAL_STATUS: dict[str, tuple[int, str]] = {
    "identity": (401, "authentication_error"),
    "identity.idp_unavailable": (503, "api_error"),
    "identity.token_store_unavailable": (503, "api_error"),
    "audit.unavailable": (503, "api_error"),
    "policy": (400, "invalid_request_error"),
    "policy.minute_budget_exceeded": (429, "rate_limit_error"),
    "dlp": (400, "invalid_request_error"),
    "request.malformed": (400, "invalid_request_error"),
    "request.too_large": (413, "request_too_large"),
    "request.timeout": (408, "invalid_request_error"),
    "request.not_proxied": (404, "not_found_error"),
}
_DENIED = (400, "invalid_request_error")

# What the caller (or their admin) can do about a refusal, by reason: the second half of the
# message a gateway answers with, when the refusal carries no hint of its own.
_DENIAL_FIX: dict[str, str] = {
    "identity": "present a valid claudesec proxy token or OIDC token as the API key",
    "identity.idp_unavailable": "retry when the identity provider answers again",
    "identity.token_store_unavailable": "retry when the proxy's token store is readable again",
    "audit.unavailable": "retry once the audit log can be written again",
    "policy.unknown_user": "ask an admin to give you a role (policy.users or identity.group_roles)",
    "policy.role_not_assigned": "use a token for a role you hold, or ask an admin to assign it",
    "policy.unknown_role": "ask an admin to define the role in policy.roles",
    "policy.malformed_request": "send a valid Messages request",
    "policy.model_not_allowed": "use a model the role allows (the role's models setting)",
    "policy.max_tokens_exceeded": (
        "ask for fewer max_tokens, or set max_tokens_mode = 'clamp' on the role"
    ),
    "policy.input_too_large": "send a shorter prompt, or raise the role's max_input_tokens",
    "policy.tools_not_allowed": "set tools_allowed = true on the role, or use a client preset",
    "policy.outside_hours": "call within the role's allowed_hours (UTC)",
    "policy.minute_budget_exceeded": "wait a minute, or raise the role's tokens_per_minute",
    "policy.day_budget_exceeded": "wait until 00:00 UTC, or raise the role's tokens_per_day",
    "dlp.blocked": "remove the secret or personal data from the prompt, or use dlp = 'redact'",
    "dlp.uninspectable": "send content DLP can read, or use a role with dlp = 'log'",
    "request.malformed": "send a JSON body",
    "request.too_large": "send a smaller request (proxy.max_request_bytes)",
    "request.not_proxied": "the proxy relays the Messages, count_tokens, models and batch APIs",
}


def _by_reason(table: dict[str, Any], reason: str) -> Any:
    return table.get(reason) or table.get(reason.partition(".")[0])


def denial_status(reason: str) -> tuple[int, str]:
    """The HTTP status and Anthropic ``error.type`` a gateway answers a denial with."""
    found: tuple[int, str] | None = _by_reason(_DENIAL_STATUS, reason)
    return found or _DENIED


def denial_fix(reason: str) -> str:
    """What to do about a denial with this reason ("" when nothing general can be said)."""
    found: str | None = _by_reason(_DENIAL_FIX, reason)
    return found or ""


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
        self.detail = message

    def wire_message(self) -> str:
        """The one line a gateway answers with: ``claudesec: <reason>: <why>; fix: <what>``.

        Clients show ``error.message`` as is, so it starts with who refused and says what to do.
        """
        fix = self.hint or denial_fix(self.reason)
        return f"claudesec: {self.reason}: {self.detail}" + (f"; fix: {fix}" if fix else "")


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
    status (:attr:`CallDenied.status`). ``upstream`` describes the credential the attempt goes
    out with (:meth:`claudesec.guard.upstream.UpstreamCredential.fields`); it is recorded on
    the admission and call records, never on a refusal (nothing went out).
    """

    method: str
    path: str
    body: Any = None
    opaque: bool = False
    stream: bool = False
    attempt: int = 0
    origin: Origin | None = None
    upstream: Mapping[str, str] = field(default_factory=dict)
    # What else the attempt carries upstream besides its body, as (name, value): the
    # caller's own headers (never the credential's, nor transport ones) and query
    # parameters. DLP inspects them too: the SDK sends ``workspace_id`` and
    # ``user_profile_id`` as headers, and ``extra_headers``/``extra_query`` take anything.
    headers: tuple[tuple[str, str], ...] = ()
    query: tuple[tuple[str, str], ...] = ()


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
    # The seq of the admission record written ahead of the call (0: none was written).
    admission_seq: int = 0
    # The id of the admission in the client's intent journal, which its call record carries
    # ("": not journaled; see claudesec.audit.intents).
    call_id: str = ""

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
        cache = positive_int(usage.get("cache_creation_input_tokens")) + positive_int(
            usage.get("cache_read_input_tokens")
        )
        return cls(
            input_tokens=positive_int(usage.get("input_tokens")),
            output_tokens=positive_int(usage.get("output_tokens")),
            stop_reason=short_str(message.get("stop_reason")),
            model=short_str(message.get("model")),
            cache_tokens=cache,
        )


def positive_int(value: Any) -> int:
    """``value`` when it is a positive int (not a bool), else 0: counts from untrusted JSON."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def short_str(value: Any) -> str:
    """``value`` cut to 200 characters when it is a string, else "": labels from untrusted JSON."""
    return value[:200] if isinstance(value, str) else ""
