"""Which credential a request carries, and what kind it is.

Clients pass their credential where every Anthropic client already puts one, so nothing needs
patching: ``x-api-key`` (Claude Code with ``ANTHROPIC_API_KEY``, curl, n8n) or
``Authorization: Bearer`` (the Python SDK 2.x, Claude Code with ``ANTHROPIC_AUTH_TOKEN``).
The value is one of:

* a proxy token (``csp_...``), issued by ``claudesec proxy token create``;
* an OIDC JWT from the organisation's IdP (three base64url segments);
* an Anthropic key (``sk-ant-...``): refused and recorded, never forwarded. A client holding a
  real key is exactly what the proxy exists to prevent, and forwarding it would bypass the
  key store, rotation and revocation.

Two different credentials in one request are refused: which one decides would otherwise
depend on header order, and one of them could belong to someone else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from claudesec.proxy.tokens import looks_like_token
from claudesec.redact import redact

CredentialKind = Literal["none", "proxy_token", "jwt", "anthropic_key", "ambiguous", "unknown"]

ANTHROPIC_KEY_PREFIX = "sk-ant-"
_JWT_RE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")

# Headers that carry a client's credential or cookies; none of them ever goes upstream.
CLIENT_AUTH_HEADERS = frozenset(
    {"x-api-key", "authorization", "proxy-authorization", "cookie", "x-claudesec-token"}
)


@dataclass(frozen=True, slots=True)
class Credential:
    kind: CredentialKind
    value: str = field(default="", repr=False)

    @property
    def hint(self) -> str:
        """Safe to log: the credential's redacted form."""
        return redact(self.value) if self.value else ""


def classify(value: str) -> CredentialKind:
    if looks_like_token(value):
        return "proxy_token"
    if value.startswith(ANTHROPIC_KEY_PREFIX):
        return "anthropic_key"
    if _JWT_RE.match(value):
        return "jwt"
    return "unknown"


def extract_credential(headers: Mapping[str, str]) -> Credential:
    """The request's credential from ``x-api-key`` and ``Authorization: Bearer``.

    ``headers`` must be case-insensitive (aiohttp's ``CIMultiDictProxy`` is).
    """
    found: list[str] = []
    api_key = headers.get("x-api-key", "").strip()
    if api_key:
        found.append(api_key)
    authorization = headers.get("authorization", "").strip()
    if authorization:
        scheme, _, rest = authorization.partition(" ")
        if scheme.lower() != "bearer" or not rest.strip():
            return Credential("unknown")
        found.append(rest.strip())
    if not found:
        return Credential("none")
    # A real key anywhere decides, whatever else was sent: it must be recorded as such.
    for value in found:
        if value.startswith(ANTHROPIC_KEY_PREFIX):
            return Credential("anthropic_key", value)
    if len(set(found)) > 1:
        return Credential("ambiguous")
    return Credential(classify(found[0]), found[0])
