"""Anthropic's Admin API (list, retrieve and update API keys; the usage report) and the
"does this key work" probe.

Plain ``urllib`` rather than the ``anthropic`` SDK: importing the SDK costs ~2 s, which every
``keys`` command would pay for five small JSON calls. The wire format is the one the SDK's
``client.organization.api_keys`` speaks (``/v1/organizations/api_keys``).

Every message this module produces is scrubbed of the keys it was given: a server or a proxy
that echoes a credential back cannot make it reach a terminal or a log line.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, urlencode

from claudesec.errors import ConfigError, ExternalServiceError, one_line
from claudesec.redact import redact, scrub

if TYPE_CHECKING:
    from claudesec.config import KeysConfig

API_VERSION = "2023-06-01"
KEYS_PATH = "/v1/organizations/api_keys"
USAGE_PATH = "/v1/organizations/usage_report/messages"
PROBE_PATH = "/v1/models?limit=1"
OAUTH_TOKEN_PREFIX = "sk-ant-oat"  # noqa: S105  # a kind prefix, not a secret
RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})

KeyStatus = Literal["active", "inactive", "archived", "expired"]
ProbeOutcome = Literal["valid", "rejected", "error"]


class AnthropicError(ExternalServiceError):
    """The Anthropic API failed or refused a request (exit 3)."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        error_type: str = "",
        retry_after: float | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.error_type = error_type
        self.retry_after = retry_after


@dataclass(frozen=True)
class RemoteKey:
    """One API key as the Admin API lists it (never the secret: only Anthropic's hint)."""

    id: str
    name: str
    status: str
    partial_key_hint: str
    workspace_id: str | None
    created_at: str
    created_by: str
    # When the key stops working (None: never, the case ``keys status`` flags), whether it is
    # bound to a workspace or the organisation, and who it acts as ("service_account_actor:
    # svac_..." / "user_actor:user_..."; "" for an unbound key).
    expires_at: str | None = None
    scope: str = ""
    principal: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RemoteKey:
        scope = data.get("scope") or {}
        workspace = data.get("workspace_id")
        if workspace is None and isinstance(scope, Mapping):
            workspace = scope.get("workspace_id")
        creator = data.get("created_by") or {}
        return cls(
            id=str(data.get("id", "")),
            name=str(data.get("name", "")),
            status=str(data.get("status", "")),
            partial_key_hint=str(data.get("partial_key_hint") or ""),
            workspace_id=str(workspace) if workspace else None,
            created_at=str(data.get("created_at", "")),
            created_by=str(creator.get("id", "")) if isinstance(creator, Mapping) else "",
            expires_at=str(data["expires_at"]) if data.get("expires_at") else None,
            scope=str(scope.get("type") or "") if isinstance(scope, Mapping) else "",
            principal=_principal(data.get("principal")),
        )


def _principal(value: Any) -> str:
    if not isinstance(value, Mapping):
        return ""
    kind = str(value.get("type") or "")
    ident = value.get("service_account_id") or value.get("user_id") or value.get("id") or ""
    return f"{kind}:{ident}" if kind else ""


@dataclass(frozen=True)
class ProbeResult:
    """What one authenticated call with a key said: ``valid`` (200), ``rejected`` (401/403)
    or ``error`` (anything else: the key's state is unknown)."""

    outcome: ProbeOutcome
    status: int
    detail: str = ""


@dataclass(frozen=True)
class UsageRow:
    """One row of the usage report: a time bucket and the group it was split by."""

    starting_at: str
    ending_at: str
    api_key_id: str | None
    workspace_id: str | None
    model: str | None
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int
    cache_creation_input_tokens: int


Sleeper = Callable[[float], None]


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


def _send(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    timeout: float,
) -> _Answer:
    """One HTTP exchange. Raises ``OSError`` (and friends) when no answer came back."""
    import urllib.error
    import urllib.request

    if not url.startswith(("https://", "http://")):
        raise AnthropicError(f"anthropic.base_url must be an http(s) URL, got {url!r}")
    # The scheme is checked above: no file: or custom-scheme URLs reach urlopen.
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers))  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return _Answer(
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                response.read(),
            )
    except urllib.error.HTTPError as exc:
        with exc:
            return _Answer(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read())


def _error_fields(body: bytes) -> tuple[str, str]:
    """The error's type and message; a body that is not Anthropic's JSON (an XML or HTML
    page from a proxy or a load balancer) is quoted in part, on one line."""
    try:
        data = json.loads(body)
        error = data.get("error", {}) if isinstance(data, dict) else {}
        return one_line(str(error.get("type", ""))), one_line(str(error.get("message", "")))
    except (ValueError, AttributeError):
        return "", one_line(body[:200].decode("utf-8", "replace"))


def _retry_after(headers: Mapping[str, str]) -> float | None:
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None


def _network_failures() -> tuple[type[BaseException], ...]:
    import http.client
    import urllib.error

    return (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError)


class AdminClient:
    """A small, retrying client for the Admin API endpoints claudesec needs.

    Retries (``max_retries``) cover 408/409/429/5xx/529 and dropped connections, honouring
    ``retry-after`` up to ``max_retry_wait_s``: every call here is idempotent (reads, and
    updates that set a status), so repeating one is always safe.
    """

    def __init__(
        self,
        base_url: str,
        admin_key: str,
        *,
        timeout_s: float = 10.0,
        max_retries: int = 2,
        max_retry_wait_s: float = 30.0,
        sleep: Sleeper = time.sleep,
    ) -> None:
        if not admin_key:
            raise ConfigError("the Anthropic Admin API key is empty")
        if admin_key.startswith(OAUTH_TOKEN_PREFIX):
            # The other credential: org:admin OAuth tokens serve federation and service
            # accounts, never the key endpoints (Anthropic answers 403 to them there).
            raise ConfigError(
                "the Admin API's key endpoints need an Admin API key (sk-ant-admin01-...); "
                f"anthropic.admin_key_source gave an OAuth access token ({redact(admin_key)})",
                hint="point admin_key_source at an Admin key; OAuth org:admin tokens serve the "
                "federation commands (anthropic.oauth_profile)",
            )
        self.base_url = base_url.rstrip("/")
        self._key = admin_key
        self.timeout_s = timeout_s
        self.max_retries = max(0, max_retries)
        self.max_retry_wait_s = max_retry_wait_s
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"AdminClient({self.base_url!r}, admin_key={redact(self._key)!r})"

    # ----------------------------------------------------------------- api keys

    def list_keys(
        self, *, status: str | None = None, workspace_id: str | None = None
    ) -> list[RemoteKey]:
        """Every API key of the organisation (all pages), newest first."""
        keys: list[RemoteKey] = []
        after: str | None = None
        while True:
            params: dict[str, str] = {"limit": "1000"}
            if status:
                params["status"] = status
            if workspace_id:
                params["workspace_id"] = workspace_id
            if after:
                params["after_id"] = after
            page = self._json("GET", f"{KEYS_PATH}?{urlencode(params)}")
            data = page.get("data") or []
            keys.extend(RemoteKey.from_json(item) for item in data if isinstance(item, Mapping))
            if not page.get("has_more") or not page.get("last_id"):
                return keys
            after = str(page["last_id"])

    def retrieve_key(self, key_id: str) -> RemoteKey:
        return RemoteKey.from_json(self._json("GET", f"{KEYS_PATH}/{quote(key_id, safe='')}"))

    def set_status(self, key_id: str, status: Literal["active", "inactive"]) -> RemoteKey:
        """Activate or deactivate a key (idempotent: setting the status it has is a no-op)."""
        return RemoteKey.from_json(
            self._json("POST", f"{KEYS_PATH}/{quote(key_id, safe='')}", {"status": status})
        )

    # ----------------------------------------------------------------- usage

    def usage_report(
        self,
        *,
        starting_at: datetime,
        ending_at: datetime | None = None,
        group_by: Sequence[str] = (),
        bucket_width: str = "1d",
    ) -> list[UsageRow]:
        """Token usage per bucket, split by ``group_by`` (api_key_id, workspace_id, model)."""
        rows: list[UsageRow] = []
        page: str | None = None
        while True:
            params: list[tuple[str, str]] = [
                ("starting_at", _rfc3339(starting_at)),
                ("bucket_width", bucket_width),
                ("limit", "31" if bucket_width == "1d" else "168"),
            ]
            if ending_at is not None:
                params.append(("ending_at", _rfc3339(ending_at)))
            params.extend(("group_by[]", name) for name in group_by)
            if page:
                params.append(("page", page))
            answer = self._json("GET", f"{USAGE_PATH}?{urlencode(params)}")
            rows.extend(_usage_rows(answer.get("data") or []))
            if not answer.get("has_more") or not answer.get("next_page"):
                return rows
            page = str(answer["next_page"])

    # ----------------------------------------------------------------- transport

    def _json(self, method: str, path: str, payload: Any = None) -> dict[str, Any]:
        headers = {
            "x-api-key": self._key,
            "anthropic-version": API_VERSION,
            "accept": "application/json",
            "user-agent": "claudesec",
        }
        body = None
        if payload is not None:
            body = json.dumps(payload).encode("utf-8")
            headers["content-type"] = "application/json"
        data = request_json(
            Exchange(
                method,
                self.base_url,
                path,
                headers,
                body,
                label=f"{method} {path.partition('?')[0]}",
                secret=self._key,
                unreachable_hint="check anthropic.base_url and the network; rerun to resume",
            ),
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            max_retry_wait_s=self.max_retry_wait_s,
            sleep=self._sleep,
            on_error=self._error,
        )
        return data if isinstance(data, dict) else {}

    def _error(self, answer: _Answer, label: str, retry_after: float | None) -> AnthropicError:
        hint: str | None = None
        if answer.status == 429:
            wait = f"retry after {retry_after:g}s" if retry_after is not None else "retry later"
            hint = f"the Admin API is throttling claudesec; {wait}, then rerun to resume"
        elif answer.status in (401, 403):
            hint = "check the Admin API key (anthropic.admin_key_source); it must be an admin key"
        elif answer.status >= 500:
            hint = "Anthropic had a server error; rerun to resume"
        return _failure(answer, label, retry_after, self._key, hint)


@dataclass(frozen=True)
class Exchange:
    """One Admin API request as sent: ``base_url + path``, its headers and body, the label
    errors name it by, and the secret scrubbed from anything echoed back."""

    method: str
    base_url: str
    path: str
    headers: Mapping[str, str]
    body: bytes | None
    label: str
    secret: str
    unreachable_hint: str = "check anthropic.base_url and the network"

    def __repr__(self) -> str:
        return f"Exchange({self.label!r})"


def request_json(
    exchange: Exchange,
    *,
    timeout_s: float,
    max_retries: int,
    max_retry_wait_s: float,
    sleep: Sleeper,
    on_error: Callable[[_Answer, str, float | None], AnthropicError] | None = None,
) -> Any:
    """The parsed JSON of a 2xx answer, with bounded retries: network failures with backoff,
    429 and 5xx after ``retry-after`` (or backoff) when the wait fits ``max_retry_wait_s``.
    Anything else raises :class:`AnthropicError`, built by ``on_error`` when given, never
    holding the secret."""
    label, secret = exchange.label, exchange.secret
    url = exchange.base_url + exchange.path
    attempt = 0
    while True:
        try:
            answer = _send(exchange.method, url, dict(exchange.headers), exchange.body, timeout_s)
        except _network_failures() as exc:
            if attempt < max_retries:
                attempt += 1
                sleep(_backoff(attempt))
                continue
            reason = scrub(str(getattr(exc, "reason", exc)) or type(exc).__name__, [secret])
            raise AnthropicError(
                f"Anthropic Admin API unreachable at {exchange.base_url} ({label}): {reason}",
                hint=exchange.unreachable_hint,
            ) from None
        if 200 <= answer.status < 300:
            try:
                return json.loads(answer.body or b"{}")
            except ValueError:
                raise AnthropicError(
                    f"Anthropic Admin API sent a non-JSON answer to {label}",
                    status=answer.status,
                ) from None
        retry_after = _retry_after(answer.headers)
        if answer.status in RETRYABLE_STATUS and attempt < max_retries:
            wait = retry_after if retry_after is not None else _backoff(attempt + 1)
            if wait <= max_retry_wait_s:
                attempt += 1
                sleep(wait)
                continue
        if on_error is not None:
            raise on_error(answer, label, retry_after)
        raise _failure(answer, label, retry_after, secret)


def _failure(
    answer: _Answer, label: str, retry_after: float | None, secret: str, hint: str | None = None
) -> AnthropicError:
    """The error for a non-2xx answer: its type and message, scrubbed of the secret."""
    error_type, message = _error_fields(answer.body)
    message = scrub(message, [secret])
    return AnthropicError(
        f"Anthropic Admin API {label} failed: {answer.status} {error_type or 'error'}"
        + (f": {message}" if message else ""),
        status=answer.status,
        error_type=error_type,
        retry_after=retry_after,
        hint=hint,
    )


def _backoff(attempt: int) -> float:
    return min(0.25 * 2.0 ** (attempt - 1), 4.0)


def _rfc3339(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _usage_rows(buckets: Sequence[Any]) -> Iterator[UsageRow]:
    for bucket in buckets:
        if not isinstance(bucket, Mapping):
            continue
        for row in bucket.get("results") or []:
            if not isinstance(row, Mapping):
                continue
            cache = row.get("cache_creation") or {}
            created = sum(int(v or 0) for v in cache.values()) if isinstance(cache, Mapping) else 0
            yield UsageRow(
                starting_at=str(bucket.get("starting_at", "")),
                ending_at=str(bucket.get("ending_at", "")),
                api_key_id=row.get("api_key_id"),
                workspace_id=row.get("workspace_id"),
                model=row.get("model"),
                input_tokens=int(row.get("uncached_input_tokens") or 0),
                output_tokens=int(row.get("output_tokens") or 0),
                cache_read_input_tokens=int(row.get("cache_read_input_tokens") or 0),
                cache_creation_input_tokens=created,
            )


# --------------------------------------------------------------------------- the probe


def probe_key(base_url: str, key: str, *, timeout_s: float = 10.0) -> ProbeResult:
    """One cheap authenticated call (``GET /v1/models``) with ``key``.

    ``rejected`` means Anthropic refused the key (401/403); ``error`` means the answer says
    nothing about the key (network, 429, 5xx), so the caller must not conclude either way.
    """
    headers = {"x-api-key": key, "anthropic-version": API_VERSION, "user-agent": "claudesec"}
    try:
        answer = _send("GET", base_url.rstrip("/") + PROBE_PATH, headers, None, timeout_s)
    except _network_failures() as exc:
        reason = scrub(str(getattr(exc, "reason", exc)) or type(exc).__name__, [key])
        return ProbeResult("error", 0, f"unreachable: {reason}")
    if 200 <= answer.status < 300:
        return ProbeResult("valid", answer.status)
    error_type, message = _error_fields(answer.body)
    detail = scrub(f"{error_type}: {message}" if error_type else message, [key])
    if answer.status in (401, 403):
        return ProbeResult("rejected", answer.status, detail)
    return ProbeResult("error", answer.status, detail)


# --------------------------------------------------------------------------- configuration


def resolve_admin_key(
    source: str,
    *,
    environ: Mapping[str, str] | None = None,
    keys_config: KeysConfig | None = None,
) -> str:
    """The Admin API key named by ``anthropic.admin_key_source`` (see
    :mod:`claudesec.secrets_source` for the schemes)."""
    from claudesec.secrets_source import read_secret

    return read_secret(
        source, setting="anthropic.admin_key_source", keys_config=keys_config, environ=environ
    ).value
