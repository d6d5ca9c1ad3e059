"""Wiring: a :class:`ProxyServer` from the configuration, and the user-facing helpers.

Kept apart from :mod:`.server` so the CLI's token and ``env`` commands never import aiohttp.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from claudesec.errors import UsageError

if TYPE_CHECKING:
    from claudesec.audit.writer import BackgroundWriter
    from claudesec.config import Config, ProxyConfig
    from claudesec.guard.pipeline import AuditPipeline
    from claudesec.proxy.server import ProxyServer
    from claudesec.proxy.tokens import IssuedToken, TokenStore
    from claudesec.proxy.upstream import UpstreamCredentialSource

DAY_S = 86_400


@dataclass(frozen=True)
class ServeOptions:
    """Command-line overrides of ``[proxy]``; None keeps the configured value."""

    listen: str | None = None
    upstream: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None


def build_server(
    config: Config,
    options: ServeOptions | None = None,
    *,
    pipeline: AuditPipeline | None = None,
    environ: dict[str, str] | None = None,
    clock: Callable[[], float] | None = None,
) -> ProxyServer:
    """Everything the proxy needs, checked before it binds: a bad setting fails at start.

    ``pipeline`` defaults to the configuration's, writing through a background writer that
    the server flushes and closes when it stops. ``clock`` is the time federated upstream
    tokens are judged by (tests and drills drive it; wall time otherwise).
    """
    from claudesec.proxy.keysource import CachedKey
    from claudesec.proxy.server import ProxyServer, ProxySettings, parse_listen, server_ssl_context
    from claudesec.proxy.tokens import TokenStore
    from claudesec.secrets_source import check_source, read_secret

    opts = options or ServeOptions()
    proxy = config.proxy
    host, port = parse_listen(opts.listen or proxy.listen)
    cert = opts.tls_cert_file if opts.tls_cert_file is not None else proxy.tls_cert_file
    key_file = opts.tls_key_file if opts.tls_key_file is not None else proxy.tls_key_file
    if key_file and not cert:
        raise UsageError("a TLS key file needs a certificate file (proxy.tls_cert_file)")
    if cert:
        server_ssl_context(cert, key_file)  # fail now, not on the first connection
    upstream = (opts.upstream or proxy.upstream or config.anthropic.base_url).rstrip("/")
    if not upstream.startswith(("https://", "http://")):
        raise UsageError(f"the upstream {upstream!r} must be an http(s):// URL")
    for label, value in (
        ("max_request_bytes", proxy.max_request_bytes),
        ("max_concurrent_streams", proxy.max_concurrent_streams),
        ("header_timeout_s", proxy.header_timeout_s),
        ("body_timeout_s", proxy.body_timeout_s),
        ("idle_timeout_s", proxy.idle_timeout_s),
        ("max_connections", proxy.max_connections),
    ):
        if value <= 0:
            raise UsageError(f"proxy.{label} must be > 0")
    if proxy.upstream_credential != "federation":
        check_source(proxy.key_source, setting="proxy.key_source")
    settings = ProxySettings(
        host=host,
        port=port,
        upstream=upstream,
        max_request_bytes=proxy.max_request_bytes,
        max_concurrent_streams=proxy.max_concurrent_streams,
        retry_after_s=proxy.retry_after_s,
        upstream_timeout_s=proxy.upstream_timeout_s,
        shutdown_grace_s=proxy.shutdown_grace_s,
        header_timeout_s=proxy.header_timeout_s,
        body_timeout_s=proxy.body_timeout_s,
        idle_timeout_s=proxy.idle_timeout_s,
        max_connections=proxy.max_connections,
        tls_cert_file=cert,
        tls_key_file=key_file,
    )
    credential: UpstreamCredentialSource
    if proxy.upstream_credential == "federation":
        from claudesec.proxy.upstream import FederatedToken, FederationSettings

        credential = FederatedToken(
            FederationSettings.from_config(proxy, environ),
            base_url=upstream,
            ca_file=settings.upstream_ca_file,
            clock=clock or time.time,
        )
    else:
        from claudesec.proxy.upstream import StaticKey

        source, keys = proxy.key_source, config.keys
        credential = StaticKey(
            CachedKey(
                lambda: read_secret(
                    source, setting="proxy.key_source", keys_config=keys, environ=environ
                ),
                ttl_s=proxy.key_cache_s,
            )
        )
    writer = None
    try:
        tokens = TokenStore.from_config(proxy)
        if pipeline is None:
            pipeline, writer = _pipeline(config)
    except BaseException:
        close = getattr(credential, "close", None)
        if callable(close):
            close()  # the federated exchange's HTTP client
        raise
    return ProxyServer(
        settings, pipeline=pipeline, credential=credential, tokens=tokens, writer=writer
    )


def _pipeline(config: Config) -> tuple[AuditPipeline, BackgroundWriter]:
    """The shared audit pipeline, its records written off the event loop."""
    from claudesec.audit.store import AuditStore
    from claudesec.audit.writer import journaled_writer
    from claudesec.guard.pipeline import AuditPipeline

    # Opened now, so an unwritable store stops the proxy at start, not on the first call.
    # Admissions go to the intent journal: on disk before anything is forwarded, without
    # waiting on a commit (see claudesec.audit.intents).
    writer = journaled_writer(AuditStore.from_config(config.audit))
    try:
        pipeline = AuditPipeline.from_config(config, store=writer)
    except BaseException:
        writer.close()
        raise
    return pipeline, writer


# --------------------------------------------------------------------------- tokens


def parse_lifetime(text: str | None, proxy: ProxyConfig) -> float:
    """``--expires`` (``30d``, ``12h``) in seconds, within ``proxy.token_max_days``."""
    from claudesec.timeparse import parse_duration_ns

    seconds = proxy.token_default_days * DAY_S if text is None else parse_duration_ns(text) / 1e9
    if seconds <= 0:
        raise UsageError("--expires must be a positive duration", hint="e.g. 30d or 12h")
    if seconds > proxy.token_max_days * DAY_S:
        raise UsageError(
            f"--expires is longer than proxy.token_max_days ({proxy.token_max_days} days)"
        )
    return seconds


def create_token(
    config: Config,
    *,
    user: str,
    role: str,
    expires: str | None,
    name: str = "",
    store: TokenStore | None = None,
) -> IssuedToken:
    """Issue a token after checking that the policy knows the role (and the user's role)."""
    from claudesec.proxy.tokens import TokenStore

    roles = config.policy.roles
    if role not in roles:
        defined = ", ".join(sorted(roles)) or "none"
        raise UsageError(
            f"role {role!r} is not defined in policy.roles",
            hint=f"defined roles: {defined}; a token for an undefined role would be denied",
        )
    assigned = config.policy.users.get(user)
    if assigned is not None and assigned != role:
        raise UsageError(
            f"{user} is assigned role {assigned!r} in policy.users, not {role!r}",
            hint="issue the token for that role, or change policy.users",
        )
    lifetime = parse_lifetime(expires, config.proxy)
    target = store or TokenStore.from_config(config.proxy)
    return target.create(user=user, role=role, lifetime_s=lifetime, name=name)


# --------------------------------------------------------------------------- env

PLACEHOLDER = "<your claudesec proxy token>"


def public_url(proxy: ProxyConfig, listen: str | None = None) -> str:
    from claudesec.errors import ConfigError

    if proxy.public_url:
        return proxy.public_url.rstrip("/")
    value = listen or proxy.listen
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"proxy.listen {value!r} must be HOST:PORT")
    host = host.strip("[]")
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - reading the setting, not binding
        host = "127.0.0.1"
    shown = f"[{host}]" if ":" in host else host
    scheme = "https" if proxy.tls_cert_file else "http"
    return f"{scheme}://{shown}:{port}"


def env_lines(url: str, shell: str = "sh") -> list[str]:
    """What a user adds to point Claude Code or an SDK at the proxy; never a real token."""
    pairs = [("ANTHROPIC_BASE_URL", url), ("ANTHROPIC_API_KEY", PLACEHOLDER)]
    comment = [
        "# Point Claude Code, the Anthropic SDKs and other clients at the claudesec proxy.",
        "# Get a token with: claudesec proxy token create --user YOU --role ROLE",
        "# (or put an OIDC token from your IdP in ANTHROPIC_AUTH_TOKEN instead of the key).",
    ]
    if shell == "fish":
        return [*comment, *(f"set -gx {k} '{v}'" for k, v in pairs)]
    if shell == "powershell":
        return [*comment, *(f"$env:{k} = '{v}'" for k, v in pairs)]
    if shell == "dotenv":
        return [*comment, *(f"{k}={v}" for k, v in pairs)]
    if shell != "sh":
        raise UsageError(f"unknown shell {shell!r}", hint="sh, fish, powershell or dotenv")
    return [*comment, *(f"export {k}='{v}'" for k, v in pairs)]


def token_rows(
    store: TokenStore, clock: Callable[[], float] = time.time
) -> list[dict[str, object]]:
    now = clock()
    return [record.public(now) for record in store.all()]
