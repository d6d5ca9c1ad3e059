"""One Admin API request with bounded retries: the inventory's transport.

The same wire handling as :class:`claudesec.anthropic_admin.AdminClient` (plain ``urllib``,
no SDK import; errors scrubbed of the credential; ``retry-after`` honoured on 429 and 5xx
retried with backoff, both bounded), widened to what the inventory needs: an OAuth bearer
token as well as an Admin API key, ``anthropic-beta`` flags per resource, query parameters as
pairs (arrays repeat), and the odd side-effect-free POST (an external key's ``validate``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

from claudesec.anthropic_admin import (
    API_VERSION,
    RETRYABLE_STATUS,
    AnthropicError,
    Sleeper,
    _backoff,
    _error_fields,
    _network_failures,
    _retry_after,
    _send,
)
from claudesec.errors import ConfigError
from claudesec.redact import redact, scrub

OAUTH_BETA = "oauth-2025-04-20"
CredentialKind = Literal["admin_key", "oauth"]


@dataclass(frozen=True)
class Credential:
    """A secret and how it is sent: ``x-api-key`` (Admin key) or ``Bearer`` (OAuth token)."""

    kind: CredentialKind
    secret: str

    def __repr__(self) -> str:
        return f"Credential({self.kind!r}, {redact(self.secret)!r})"


class AdminHttp:
    """Sends requests to one Admin API base URL; thread-safe (no shared connection)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 10.0,
        max_retries: int = 4,
        max_retry_wait_s: float = 30.0,
        sleep: Sleeper = time.sleep,
    ) -> None:
        if not base_url.startswith(("https://", "http://")):
            raise ConfigError(f"anthropic.base_url must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.max_retries = max(0, max_retries)
        self.max_retry_wait_s = max_retry_wait_s
        self._sleep = sleep

    def request(
        self,
        method: str,
        path: str,
        params: Sequence[tuple[str, str]],
        credential: Credential,
        *,
        betas: Sequence[str] = (),
    ) -> dict[str, Any]:
        """The JSON object answered; :class:`AnthropicError` once retries are spent."""
        headers = {
            "anthropic-version": API_VERSION,
            "accept": "application/json",
            "user-agent": "claudesec",
        }
        flags = list(betas)
        if credential.kind == "oauth":
            headers["authorization"] = f"Bearer {credential.secret}"
            flags.insert(0, OAUTH_BETA)
        else:
            headers["x-api-key"] = credential.secret
        if flags:
            headers["anthropic-beta"] = ",".join(flags)
        body = None
        if method == "POST":
            body = b"{}"
            headers["content-type"] = "application/json"
        url = self.base_url + path + (f"?{urlencode(list(params))}" if params else "")
        label = f"{method} {path}"
        attempt = 0
        while True:
            try:
                answer = _send(method, url, headers, body, self.timeout_s)
            except _network_failures() as exc:
                if attempt < self.max_retries:
                    attempt += 1
                    self._sleep(_backoff(attempt))
                    continue
                reason = scrub(
                    str(getattr(exc, "reason", exc)) or type(exc).__name__, [credential.secret]
                )
                raise AnthropicError(
                    f"Anthropic Admin API unreachable at {self.base_url} ({label}): {reason}",
                    hint="check anthropic.base_url and the network",
                ) from None
            if 200 <= answer.status < 300:
                try:
                    data = json.loads(answer.body or b"{}")
                except ValueError:
                    raise AnthropicError(
                        f"Anthropic Admin API sent a non-JSON answer to {label}",
                        status=answer.status,
                    ) from None
                if not isinstance(data, dict):
                    raise AnthropicError(
                        f"Anthropic Admin API sent a non-object answer to {label}",
                        status=answer.status,
                    )
                return data
            retry_after = _retry_after(answer.headers)
            if answer.status in RETRYABLE_STATUS and attempt < self.max_retries:
                wait = retry_after if retry_after is not None else _backoff(attempt + 1)
                if wait <= self.max_retry_wait_s:
                    attempt += 1
                    self._sleep(wait)
                    continue
            error_type, message = _error_fields(answer.body)
            message = scrub(message, [credential.secret])
            raise AnthropicError(
                f"Anthropic Admin API {label} failed: {answer.status} {error_type or 'error'}"
                + (f": {message}" if message else ""),
                status=answer.status,
                error_type=error_type,
                retry_after=retry_after,
            )
