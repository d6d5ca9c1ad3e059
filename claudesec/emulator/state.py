"""Everything the emulator remembers: keys, models, fault knobs, the request log, usage.

One lock guards it all. Handler threads and the test thread both call in, and every method
returns frozen snapshots, so a caller never sees a record change under its feet.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from claudesec.emulator.faults import Fault, FaultKind
from claudesec.emulator.federation import FederationRegistry
from claudesec.emulator.keys import (
    KEY_KINDS,
    KEY_STATUSES,
    Actor,
    IssuedKey,
    KeyKind,
    KeyRecord,
    KeyScope,
    KeyStatus,
    Principal,
    generate_secret,
    kind_of_secret,
    new_id,
    partial_key_hint,
    secret_digest,
)
from claudesec.emulator.models import ModelSpec, default_models
from claudesec.emulator.oauth import AccessToken, IssuedToken, TokenStore, is_oauth_token
from claudesec.emulator.org_resources import OrgResources

DEFAULT_RETRY_AFTER_S = 1.0
DEFAULT_REQUEST_LOG_LIMIT = 10_000
DEFAULT_USAGE_LOG_LIMIT = 100_000
_MAX_FAULTS = 100_000
# A held stream gives up waiting after this long, so a test that fails before releasing it
# cannot leave a server thread blocked for good.
STREAM_HOLD_LIMIT_S = 60.0


class TransitionError(ValueError):
    """A key update the Admin API refuses, such as re-activating an archived key."""


@dataclass(frozen=True)
class RequestRecord:
    """One request the emulator received on the API surface (control calls are not logged).

    ``headers`` never holds a credential: ``x-api-key`` and ``authorization`` are removed and
    only ``credential_hint`` (a redacted hint) and ``key_id`` (when the credential matched a
    registered key, whatever its status) say who called.
    """

    seq: int
    at: datetime
    request_id: str
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    key_id: str | None
    credential_hint: str | None
    status: int  # 0 when the connection was dropped without an answer
    fault: FaultKind | None = None
    streamed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "request_id": self.request_id,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "body": self.body,
            "key_id": self.key_id,
            "credential_hint": self.credential_hint,
            "status": self.status,
            "fault": self.fault.value if self.fault else None,
            "streamed": self.streamed,
        }


@dataclass(frozen=True)
class UsageRecord:
    """Tokens billed for one served message; the usage report aggregates these."""

    at: datetime
    key_id: str | None
    workspace_id: str | None
    model: str
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    service_tier: str = "standard"


@dataclass(frozen=True)
class Settings:
    """The fault knobs that persist until changed (pending one-shot faults live apart)."""

    latency_ms: float = 0.0
    stream_event_delay_ms: float = 0.0
    retry_after_s: float = DEFAULT_RETRY_AFTER_S
    open_mode: bool = False


CredentialKind = Literal["api", "admin", "oauth"]


@dataclass(frozen=True)
class AuthResult:
    """Who a credential belongs to. ``key`` is None for an unregistered key in open mode;
    ``token`` is set for an OAuth access token (``kind == "oauth"``)."""

    kind: CredentialKind
    key: KeyRecord | None = None
    token: AccessToken | None = None

    @property
    def workspace_id(self) -> str | None:
        if self.token is not None:
            return self.token.workspace_id
        return self.key.workspace_id if self.key is not None else None


@dataclass
class _Counters:
    key_seq: int = 0
    request_seq: int = 0
    key_order: dict[str, int] = field(default_factory=dict)


class EmulatorState:
    """The registry of keys and the knobs of one emulator. Safe to share between threads."""

    def __init__(
        self,
        *,
        open_mode: bool = False,
        organization_id: str | None = None,
        organization_name: str = "Emulated Organization",
        request_log_limit: int = DEFAULT_REQUEST_LOG_LIMIT,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self._initial_clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self._base_clock = self._initial_clock
        self._clock_offset = timedelta(0)
        self.organization_id = organization_id or _uuid_like()
        self.organization_name = organization_name
        self.default_workspace_id = new_id("wrkspc")
        self.default_user_id = new_id("user")
        self._initial_open_mode = open_mode
        self._request_log_limit = request_log_limit
        self._keys: dict[str, KeyRecord] = {}
        self._by_digest: dict[str, str] = {}
        self._models: list[ModelSpec] = default_models()
        self._faults: deque[Fault] = deque()
        self._settings = Settings(open_mode=open_mode)
        self._stream_hold: threading.Event | None = None
        self._requests: deque[RequestRecord] = deque(maxlen=request_log_limit)
        self._usage: deque[UsageRecord] = deque(maxlen=DEFAULT_USAGE_LOG_LIMIT)
        self._counters = _Counters()
        # The audience an assertion must carry when its rule names none (docs/federation.md).
        self.default_audience = "https://api.anthropic.com"
        self.federation = FederationRegistry(
            default_workspace_id=self.default_workspace_id, clock=self.now
        )
        self.tokens = TokenStore(self.now)
        self.org = OrgResources(clock=self.now)

    # ---------------------------------------------------------------------------------- clock

    def now(self) -> datetime:
        """The emulator's time: the injected clock plus whatever :meth:`advance_clock` added.

        Token expiry, assertion validity and key expiry all read this, so tests move time
        forward instead of sleeping.
        """
        with self._lock:
            return self._base_clock() + self._clock_offset

    def freeze_clock(self) -> datetime:
        """Stop the emulator's time where it is (until :meth:`reset`); returns that moment.

        With time frozen, lifetimes and expiries are exact: a test reads ``expires_in == 200``
        or "valid at +59 s, expired at +60 s" without depending on how fast the machine is.
        """
        with self._lock:
            frozen = self._base_clock()
            self._base_clock = lambda: frozen
            return frozen + self._clock_offset

    def advance_clock(self, seconds: float) -> datetime:
        """Move the emulator's time forward (never back); returns the new now."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._clock_offset += timedelta(seconds=seconds)
        return self.now()

    # ----------------------------------------------------------------------------- lifecycle

    def reset(self) -> None:
        """Forget keys, faults, knobs, logs and usage; restore the default model catalogue.

        The organization and default workspace ids stay, so a long-running server keeps its
        identity across drills.
        """
        with self._lock:
            self._keys.clear()
            self._by_digest.clear()
            self._models = default_models()
            self._faults.clear()
            self._settings = Settings(open_mode=self._initial_open_mode)
            if self._stream_hold is not None:
                self._stream_hold.set()  # let any held stream finish
            self._stream_hold = None
            self._requests.clear()
            self._usage.clear()
            self._counters = _Counters()
            self._clock_offset = timedelta(0)
            self._base_clock = self._initial_clock
        self.federation.reset()
        self.tokens.reset()
        self.org.reset()

    # ---------------------------------------------------------------------------------- keys

    def add_key(
        self,
        kind: KeyKind = "api",
        *,
        name: str | None = None,
        status: KeyStatus = "active",
        workspace_id: str | None = None,
        created_at: datetime | None = None,
        expires_at: datetime | None = None,
        created_by: Actor | None = None,
        secret: str | None = None,
        scope: KeyScope = "workspace",
        service_account_id: str | None = None,
        user_id: str | None = None,
    ) -> IssuedKey:
        """Register a key and return ``(key_id, secret)``; the secret is not kept.

        ``secret`` registers a key minted elsewhere (a drill's canary); by default a fresh
        random key of the real format is generated. ``created_at`` in the past makes aged
        keys for rotation-policy tests. ``service_account_id`` / ``user_id`` bind the key to
        a principal; only such a key may have ``scope="organization"`` (no workspace).
        """
        if scope == "organization" and not (service_account_id or user_id):
            raise ValueError("only a principal-bound key can have organization scope")
        principal: Principal | None = None
        if service_account_id:
            principal = Principal("service_account_actor", service_account_id)
        elif user_id:
            principal = Principal("user_actor", user_id)
        if kind not in KEY_KINDS:
            raise ValueError(f"unknown key kind {kind!r}; expected one of {KEY_KINDS}")
        if status not in KEY_STATUSES:
            raise ValueError(f"unknown key status {status!r}; expected one of {KEY_STATUSES}")
        secret = secret if secret is not None else generate_secret(kind)
        if not secret:
            raise ValueError("a key secret cannot be empty")
        digest = secret_digest(secret)
        with self._lock:
            if digest in self._by_digest:
                raise ValueError("this secret is already registered")
            self._counters.key_seq += 1
            key_id = new_id("apikey")
            record = KeyRecord(
                id=key_id,
                kind=kind,
                name=name if name is not None else f"{kind}-key-{self._counters.key_seq}",
                status=status,
                workspace_id=workspace_id or self.default_workspace_id,
                created_at=_aware(created_at) if created_at else self.now(),
                created_by=created_by or Actor(id=self.default_user_id),
                partial_key_hint=partial_key_hint(secret),
                expires_at=_aware(expires_at) if expires_at else None,
                secret_sha256=digest,
                scope=scope,
                principal=principal,
            )
            self._keys[key_id] = record
            self._by_digest[digest] = key_id
            self._counters.key_order[key_id] = self._counters.key_seq
        return IssuedKey(key_id, secret)

    def get_key(self, key_id: str) -> KeyRecord:
        """The key's current record; ``KeyError`` when the id is unknown."""
        with self._lock:
            return self._keys[key_id]

    def list_keys(self, kind: KeyKind | None = None) -> list[KeyRecord]:
        """Keys newest first (the Admin API's listing order), optionally of one kind."""
        with self._lock:
            ordered = sorted(
                self._keys.values(),
                key=lambda k: (k.created_at, self._counters.key_order[k.id]),
                reverse=True,
            )
        return [k for k in ordered if kind is None or k.kind == kind]

    def set_key_status(self, key_id: str, status: KeyStatus) -> KeyRecord:
        """Force a status, bypassing the Admin API's rules: a test-setup tool."""
        if status not in KEY_STATUSES:
            raise ValueError(f"unknown key status {status!r}; expected one of {KEY_STATUSES}")
        with self._lock:
            record = replace(self._keys[key_id], status=status)
            self._keys[key_id] = record
            return record

    def update_key(
        self, key_id: str, *, name: str | None = None, status: KeyStatus | None = None
    ) -> KeyRecord:
        """Apply an Admin API update with the API's rules.

        ``archived`` and ``expired`` are terminal: asking such a key for another status
        raises :class:`TransitionError` (the API answers 400). ``expired`` cannot be set.
        """
        if status is not None and status not in ("active", "inactive", "archived"):
            raise TransitionError("status: Input should be 'active', 'inactive' or 'archived'")
        if name is not None and not name.strip():
            raise TransitionError("name: String should have at least 1 character")
        with self._lock:
            record = self._keys[key_id]
            current = record.effective_status(self.now())
            if status is not None and status != current and current in ("archived", "expired"):
                raise TransitionError(f"Cannot change the status of an API key that is {current}")
            record = replace(
                record,
                name=name if name is not None else record.name,
                status=status if status is not None else record.status,
            )
            self._keys[key_id] = record
            return record

    def authenticate(self, secret: str) -> AuthResult | None:
        """Who ``secret`` is, if the emulator should accept it; None means 401.

        A registered key is accepted only while active, even in open mode, so drills that
        deactivate a key still see it refused. Open mode accepts unregistered credentials.
        """
        if is_oauth_token(secret):
            # OAuth tokens are never accepted on trust, not even in open mode: an expired
            # or unknown token is exactly what a drill expects to see refused.
            token = self.tokens.lookup(secret)
            if token is None or token.expired(self.now()):
                return None
            return AuthResult(kind="oauth", token=token)
        digest = secret_digest(secret)
        with self._lock:
            key_id = self._by_digest.get(digest)
            record = self._keys.get(key_id) if key_id else None
            open_mode = self._settings.open_mode
        if record is not None:
            if record.effective_status(self.now()) != "active":
                return None
            return AuthResult(kind=record.kind, key=record)
        if open_mode and secret:
            return AuthResult(kind=kind_of_secret(secret) or "api")
        return None

    def add_oauth_token(
        self,
        *,
        scopes: Iterable[str] = ("org:admin",),
        lifetime_s: int = 3600,
        workspace_id: str | None = None,
        service_account_id: str | None = None,
        user_id: str | None = None,
    ) -> IssuedToken:
        """An OAuth access token as ``ant auth login --scope ...`` would give (a user's by
        default). The secret is returned once; only its digest is kept."""
        return self.tokens.add(
            scopes=frozenset(scopes),
            lifetime_s=lifetime_s,
            workspace_id=workspace_id,
            service_account_id=service_account_id,
            user_id=user_id if user_id or service_account_id else self.default_user_id,
        )

    def key_for_secret(self, secret: str) -> KeyRecord | None:
        """The registered key with this secret, whatever its status."""
        with self._lock:
            key_id = self._by_digest.get(secret_digest(secret))
            return self._keys.get(key_id) if key_id else None

    # -------------------------------------------------------------------------------- models

    @property
    def models(self) -> list[ModelSpec]:
        with self._lock:
            return list(self._models)

    def add_model(self, spec: ModelSpec) -> None:
        """Serve another model, listed first (newest)."""
        with self._lock:
            self._models = [spec, *(m for m in self._models if m.id != spec.id)]

    def resolve_model(self, model_id: str) -> ModelSpec | None:
        with self._lock:
            for spec in self._models:
                if model_id == spec.id or model_id in spec.aliases:
                    return spec
        return None

    # -------------------------------------------------------------------------------- knobs

    @property
    def settings(self) -> Settings:
        with self._lock:
            return self._settings

    def configure(
        self,
        *,
        latency_ms: float | None = None,
        stream_event_delay_ms: float | None = None,
        retry_after_s: float | None = None,
        open_mode: bool | None = None,
    ) -> Settings:
        """Change the persistent knobs; arguments left as None keep their value."""
        for label, value in (
            ("latency_ms", latency_ms),
            ("stream_event_delay_ms", stream_event_delay_ms),
            ("retry_after_s", retry_after_s),
        ):
            if value is not None and value < 0:
                raise ValueError(f"{label} cannot be negative")
        with self._lock:
            current = self._settings
            self._settings = Settings(
                latency_ms=current.latency_ms if latency_ms is None else float(latency_ms),
                stream_event_delay_ms=current.stream_event_delay_ms
                if stream_event_delay_ms is None
                else float(stream_event_delay_ms),
                retry_after_s=current.retry_after_s
                if retry_after_s is None
                else float(retry_after_s),
                open_mode=current.open_mode if open_mode is None else bool(open_mode),
            )
            return self._settings

    def hold_streams(self) -> threading.Event:
        """From now on send each stream's first event, then hold the rest until the returned
        event is set (it stays set: later streams run straight through).

        A stream in progress without timing: a test reads the first event (through the SDK, a
        plain client or the proxy), does what it tests while the stream is open (a second
        stream, a shutdown, a signal), then releases it. A held stream gives up waiting after
        :data:`STREAM_HOLD_LIMIT_S`.
        """
        gate = threading.Event()
        with self._lock:
            if self._stream_hold is not None:
                self._stream_hold.set()
            self._stream_hold = gate
        return gate

    def stream_hold(self) -> threading.Event | None:
        """The gate set by :meth:`hold_streams`, while it still holds streams."""
        with self._lock:
            gate = self._stream_hold
        return gate if gate is not None and not gate.is_set() else None

    def inject_fault(
        self,
        kind: FaultKind | str,
        count: int = 1,
        *,
        path_prefix: str = "/v1/",
        retry_after: float | None = None,
    ) -> None:
        """Make the next ``count`` matching requests fail with ``kind``, in FIFO order."""
        fault_kind = FaultKind(kind)
        if count < 1:
            raise ValueError("count must be at least 1")
        if retry_after is not None and retry_after < 0:
            raise ValueError("retry_after cannot be negative")
        fault = Fault(kind=fault_kind, path_prefix=path_prefix, retry_after=retry_after)
        with self._lock:
            if len(self._faults) + count > _MAX_FAULTS:
                raise ValueError(f"at most {_MAX_FAULTS} faults may be pending")
            self._faults.extend([fault] * count)

    def pending_faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def take_fault(
        self, path: str, *, streaming: bool, only_streaming: bool = False
    ) -> Fault | None:
        """Consume the first pending fault that applies to this request, if any."""
        with self._lock:
            for index, fault in enumerate(self._faults):
                if only_streaming and not fault.kind.streaming_only:
                    continue
                if fault.matches(path, streaming):
                    del self._faults[index]
                    return fault
        return None

    # --------------------------------------------------------------------------- request log

    def record_request(
        self,
        *,
        request_id: str,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: Any,
        key_id: str | None,
        credential_hint: str | None,
        status: int,
        fault: FaultKind | None = None,
        streamed: bool = False,
    ) -> RequestRecord:
        with self._lock:
            self._counters.request_seq += 1
            record = RequestRecord(
                seq=self._counters.request_seq,
                at=self.now(),
                request_id=request_id,
                method=method,
                path=path,
                query=query,
                headers=headers,
                body=body,
                key_id=key_id,
                credential_hint=credential_hint,
                status=status,
                fault=fault,
                streamed=streamed,
            )
            self._requests.append(record)
            return record

    def requests(
        self, *, path: str | None = None, method: str | None = None
    ) -> list[RequestRecord]:
        """Requests seen so far, oldest first, optionally only one path and/or method."""
        with self._lock:
            records = list(self._requests)
        return [
            r
            for r in records
            if (path is None or r.path == path) and (method is None or r.method == method)
        ]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # --------------------------------------------------------------------------------- usage

    def record_usage(self, record: UsageRecord) -> None:
        with self._lock:
            self._usage.append(record)

    def usage(self) -> list[UsageRecord]:
        with self._lock:
            return list(self._usage)

    def extend_usage(self, records: Iterable[UsageRecord]) -> None:
        """Seed past usage (for usage-report tests and drills)."""
        with self._lock:
            self._usage.extend(records)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _uuid_like() -> str:
    import uuid

    return str(uuid.uuid4())
