"""TLS, graceful shutdown and the key cache."""

from __future__ import annotations

import asyncio
import http.client
import json
import ssl
import threading
import time
from typing import Any

import pytest

from claudesec.emulator import Emulator
from claudesec.errors import ExternalServiceError
from claudesec.proxy.keysource import CachedKey
from claudesec.secrets_source import ResolvedSecret
from tests.fixtures.emulator import API_VERSION, MODEL

MESSAGE = {"model": MODEL, "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}


def test_tls_with_a_certificate_made_at_run_time(
    start_proxy: Any, oidc_tls: Any, emulator: Emulator
) -> None:
    proxy = start_proxy(tls_cert_file=str(oidc_tls.cert_file), tls_key_file=str(oidc_tls.key_file))
    assert proxy.base_url.startswith("https://")
    context = ssl.create_default_context(cafile=str(oidc_tls.ca_file))
    connection = http.client.HTTPSConnection(proxy.host, proxy.port, context=context, timeout=10)
    connection.request(
        "POST",
        "/v1/messages",
        body=json.dumps(MESSAGE),
        headers={"x-api-key": proxy.token(), "anthropic-version": API_VERSION},
    )
    assert connection.getresponse().status == 200
    connection.close()
    plain = http.client.HTTPConnection(proxy.host, proxy.port, timeout=5)
    with pytest.raises((http.client.HTTPException, OSError)):
        plain.request("GET", "/healthz")
        plain.getresponse()
    plain.close()


def test_shutdown_lets_an_in_flight_stream_finish(
    start_proxy: Any, held_stream: threading.Event
) -> None:
    proxy = start_proxy()
    release = held_stream  # the stream stays open until released
    token = proxy.token()
    result: dict[str, Any] = {}
    first = threading.Event()

    def stream() -> None:
        connection = http.client.HTTPConnection(proxy.host, proxy.port, timeout=10)
        connection.request(
            "POST",
            "/v1/messages",
            body=json.dumps({**MESSAGE, "stream": True}),
            headers={"x-api-key": token, "anthropic-version": API_VERSION},
        )
        response = connection.getresponse()
        response.readline()
        first.set()
        result["body"] = response.read()
        connection.close()

    client = threading.Thread(target=stream)
    client.start()
    assert first.wait(5)
    # What SIGTERM/SIGINT trigger in `claudesec proxy`, while the upstream holds the stream.
    stopper = threading.Thread(target=proxy.handle.stop)
    stopper.start()
    deadline = time.monotonic() + 10
    while not proxy.handle.server.draining and time.monotonic() < deadline:
        time.sleep(0.01)  # polling a condition, with a deadline
    assert proxy.handle.server.draining
    assert stopper.is_alive()  # waiting for the stream
    release.set()
    stopper.join(10)
    client.join(10)
    assert not stopper.is_alive()
    # Had the shutdown cut the stream, the rest (held upstream until now) would be missing.
    assert b"message_stop" in result["body"]
    refused = http.client.HTTPConnection(proxy.host, proxy.port, timeout=2)
    with pytest.raises(OSError):
        refused.request("GET", "/healthz")
        refused.getresponse()


def test_upstream_401_rereads_the_rotated_key(start_proxy: Any, emulator: Emulator) -> None:
    proxy = start_proxy()
    token = proxy.token()
    from tests.proxy.test_server import send

    assert send(proxy, "POST", "/v1/messages", MESSAGE, {"x-api-key": token})[0] == 200
    rotated = emulator.state.add_key("api", name="rotated")
    emulator.state.set_key_status(proxy.upstream_key.id, "inactive")
    import os

    os.environ["PROXY_TEST_UPSTREAM_KEY"] = rotated.secret
    assert send(proxy, "POST", "/v1/messages", MESSAGE, {"x-api-key": token})[0] == 401
    assert send(proxy, "POST", "/v1/messages", MESSAGE, {"x-api-key": token})[0] == 200
    assert emulator.state.requests()[-1].key_id == rotated.id


def test_key_cache_serves_the_last_key_through_a_brief_outage() -> None:
    now = [0.0]
    answers: list[ResolvedSecret | Exception] = [
        ResolvedSecret("first"),
        ExternalServiceError("down"),
    ]

    def load() -> ResolvedSecret:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    cache = CachedKey(load, ttl_s=10, max_stale_s=60, clock=lambda: now[0])
    assert asyncio.run(cache.get()).value == "first"
    now[0] = 20
    assert asyncio.run(cache.get()).value == "first"
