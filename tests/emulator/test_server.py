"""Server lifecycle, HTTP framing and keep-alive."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import anthropic
import pytest
from anthropic.types import MessageParam

from claudesec.emulator import Emulator, EmulatorState, IssuedKey, serve_forever
from tests.fixtures.emulator import API_VERSION, MODEL, http_request

USER_TURN: list[MessageParam] = [{"role": "user", "content": "Hello emulator"}]


def test_binds_loopback_on_a_free_port_by_default() -> None:
    with Emulator() as emulator:
        assert emulator.host == "127.0.0.1"
        assert emulator.port > 0
        assert emulator.base_url == f"http://127.0.0.1:{emulator.port}"
        assert emulator.running


def test_state_can_be_seeded_before_start_and_stop_refuses_new_calls() -> None:
    state = EmulatorState()
    key = state.add_key("api")
    emulator = Emulator(state=state).start()
    client = anthropic.Anthropic(api_key=key.secret, base_url=emulator.base_url, max_retries=0)
    try:
        assert client.models.list().data
    finally:
        emulator.stop()
    emulator.stop()  # twice is harmless

    assert not emulator.running
    with pytest.raises(anthropic.APIConnectionError):
        client.models.list()


def test_keep_alive_serves_many_requests_on_one_connection(
    emulator: Emulator, emulator_api_key: IssuedKey
) -> None:
    connection = http.client.HTTPConnection(emulator.host, emulator.port, timeout=5)
    headers = {"x-api-key": emulator_api_key.secret, "anthropic-version": API_VERSION}
    request_ids = set()
    sockets = set()
    try:
        for path in ("/v1/models", "/v1/models/" + MODEL, "/v1/nowhere"):
            connection.request("GET", path, headers=headers)
            sockets.add(id(connection.sock))
            response = connection.getresponse()
            body = response.read()
            assert int(response.headers["content-length"]) == len(body)
            assert response.headers.get("connection") != "close"
            request_ids.add(response.headers["request-id"])
    finally:
        connection.close()

    assert len(sockets) == 1
    assert len(request_ids) == 3


def test_unknown_path_is_not_found_after_authentication(
    emulator: Emulator, emulator_api_key: IssuedKey
) -> None:
    assert http_request(emulator, "GET", "/v1/nowhere").status == 401
    response = http_request(emulator, "GET", "/v1/nowhere", api_key=emulator_api_key.secret)

    assert response.status == 404
    assert response.json()["error"]["type"] == "not_found_error"


def test_oversized_body_is_refused_without_reading_it(emulator: Emulator) -> None:
    with socket.create_connection((emulator.host, emulator.port), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/messages HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
            b"content-length: 99999999999\r\n\r\n"
        )
        answer = sock.recv(65536).decode()

    head, _, body = answer.partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 413")
    assert "connection: close" in head
    assert json.loads(body)["error"]["type"] == "request_too_large"


def test_stop_cuts_idle_keep_alive_connections(emulator_api_key: IssuedKey) -> None:
    emulator = Emulator().start()
    emulator.state.add_key("api", secret=emulator_api_key.secret)
    connection = http.client.HTTPConnection(emulator.host, emulator.port, timeout=5)
    headers = {"x-api-key": emulator_api_key.secret, "anthropic-version": API_VERSION}
    connection.request("GET", "/v1/models", headers=headers)
    connection.getresponse().read()

    emulator.stop()

    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        connection.request("GET", "/v1/models", headers=headers)
        connection.getresponse().read()
    connection.close()


def test_serve_forever_runs_until_stopped() -> None:
    ready: list[Emulator] = []
    started = threading.Event()

    def on_ready(emulator: Emulator) -> None:
        ready.append(emulator)
        started.set()

    thread = threading.Thread(target=serve_forever, kwargs={"port": 0, "on_ready": on_ready})
    thread.start()
    assert started.wait(5)
    emulator = ready[0]
    key = emulator.state.add_key("api")
    client = anthropic.Anthropic(api_key=key.secret, base_url=emulator.base_url, max_retries=0)
    assert client.messages.count_tokens(model=MODEL, messages=USER_TURN).input_tokens == 4

    emulator.stop()
    thread.join(5)

    assert not thread.is_alive()


def test_parallel_clients_are_served_concurrently(
    emulator: Emulator, emulator_api_key: IssuedKey
) -> None:
    emulator.state.configure(latency_ms=100)

    def call(_: int) -> str:
        client = anthropic.Anthropic(
            api_key=emulator_api_key.secret, base_url=emulator.base_url, max_retries=0
        )
        with client:
            return client.messages.create(model=MODEL, max_tokens=100, messages=USER_TURN).id

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(call, range(8)))

    assert len(set(ids)) == 8
    assert len(emulator.state.requests()) == 8
