"""Limits on client connections, below HTTP: a header deadline and a cap on open connections.

aiohttp bounds the idle time between requests (``keepalive_timeout``, which the proxy sets
from ``proxy.idle_timeout_s``) but not the time a client takes to send a request's headers:
a client sending a header line every few seconds (slowloris) held its connection, and its
file descriptor, forever. Each connection here is wrapped in a :class:`_Guard` protocol that

* closes it when the headers of a request are not complete ``header_timeout_s`` after the
  connection opened, or after the first byte following an answer (aiohttp's handler marks
  the headers complete by calling :meth:`ConnectionLimits.request_started`);
* refuses it at once (``503``, then close) while ``max_connections`` are open.

The body has its own deadline, enforced where the server reads it (``body_timeout_s``).
Only asyncio's public protocol interface is used: the aiohttp handler inside never knows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

log = logging.getLogger("claudesec.proxy")

_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Retry-After: 1\r\nConnection: close\r\nContent-Length: 101\r\n\r\n"
    b'{"type":"error","error":{"type":"overloaded_error","message":"the proxy has too many '
    b'connections"}}\n'
)


@dataclass(frozen=True, slots=True)
class Limits:
    header_timeout_s: float
    max_connections: int


class ConnectionLimits:
    """The open connections of one server, and the deadlines on them (one event loop)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.open = 0
        self.refused = 0
        self.timed_out = 0
        self._guards: dict[Any, _Guard] = {}

    def wrap(self, factory: Callable[[], asyncio.BaseProtocol]) -> Callable[[], asyncio.Protocol]:
        return lambda: _Guard(self, factory())

    def request_started(self, transport: Any) -> None:
        guard = self._guards.get(transport)
        if guard is not None:
            guard.busy = True
            guard.disarm()

    def request_finished(self, transport: Any) -> None:
        guard = self._guards.get(transport)
        if guard is not None:
            guard.busy = False


class _Guard(asyncio.Protocol):
    """One client connection: aiohttp's protocol inside, the deadlines outside."""

    def __init__(self, owner: ConnectionLimits, inner: asyncio.BaseProtocol) -> None:
        self._owner = owner
        self._inner: Any = inner
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._refused = False
        self.busy = False  # a request's headers are in and it is being served

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        owner = self._owner
        if owner.open >= owner.limits.max_connections:
            self._refused = True
            owner.refused += 1
            transport.write(_BUSY)
            transport.close()
            return
        owner.open += 1
        owner._guards[transport] = self
        self._arm()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if not self.busy and self._timer is None:
            self._arm()  # the first byte of the next request: its headers have a deadline
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self._refused:
            return None
        result: bool | None = self._inner.eof_received()
        return result

    def connection_lost(self, exc: Exception | None) -> None:
        self.disarm()
        if self._refused:
            return
        self._owner.open -= 1
        self._owner._guards.pop(self._transport, None)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if not self._refused:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if not self._refused:
            self._inner.resume_writing()

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._owner.limits.header_timeout_s, self._expire)

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        if self.busy or self._transport is None or self._transport.is_closing():
            return
        self._owner.timed_out += 1
        peer = self._transport.get_extra_info("peername")
        log.info(
            "closed a connection from %s: no complete request headers within %g s",
            peer[0] if isinstance(peer, tuple) else "?",
            self._owner.limits.header_timeout_s,
        )
        self._transport.close()


class GuardedSite(web.BaseSite):
    """``web.TCPSite`` with every connection wrapped by :class:`ConnectionLimits`."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        limits: ConnectionLimits,
        *,
        ssl_context: Any = None,
        backlog: int = 128,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._app_runner = runner
        self._host = host
        self._port = port
        self._limits = limits

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._app_runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            self._limits.wrap(server),
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=True,
        )

    @property
    def port(self) -> int:
        sockets = getattr(self._server, "sockets", None) or []
        return int(sockets[0].getsockname()[1]) if sockets else self._port
