"""The credential the proxy calls Anthropic with: a static key, or federation (no key at all).

``proxy.upstream_credential = "key"`` injects the key ``proxy.key_source`` names
(:class:`~claudesec.proxy.keysource.CachedKey`). ``"federation"`` holds no key: the proxy
exchanges its own workload identity token (``proxy.federation_identity_token_file``, e.g. a
Kubernetes projected service-account token, re-read at every exchange) under
``proxy.federation_rule_id`` for short-lived access tokens, sent as ``Authorization: Bearer``.

The exchange and its refresh are the SDK's own: ``WorkloadIdentityCredentials`` does the
``jwt-bearer`` grant and ``TokenCache`` decides when to refresh (advisory window 120 s before
expiry, serving the current token if a refresh fails; mandatory 30 s before, one exchange in
flight however many requests wait). The one adaptation: the SDK stamps ``expires_at`` from
the wall clock, and :class:`_OnClock` restates it on the proxy's clock, so tests and drills
drive token lifetimes with the emulator's clock instead of sleeping.

Both kinds describe themselves for the audit record (``upstream``): a key by its hint, a
federated token by issuer, subject, rule, organisation, service account and workspace.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from claudesec.errors import ConfigError, ExternalServiceError
from claudesec.guard.upstream import ObservedIdentityToken, UpstreamCredential

if TYPE_CHECKING:
    from claudesec.config import ProxyConfig
    from claudesec.proxy.keysource import CachedKey

OAUTH_BETA = "oauth-2025-04-20"


@dataclass(frozen=True, slots=True)
class UpstreamAuth:
    """The headers one upstream request authenticates with, and what the record says."""

    headers: Mapping[str, str]
    value: str  # the secret sent: handed back to :meth:`UpstreamCredentialSource.rejected`
    described: UpstreamCredential

    def __repr__(self) -> str:
        return f"UpstreamAuth(kind={self.described.kind!r})"


class UpstreamCredentialSource(Protocol):
    """What the server needs of an upstream credential."""

    async def get(self) -> UpstreamAuth: ...

    def rejected(self, value: str) -> None:
        """The upstream answered 401 to ``value``: get a fresh one next time."""

    def describe(self) -> UpstreamCredential: ...

    @property
    def loaded(self) -> bool: ...


class StaticKey:
    """``upstream_credential = "key"``: the cached key of ``proxy.key_source``."""

    def __init__(self, key: CachedKey) -> None:
        self.key = key

    async def get(self) -> UpstreamAuth:
        value = (await self.key.get()).value
        return UpstreamAuth({"x-api-key": value}, value, UpstreamCredential.api_key(value))

    def rejected(self, value: str) -> None:
        del value
        # The key may just have been rotated out: read it again for the next request.
        self.key.invalidate()

    def describe(self) -> UpstreamCredential:
        current = self.key.peek()
        if current is None:
            return UpstreamCredential(kind="api_key")
        return UpstreamCredential.api_key(current.value)

    @property
    def loaded(self) -> bool:
        return self.key.peek() is not None


class _OnClock:
    """The SDK provider with ``expires_at`` restated on ``clock`` (see the module docstring)."""

    def __init__(self, provider: Any, clock: Callable[[], float]) -> None:
        self._provider = provider
        self._clock = clock
        self.exchanges = 0  # successful exchanges so far

    def __call__(self, *, force_refresh: bool = False) -> Any:
        from anthropic.lib.credentials import AccessToken

        token = self._provider(force_refresh=force_refresh)
        self.exchanges += 1
        if token.expires_at is None:
            return token
        # Read right after the SDK stamped it: the lifetime it was given, to the second
        # (a tick in between shortens it by one, the safe side).
        lifetime = token.expires_at - int(time.time())
        return AccessToken(token=token.token, expires_at=int(self._clock()) + lifetime)


@dataclass(frozen=True)
class FederationSettings:
    """Where the proxy's workload identity comes from; see ``[proxy] federation_*``."""

    rule_id: str
    organization_id: str
    identity_token_file: str
    service_account_id: str = ""
    workspace_id: str = ""

    @classmethod
    def from_config(
        cls, proxy: ProxyConfig, environ: Mapping[str, str] | None = None
    ) -> FederationSettings:
        """The settings, each falling back to the SDK's own environment variable; a missing
        one is a configuration error naming both (the first, when several are missing; see
        :meth:`problems` for all of them)."""
        picked, problems = cls._pick(proxy, environ)
        if problems:
            raise problems[0]
        return cls(**picked)

    @classmethod
    def problems(
        cls, proxy: ProxyConfig, environ: Mapping[str, str] | None = None
    ) -> list[ConfigError]:
        """Every required setting that is missing (``config validate``), none when the proxy
        calls with a key."""
        if proxy.upstream_credential != "federation":
            return []
        return cls._pick(proxy, environ)[1]

    @staticmethod
    def _pick(
        proxy: ProxyConfig, environ: Mapping[str, str] | None
    ) -> tuple[dict[str, str], list[ConfigError]]:
        env = os.environ if environ is None else environ
        picked: dict[str, str] = {}
        problems: list[ConfigError] = []
        for field_name, key, var, required in _FEDERATION_SETTINGS:
            found = getattr(proxy, key) or env.get(var, "")
            if required and not found:
                problems.append(
                    ConfigError(
                        f"proxy.{key} is not set (nor ${var}), and "
                        "proxy.upstream_credential = 'federation' needs it",
                        hint=f"set proxy.{key} or export {var}",
                    )
                )
            picked[field_name] = found
        return picked, problems


# (FederationSettings field, [proxy] key, the SDK's environment variable, required)
_FEDERATION_SETTINGS: tuple[tuple[str, str, str, bool], ...] = (
    ("rule_id", "federation_rule_id", "ANTHROPIC_FEDERATION_RULE_ID", True),
    ("organization_id", "federation_organization_id", "ANTHROPIC_ORGANIZATION_ID", True),
    (
        "identity_token_file",
        "federation_identity_token_file",
        "ANTHROPIC_IDENTITY_TOKEN_FILE",
        True,
    ),
    ("service_account_id", "federation_service_account_id", "ANTHROPIC_SERVICE_ACCOUNT_ID", False),
    ("workspace_id", "federation_workspace_id", "ANTHROPIC_WORKSPACE_ID", False),
)


class FederatedToken:
    """``upstream_credential = "federation"``: short-lived tokens from the proxy's own identity.

    ``clock`` is the time the proxy judges token lifetimes by (wall time unless a test or
    drill drives it); ``ca_file`` trusts an upstream with a private CA, as for the proxy's
    forwarded requests.
    """

    def __init__(
        self,
        settings: FederationSettings,
        *,
        base_url: str,
        ca_file: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        import httpx2
        from anthropic.lib.credentials import (
            IdentityTokenFile,
            TokenCache,
            WorkloadIdentityCredentials,
        )

        self.settings = settings
        self._observed = ObservedIdentityToken(IdentityTokenFile(settings.identity_token_file))
        verify: Any = True
        if ca_file:
            import ssl

            verify = ssl.create_default_context(cafile=ca_file)
        self._http = httpx2.Client(timeout=30.0, verify=verify)
        self._credentials = WorkloadIdentityCredentials(
            identity_token_provider=self._observed,
            federation_rule_id=settings.rule_id,
            organization_id=settings.organization_id,
            service_account_id=settings.service_account_id or None,
            workspace_id=settings.workspace_id or None,
            http_client=self._http,
        )
        try:
            self._credentials.bind_base_url(base_url)
        except Exception as exc:
            self._http.close()
            raise ConfigError(
                f"cannot exchange tokens at {base_url}: {exc}",
                hint="the token endpoint must be https (or loopback)",
            ) from None
        self._provider = _OnClock(self._credentials, clock)
        self._cache = TokenCache(self._provider, time_source=clock)
        self._base = UpstreamCredential(
            kind="federation",
            rule_id=settings.rule_id,
            organization_id=settings.organization_id,
            service_account_id=settings.service_account_id,
            workspace_id=settings.workspace_id,
        )
        self._loaded = False

    async def get(self) -> UpstreamAuth:
        from anthropic import AnthropicError

        try:
            token = await self._cache.async_get_token()
        except AnthropicError as exc:
            # The SDK's message is already redacted (no assertion, no token).
            raise ExternalServiceError(
                f"the proxy could not get an upstream token by federation: {exc}",
                hint="check the identity token file, the federation rule and the auth events",
            ) from None
        self._loaded = True
        headers = {"authorization": f"Bearer {token}"}
        return UpstreamAuth(headers, token, self.describe())

    @property
    def exchanges(self) -> int:
        """Token exchanges so far: for tests, drills and ``/healthz``."""
        return self._provider.exchanges

    def rejected(self, value: str) -> None:
        del value
        self._cache.invalidate()

    def describe(self) -> UpstreamCredential:
        return self._observed.describe(self._base)

    @property
    def loaded(self) -> bool:
        return self._loaded

    def close(self) -> None:
        self._http.close()


def with_oauth_beta(existing: str) -> str:
    """The client's ``anthropic-beta`` flags plus the one a Bearer token needs (deduplicated)."""
    flags = [flag.strip() for flag in existing.split(",") if flag.strip()]
    if OAUTH_BETA not in flags:
        flags.append(OAUTH_BETA)
    return ",".join(flags)
