"""Slow and idle clients on raw loopback sockets (slowloris): the proxy closes them and keeps
serving well-behaved clients. Each wait is on the socket's EOF with a generous bound; no
test measures how long anything took."""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Callable

from claudesec.emulator import Emulator
from tests.fixtures.emulator import API_VERSION
from tests.proxy.conftest import RunningProxy
from tests.proxy.test_server import MESSAGE, events, send

BOUND_S = 60.0  # how long a socket may take to be closed before the test fails
SLOW = {"header_timeout_s": 0.5, "body_timeout_s": 0.5, "idle_timeout_s": 0.5}


def _connect(proxy: RunningProxy) -> socket.socket:
    return socket.create_connection((proxy.host, proxy.port), timeout=BOUND_S)


def _until_eof(sock: socket.socket) -> bytes:
    """Everything the proxy sends until it closes the connection (socket.timeout: it never
    did within BOUND_S)."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    sock.close()
    return received


def _headers(proxy: RunningProxy, token: str, length: int) -> bytes:
    return (
        b"POST /v1/messages HTTP/1.1\r\nHost: proxy\r\nContent-Type: application/json\r\n"
        + f"x-api-key: {token}\r\nanthropic-version: {API_VERSION}\r\n".encode()
        + f"Content-Length: {length}\r\n\r\n".encode()
    )


def _well_behaved_call(proxy: RunningProxy, token: str) -> int:
    return send(proxy, "POST", "/v1/messages", MESSAGE, {"x-api-key": token})[0]


def test_partial_headers_and_missing_bodies_are_closed_while_others_are_served(
    start_proxy: Callable[..., RunningProxy], emulator: Emulator
) -> None:
    proxy = start_proxy(**SLOW)
    token = proxy.token()
    body = json.dumps(MESSAGE).encode()
    partial, no_body = [], []
    for _ in range(40):
        sock = _connect(proxy)
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: proxy\r\nx-api-key: ")
        partial.append(sock)
        sock = _connect(proxy)
        sock.sendall(_headers(proxy, token, len(body)) + body[:10])
        no_body.append(sock)
    silent = [_connect(proxy) for _ in range(10)]  # connect and send nothing at all

    # One client trickles a header line byte by byte: activity does not extend the deadline.
    trickler = _connect(proxy)
    closed = threading.Event()

    def trickle() -> None:
        line = b"POST /v1/messages HTTP/1.1\r\n" + b"X-Slow: " + b"a" * 10_000
        try:
            for byte in line:
                trickler.sendall(bytes([byte]))
                readable, _, _ = select.select([trickler], [], [], 0.05)
                if readable and not trickler.recv(1):
                    break
        except OSError:
            pass  # a reset is the proxy closing on it too (it may RST a half-sent request)
        closed.set()

    thread = threading.Thread(target=trickle)
    thread.start()

    assert _well_behaved_call(proxy, token) == 200
    for sock in partial + silent:
        assert _until_eof(sock) == b""  # closed without an answer: there was no request
    for sock in no_body:
        answer = _until_eof(sock)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
        assert b"did not arrive within" in answer
    assert closed.wait(BOUND_S)
    thread.join(BOUND_S)
    trickler.close()
    assert _well_behaved_call(proxy, token) == 200
    assert proxy.handle.server.connections.timed_out >= len(partial) + len(silent) + 1
    timed_out = [e for e in events(proxy) if e.reason == "request.timeout"]
    assert len(timed_out) == len(no_body)
    assert {e.extra["http_status"] for e in timed_out} == {408}
    assert len(emulator.state.requests()) == 2  # only the well-behaved calls went upstream


def test_an_idle_keep_alive_connection_is_closed(
    start_proxy: Callable[..., RunningProxy],
) -> None:
    proxy = start_proxy(**SLOW)
    sock = _connect(proxy)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: proxy\r\n\r\n")
    answer = _until_eof(sock)  # answered, kept alive, then closed once idle
    assert answer.startswith(b"HTTP/1.1 200")


def test_connections_over_the_cap_are_refused_and_the_slots_come_back(
    start_proxy: Callable[..., RunningProxy],
) -> None:
    proxy = start_proxy(header_timeout_s=1.0, max_connections=5)
    holders = [_connect(proxy) for _ in range(5)]
    for sock in holders:
        sock.sendall(b"GET /heal")
    server = proxy.handle.server
    deadline = time.monotonic() + BOUND_S
    while server.connections.open < 5 and time.monotonic() < deadline:
        time.sleep(0.01)  # polling a condition, with a deadline
    assert server.connections.open == 5
    refused = _until_eof(_connect(proxy))
    assert refused.startswith(b"HTTP/1.1 503") and b"too many connections" in refused
    for sock in holders:
        assert _until_eof(sock) == b""
    # The slots are free again.
    assert send(proxy, "GET", "/healthz")[0] == 200
