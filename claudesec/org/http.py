"""One Admin API request with bounded retries: the inventory's transport.

The wire handling is :func:`claudesec.anthropic_admin.request_json`'s, as for
:class:`~claudesec.anthropic_admin.AdminClient` (plain ``urllib``, no SDK import; errors
scrubbed of the credential; ``retry-after`` honoured on 429 and 5xx retried with backoff, both
bounded); what this adds is what the inventory needs: an OAuth bearer
token as well as an Admin API key, ``anthropic-beta`` flags per resource, query parameters as
pairs (arrays repeat), and the odd side-effect-free POST (an external key's ``validate``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

from claudesec.anthropic_admin import API_VERSION, AnthropicError, Exchange, Sleeper, request_json
from claudesec.errors import ConfigError
from claudesec.redact import redact

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
        query = f"?{urlencode(list(params))}" if params else ""
        data = request_json(
            Exchange(
                method,
                self.base_url,
                path + query,
                headers,
                body,
                label=f"{method} {path}",
                secret=credential.secret,
            ),
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            max_retry_wait_s=self.max_retry_wait_s,
            sleep=self._sleep,
        )
        if not isinstance(data, dict):
            raise AnthropicError(f"Anthropic Admin API sent a non-object answer to {method} {path}")
        return data
