"""The Anthropic key the proxy injects: read from the key store, cached, re-read on rotation.

``proxy.key_source`` names where the key lives:

* ``store:NAME``: a key managed by ``claudesec keys`` in the configured store (``keys.store``:
  Secrets Manager or the keyring), read at ``AWSCURRENT`` through :mod:`claudesec.keys.stores`;
* ``secretsmanager:SECRET_ID``: any Secrets Manager secret (plain text, or JSON with ``key``);
* ``keyring:SERVICE/NAME``: a plain OS keyring entry;
* ``env:VAR``: the proxy's own environment (containers that mount secrets as variables).

The value is cached for ``proxy.key_cache_s`` so the request path never waits on AWS; after a
``keys rotate`` moves ``AWSCURRENT`` the proxy picks the new key up within that time, or at
once when the upstream answers 401 (the server then calls :meth:`CachedKey.invalidate`).
Keep the cache TTL below ``keys.overlap_hours``, the time the previous key stays active.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from claudesec.errors import ConfigError, ExternalServiceError

if TYPE_CHECKING:
    from claudesec.config import KeysConfig

_SCHEMES = "store:NAME, secretsmanager:SECRET_ID, keyring:SERVICE/NAME or env:VAR"


@dataclass(frozen=True, slots=True)
class UpstreamKey:
    """The injected key and, when the store knows it, the Anthropic key id (for audit)."""

    key: str = field(repr=False)
    key_id: str = ""


class KeyUnavailable(ExternalServiceError):
    """The configured key source gave no key (exit 3; the proxy answers 503)."""


def check_source(source: str) -> None:
    """Refuse an unusable ``proxy.key_source`` at start-up rather than on the first request."""
    scheme, _, rest = source.partition(":")
    if scheme not in ("store", "secretsmanager", "keyring", "env") or not rest:
        raise ConfigError(f"proxy.key_source {source!r} is not understood", hint=f"use {_SCHEMES}")
    if scheme == "keyring" and "/" not in rest:
        raise ConfigError("proxy.key_source keyring: needs SERVICE/NAME")
    if scheme == "env" and rest.startswith("CLAUDESEC_"):
        # CLAUDESEC_<SECTION>_<KEY> variables are config overrides; a key there would either
        # be rejected as an unknown setting or shown by `config show`.
        raise ConfigError("proxy.key_source must not name a CLAUDESEC_ variable")


def read_key(
    source: str,
    *,
    keys_config: KeysConfig | None = None,
    environ: Mapping[str, str] | None = None,
) -> UpstreamKey:
    """Read the key now (blocking: AWS or the keyring may be slow). Never cached."""
    check_source(source)
    scheme, _, rest = source.partition(":")
    if scheme == "env":
        value = (os.environ if environ is None else environ).get(rest, "").strip()
        if not value:
            raise KeyUnavailable(f"the variable {rest} named by proxy.key_source is not set")
        return UpstreamKey(value)
    if scheme == "keyring":
        import keyring
        import keyring.errors

        service, _, name = rest.partition("/")
        try:
            value = (keyring.get_password(service, name) or "").strip()
        except keyring.errors.KeyringError as exc:
            raise KeyUnavailable(f"cannot read the keyring entry {service}/{name}: {exc}") from exc
        if not value:
            raise KeyUnavailable(f"no key in the keyring at {service}/{name}")
        return UpstreamKey(value)

    from claudesec.config import KeysConfig

    keys = keys_config or KeysConfig()
    if scheme == "store":
        from claudesec.keys.stores import open_store

        text = open_store(keys).read(rest).text
    else:
        from claudesec.keys.stores.secretsmanager import SecretsManagerStore

        text = SecretsManagerStore.from_config(keys).read(rest).text
    return _parse_secret(text, rest)


def _parse_secret(text: str, name: str) -> UpstreamKey:
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("key"), str) and data["key"]:
            return UpstreamKey(data["key"].strip(), str(data.get("key_id") or ""))
        raise KeyUnavailable(f"secret {name} is JSON without a 'key' field")
    if not stripped:
        raise KeyUnavailable(f"secret {name} is empty")
    return UpstreamKey(stripped)


class CachedKey:
    """The key for the request path: a cached read, refreshed off the event loop.

    Concurrent requests that find the cache stale wait for one read, not one each. A failed
    refresh keeps serving the previous key until it is ``max_stale_s`` old, so a brief
    Secrets Manager outage does not take the proxy down with it.
    """

    def __init__(
        self,
        load: Callable[[], UpstreamKey],
        *,
        ttl_s: float,
        max_stale_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._ttl_s = ttl_s
        self._max_stale_s = max(ttl_s * 4, 60.0) if max_stale_s is None else max_stale_s
        self._clock = clock
        self._value: UpstreamKey | None = None
        self._loaded_at = 0.0
        self._lock: asyncio.Lock | None = None
        self.loads = 0  # reads so far: for tests and /healthz

    def invalidate(self) -> None:
        self._loaded_at = -float("inf")

    def peek(self) -> UpstreamKey | None:
        return self._value

    async def get(self) -> UpstreamKey:
        value = self._value
        if value is not None and self._clock() - self._loaded_at < self._ttl_s:
            return value
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._value is not None and self._clock() - self._loaded_at < self._ttl_s:
                return self._value
            stale_since = self._loaded_at
            try:
                fresh = await asyncio.to_thread(self._load)
            except ExternalServiceError:
                usable = self._value is not None and (
                    self._clock() - stale_since < self._max_stale_s
                )
                if usable and self._value is not None:
                    return self._value
                raise
            self.loads += 1
            self._value, self._loaded_at = fresh, self._clock()
            return fresh
