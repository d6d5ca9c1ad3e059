"""The Anthropic key the proxy injects: read from its source, cached, re-read on rotation.

``proxy.key_source`` names where the key lives, in the schemes every key setting uses
(:mod:`claudesec.secrets_source`): ``store:NAME`` (a key managed by ``claudesec keys``, read at
``AWSCURRENT``), ``secretsmanager:SECRET_ID``, ``keyring:SERVICE/NAME`` or ``env:VAR``.

The value is cached for ``proxy.key_cache_s`` so the request path never waits on AWS; after a
``keys rotate`` moves ``AWSCURRENT`` the proxy picks the new key up within that time, or at
once when the upstream answers 401 (the server then calls :meth:`CachedKey.invalidate`).
Keep the cache TTL below ``keys.overlap_hours``, the time the previous key stays active.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from claudesec.errors import ClaudesecError

if TYPE_CHECKING:
    from claudesec.secrets_source import ResolvedSecret


class CachedKey:
    """The key for the request path: a cached read, refreshed off the event loop.

    Concurrent requests that find the cache stale wait for one read, not one each. A failed
    refresh keeps serving the previous key until it is ``max_stale_s`` old, so a brief
    Secrets Manager outage does not take the proxy down with it.
    """

    def __init__(
        self,
        load: Callable[[], ResolvedSecret],
        *,
        ttl_s: float,
        max_stale_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._ttl_s = ttl_s
        self._max_stale_s = max(ttl_s * 4, 60.0) if max_stale_s is None else max_stale_s
        self._clock = clock
        self._value: ResolvedSecret | None = None
        self._loaded_at = 0.0
        self._lock: asyncio.Lock | None = None
        self.loads = 0  # reads so far: for tests and /healthz

    def invalidate(self) -> None:
        self._loaded_at = -float("inf")

    def peek(self) -> ResolvedSecret | None:
        return self._value

    async def get(self) -> ResolvedSecret:
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
            except ClaudesecError:
                usable = self._value is not None and (
                    self._clock() - stale_since < self._max_stale_s
                )
                if usable and self._value is not None:
                    return self._value
                raise
            self.loads += 1
            self._value, self._loaded_at = fresh, self._clock()
            return fresh
