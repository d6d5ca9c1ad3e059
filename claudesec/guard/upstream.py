"""Which credential a call goes out with, as the audit log records it (never the secret).

A call reaches Anthropic either with a static API key or with an access token minted by
workload identity federation (the SDK's ``WorkloadIdentityCredentials``: an OIDC token of the
workload's own exchanged at ``/v1/oauth/token`` under a federation rule). The audit record's
``upstream`` field says which: ``{"kind": "api_key", "key_hint": ...}``, or ``{"kind":
"federation", "issuer", "subject", "rule_id", "organization_id", "service_account_id",
"workspace_id"}``. ``federation migrate`` reads it to tell who still uses static keys.

The issuer and subject come from the workload's own identity token, read (never verified:
the token endpoint does that) as it is handed to the exchange: :class:`ObservedIdentityToken`
wraps the identity-token provider and keeps the two claims of the last token, not the token.
The rule, organisation, service account and workspace are what the workload asked for.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from claudesec.redact import redact

__all__ = [
    "ObservedIdentityToken",
    "UpstreamCredential",
    "describe_sdk_client",
    "unverified_claims",
]

_MAX_CLAIM_CHARS = 512


@dataclass(frozen=True, slots=True)
class UpstreamCredential:
    """A description of the credential a call is sent with; ``fields()`` is what is recorded."""

    kind: str = ""  # "api_key", "oauth" (a static bearer token) or "federation"
    key_hint: str = ""
    issuer: str = ""
    subject: str = ""
    rule_id: str = ""
    organization_id: str = ""
    service_account_id: str = ""
    workspace_id: str = ""

    @classmethod
    def api_key(cls, key: str) -> UpstreamCredential:
        return cls(kind="api_key", key_hint=redact(key) if key else "")

    @classmethod
    def oauth(cls, token: str) -> UpstreamCredential:
        return cls(kind="oauth", key_hint=redact(token) if token else "")

    @property
    def federated(self) -> bool:
        return self.kind == "federation"

    def fields(self) -> dict[str, str]:
        found = {
            "kind": self.kind,
            "key_hint": self.key_hint,
            "issuer": self.issuer,
            "subject": self.subject,
            "rule_id": self.rule_id,
            "organization_id": self.organization_id,
            "service_account_id": self.service_account_id,
            "workspace_id": self.workspace_id,
        }
        return {k: v[:_MAX_CLAIM_CHARS] for k, v in found.items() if v}


def unverified_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified: for *describing* our own identity token only."""
    try:
        payload = token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class ObservedIdentityToken:
    """An identity-token provider that remembers who the last token it handed out names.

    Wraps the SDK's ``IdentityTokenProvider`` (a callable returning the JWT: a projected
    service-account token file, a CI job's token...). It keeps ``iss`` and ``sub`` of the last
    token, never the token itself.
    """

    def __init__(self, provider: Callable[[], str]) -> None:
        self._provider = provider
        self._lock = threading.Lock()
        self.issuer = ""
        self.subject = ""

    def __call__(self) -> str:
        token = self._provider()
        claims = unverified_claims(token)
        issuer, subject = claims.get("iss"), claims.get("sub")
        with self._lock:
            self.issuer = issuer[:_MAX_CLAIM_CHARS] if isinstance(issuer, str) else ""
            self.subject = subject[:_MAX_CLAIM_CHARS] if isinstance(subject, str) else ""
        return token

    def describe(self, base: UpstreamCredential) -> UpstreamCredential:
        with self._lock:
            return replace(base, issuer=self.issuer, subject=self.subject)


class _Describer:
    """Describes an SDK client's credential now (a federated one learns its subject late)."""

    def __init__(self, base: UpstreamCredential, observed: ObservedIdentityToken | None) -> None:
        self._base = base
        self._observed = observed

    def __call__(self) -> UpstreamCredential:
        if self._observed is None:
            return self._base
        return self._observed.describe(self._base)


def describe_sdk_client(client: Any) -> Callable[[], UpstreamCredential]:
    """A describer of the credential an ``anthropic.Anthropic`` client sends.

    ``client.credentials`` set by ``credentials=`` or by the SDK's own chain
    (``ANTHROPIC_FEDERATION_RULE_ID`` / ``ANTHROPIC_ORGANIZATION_ID`` /
    ``ANTHROPIC_IDENTITY_TOKEN_FILE``): when it is a ``WorkloadIdentityCredentials``, its
    identity-token provider is wrapped in an :class:`ObservedIdentityToken` so the records of
    the calls it makes name the workload. Otherwise the static key or token's hint.
    """
    credentials = getattr(client, "credentials", None)
    if credentials is not None:
        return _describe_provider(credentials)
    api_key = getattr(client, "api_key", None)
    if isinstance(api_key, str) and api_key:
        return _Describer(UpstreamCredential.api_key(api_key), None)
    token = getattr(client, "auth_token", None)
    if isinstance(token, str) and token:
        return _Describer(UpstreamCredential.oauth(token), None)
    return _Describer(UpstreamCredential(), None)


def _describe_provider(provider: Any) -> Callable[[], UpstreamCredential]:
    from anthropic.lib.credentials import StaticToken, WorkloadIdentityCredentials

    if isinstance(provider, WorkloadIdentityCredentials):
        return _Describer(*observe_workload_credentials(provider))
    if isinstance(provider, StaticToken):
        return _Describer(UpstreamCredential(kind="oauth"), None)
    # A profile, or a provider of the caller's own: a bearer token of unknown origin.
    return _Describer(UpstreamCredential(kind="oauth"), None)


def observe_workload_credentials(
    provider: Any,
) -> tuple[UpstreamCredential, ObservedIdentityToken | None]:
    """The federation description of a ``WorkloadIdentityCredentials``, and its observed token.

    The SDK keeps the rule, organisation, service account and workspace on the instance and
    documents no accessor for them; they are read defensively (an SDK that renamed them gives
    a description with ``kind`` only, never a failure). Its identity-token provider is
    replaced by an :class:`ObservedIdentityToken` around it (once: a client copy that shares
    the instance does not wrap it twice).
    """
    attrs: Mapping[str, Any] = getattr(provider, "__dict__", {})

    def text(name: str) -> str:
        value = attrs.get(name)
        return value if isinstance(value, str) else ""

    base = UpstreamCredential(
        kind="federation",
        rule_id=text("_federation_rule_id"),
        organization_id=text("_organization_id"),
        service_account_id=text("_service_account_id"),
        workspace_id=text("_workspace_id"),
    )
    inner = attrs.get("_identity_token_provider")
    if isinstance(inner, ObservedIdentityToken):
        return base, inner
    if not callable(inner):
        return base, None
    observed = ObservedIdentityToken(inner)
    provider._identity_token_provider = observed
    return base, observed
