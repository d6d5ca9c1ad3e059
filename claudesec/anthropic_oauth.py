"""The ``org:admin`` OAuth credential, and the SDK client built on it.

Federation issuers and rules, service accounts and their workspace memberships take an OAuth
access token with the ``org:admin`` scope, not an Admin API key (:mod:`claudesec.anthropic_admin`
keeps the key endpoints). claudesec never takes that token on its command line: it asks the
anthropic SDK's own credential chain (``anthropic.lib.credentials``), so a token from
``ant auth login --scope org:admin`` (a profile on disk), ``ANTHROPIC_PROFILE``,
``ANTHROPIC_AUTH_TOKEN`` or a workload federation rule works unchanged, with the SDK's refresh.
``anthropic.oauth_profile`` names a profile explicitly.

When the chain would hand over the other kind of credential (``ANTHROPIC_API_KEY`` shadows the
OAuth chain; a key pasted into ``ANTHROPIC_AUTH_TOKEN``), that is said in one line before any
call (exit 2); when Anthropic refuses the credential, the line says what the operation needs
(exit 3). The SDK is imported only when a command needs it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from claudesec.errors import ClaudesecError, ConfigError, ExternalServiceError, one_line
from claudesec.redact import redact

if TYPE_CHECKING:
    import anthropic

    from claudesec.config import AnthropicConfig

NEEDS = "an OAuth access token with the org:admin scope"
LOGIN_HINT = (
    "run `ant auth login --scope org:admin` (optionally --profile NAME and set "
    "anthropic.oauth_profile), or set ANTHROPIC_PROFILE"
)
_KEY_PREFIXES = {"sk-ant-admin": "an Admin API key", "sk-ant-api": "an API key"}


@dataclass(frozen=True)
class OrgAdminCredential:
    """Where the OAuth credential came from (for messages) and the SDK provider serving it."""

    source: str
    provider: Any = field(repr=False)
    extra_headers: Mapping[str, str] = field(default_factory=dict)


def _key_kind(value: str) -> str | None:
    for prefix, kind in _KEY_PREFIXES.items():
        if value.startswith(prefix):
            return kind
    return None


def resolve_org_admin_credential(
    profile: str = "", *, base_url: str = "https://api.anthropic.com"
) -> OrgAdminCredential:
    """The credential the SDK's chain gives for org:admin work; :class:`ConfigError` when it
    would give an API key, or nothing at all."""
    from anthropic import AnthropicError
    from anthropic.lib.credentials import CredentialsFile, default_credentials

    if profile:
        try:
            provider = CredentialsFile(profile)
            provider.bind_base_url(base_url)
            headers = provider.extra_headers()
        except AnthropicError as exc:
            raise ConfigError(
                f"anthropic.oauth_profile {profile!r}: {one_line(str(exc))}", hint=LOGIN_HINT
            ) from None
        return OrgAdminCredential(f"profile {profile!r}", provider, headers)
    api_key = os.environ.get("ANTHROPIC_API_KEY")
    if api_key:
        kind = _key_kind(api_key) or "an API key"
        raise ConfigError(
            f"this command needs {NEEDS}, but the anthropic SDK's credential chain picks "
            f"ANTHROPIC_API_KEY ({kind}, {redact(api_key)})",
            hint="unset ANTHROPIC_API_KEY for this command, or set anthropic.oauth_profile to "
            "an `ant auth login --scope org:admin` profile",
        )
    token = os.environ.get("ANTHROPIC_AUTH_TOKEN")
    if token and _key_kind(token):
        raise ConfigError(
            f"ANTHROPIC_AUTH_TOKEN holds {_key_kind(token)} ({redact(token)}); this command "
            f"needs {NEEDS}",
            hint=LOGIN_HINT,
        )
    try:
        result = default_credentials(base_url=base_url)
    except AnthropicError as exc:
        raise ConfigError(
            f"the anthropic SDK's credential chain failed: {one_line(str(exc))}", hint=LOGIN_HINT
        ) from None
    if result is None:
        raise ConfigError(f"no credential found: this command needs {NEEDS}", hint=LOGIN_HINT)
    return OrgAdminCredential(_describe(token), result.provider, dict(result.extra_headers))


def _describe(token: str | None) -> str:
    if token:
        return "ANTHROPIC_AUTH_TOKEN"
    if os.environ.get("ANTHROPIC_PROFILE"):
        return f"profile {os.environ['ANTHROPIC_PROFILE']!r} (ANTHROPIC_PROFILE)"
    if os.environ.get("ANTHROPIC_FEDERATION_RULE_ID"):
        return "workload identity federation (ANTHROPIC_FEDERATION_RULE_ID)"
    return "the active anthropic profile"


@dataclass
class OrgAdminClient:
    """An ``anthropic.Anthropic`` on the org:admin credential, and the one place its errors
    become claudesec's (:meth:`error`)."""

    sdk: anthropic.Anthropic
    credential: OrgAdminCredential

    def error(self, exc: BaseException, operation: str) -> ClaudesecError:
        """A claudesec error for an SDK exception raised by ``operation`` (one line)."""
        import anthropic

        if isinstance(exc, ClaudesecError):
            return exc
        source = self.credential.source
        if isinstance(exc, anthropic.PermissionDeniedError):
            return ExternalServiceError(
                f"Anthropic refused {operation}: it needs {NEEDS}, and the credential from "
                f"{source} does not qualify ({_server_message(exc)})",
                hint=LOGIN_HINT,
            )
        if isinstance(exc, anthropic.AuthenticationError):
            return ExternalServiceError(
                f"Anthropic refused the OAuth token from {source} for {operation} "
                f"({_server_message(exc)})",
                hint="the token expired or was revoked; " + LOGIN_HINT,
            )
        if isinstance(exc, anthropic.APIStatusError):
            return ExternalServiceError(
                f"Anthropic {operation} failed: {exc.status_code} {_server_message(exc)}"
            )
        if isinstance(exc, anthropic.APIConnectionError):
            return ExternalServiceError(
                f"Anthropic unreachable at {self.sdk.base_url} for {operation}",
                hint="check anthropic.base_url and the network",
            )
        if isinstance(exc, anthropic.AnthropicError):
            return ConfigError(
                f"the OAuth credential from {source} failed for {operation}: {one_line(str(exc))}",
                hint=LOGIN_HINT,
            )
        raise exc


def _server_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return one_line(str(message or exc))[:300]


def org_admin_client(config: AnthropicConfig, *, max_retries: int = 2) -> OrgAdminClient:
    """The SDK client for org:admin work, on the credential the SDK's chain resolves."""
    import anthropic

    credential = resolve_org_admin_credential(config.oauth_profile, base_url=config.base_url)
    sdk = anthropic.Anthropic(
        credentials=credential.provider,
        base_url=config.base_url,
        default_headers=dict(credential.extra_headers),
        max_retries=max_retries,
        timeout=config.timeout_s,
    )
    return OrgAdminClient(sdk, credential)
