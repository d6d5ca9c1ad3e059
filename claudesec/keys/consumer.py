"""The consumer's side: read the key a managed secret holds right now.

Applications call :func:`current_key` instead of reading the secret themselves, so every
consumer reads the right label (``AWSCURRENT``, named explicitly: a bare read can return a
stale version on some emulators) and caches it for a bounded time.

The cache is what makes rotation safe for consumers: a rotated-out key keeps working for
``keys.overlap_hours``, so any TTL well below that (the default is 60 s) never leaves a
process holding a dead key. On a 401, call ``current_key(name, ttl_s=0)`` to re-read at once
(after ``keys revoke`` the old key dies immediately).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from claudesec.keys.model import ManagedKey
from claudesec.stores.interface import CURRENT

if TYPE_CHECKING:
    from claudesec.config import Config, KeysConfig
    from claudesec.stores.interface import KeyStore

DEFAULT_TTL_S = 60.0

_lock = threading.Lock()
_keys: dict[tuple[object, ...], tuple[float, str]] = {}
_stores: dict[tuple[object, ...], KeyStore] = {}


def _store_identity(keys: KeysConfig) -> tuple[object, ...]:
    return (keys.store, keys.aws_region, keys.aws_endpoint_url, keys.aws_max_attempts)


def _store(keys: KeysConfig) -> KeyStore:
    # A boto3 client costs tens of milliseconds to build and is thread-safe: build it once.
    identity = _store_identity(keys)
    with _lock:
        store = _stores.get(identity)
    if store is None:
        from claudesec.stores import open_store

        store = open_store(keys)
        with _lock:
            store = _stores.setdefault(identity, store)
    return store


def current_key(name: str, config: Config | None = None, *, ttl_s: float = DEFAULT_TTL_S) -> str:
    """The key managed secret ``name`` holds at ``AWSCURRENT``, cached for ``ttl_s`` seconds.

    ``config`` defaults to the one ``claudesec`` would load here (``claudesec.toml``,
    ``[tool.claudesec]``, ``CLAUDESEC_*``). ``ttl_s=0`` bypasses the cache and refreshes it.
    Raises :class:`claudesec.errors.ClaudesecError` subclasses (never with the key in them).
    """
    if config is None:
        from claudesec.config import load_config

        config = load_config().config
    keys = config.keys
    secret = name if name.startswith(keys.secret_prefix) else keys.secret_prefix + name
    slot = (*_store_identity(keys), secret)
    now = time.monotonic()
    if ttl_s > 0:
        with _lock:
            cached = _keys.get(slot)
        if cached is not None and cached[0] > now:
            return cached[1]
    value = _store(keys).read(secret, stage=CURRENT)
    key = ManagedKey.from_json(value.text, secret=secret).key
    with _lock:
        _keys[slot] = (now + max(ttl_s, 0.0), key)
    return key


def clear_cache() -> None:
    """Forget every cached key and store (tests; a process that changed its configuration)."""
    with _lock:
        _keys.clear()
        _stores.clear()
