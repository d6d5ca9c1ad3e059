"""Real clients through the proxy on loopback: the anthropic SDK and plain HTTP."""

from __future__ import annotations

import http.client
import http.server
import json
import threading
import time
from typing import Any

import pytest

from claudesec.audit.store import AuditStore, default_store_path
from claudesec.emulator import Emulator, generate_secret
from claudesec.proxy.tokens import TokenStore
from tests.fixtures.emulator import API_VERSION, MODEL
from tests.proxy.conftest import RunningProxy

MESSAGE = {"model": MODEL, "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}


def send(
    proxy: RunningProxy,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """What curl, n8n or another SDK sends: x-api-key and anthropic-version."""
    sent = {"content-type": "application/json", "anthropic-version": API_VERSION}
    sent.update(headers or {})
    connection = http.client.HTTPConnection(proxy.host, proxy.port, timeout=10)
    try:
        payload = raw if raw is not None else (None if body is None else json.dumps(body))
        connection.request(method, path, body=payload, headers=sent)
        response = connection.getresponse()
        return (
            response.status,
            {k.lower(): v for k, v in response.getheaders()},
            response.read(),
        )
    finally:
        connection.close()


def events(proxy: RunningProxy, *, admissions: bool = False) -> list[Any]:
    """The proxy's records (admissions only when asked; each call checked to complete one)."""
    from tests.guard.test_pipeline import records

    # Records are written by the proxy's background writer: wait for it to catch up.
    assert proxy.handle.server.flush_audit(5)
    with AuditStore.open(default_store_path(proxy.config.audit), readonly=True) as store:
        return records(store, admissions=admissions)


def answered_call(proxy: RunningProxy) -> Any:
    """The last call record, read at once: a client holding its whole answer can count on it."""
    calls = [e for e in events(proxy) if e.type == "call"]
    assert calls, "the client has its answer but no call record is queued"
    return calls[-1]


def wait_for_call(proxy: RunningProxy) -> Any:
    # A client that hung up mid-answer: the proxy records the call when it notices.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        calls = [e for e in events(proxy) if e.type == "call"]
        if calls:
            return calls[0]
        time.sleep(0.02)
    raise AssertionError("no call recorded")


def test_sdk_call_goes_through_with_the_injected_key(
    proxy: RunningProxy, emulator: Emulator
) -> None:
    import anthropic

    token = proxy.token()
    with anthropic.Anthropic(api_key=token, base_url=proxy.base_url, max_retries=0) as client:
        message = client.messages.create(**MESSAGE)
        count = client.messages.count_tokens(model=MODEL, messages=MESSAGE["messages"])
        models = client.models.list()
    assert message.content[0].text
    assert count.input_tokens > 0
    assert models.data
    log = emulator.state.requests()
    assert [r.path for r in log] == ["/v1/messages", "/v1/messages/count_tokens", "/v1/models"]
    assert {r.key_id for r in log} == {proxy.upstream_key.id}
    assert all(token not in json.dumps(r.to_json()) for r in log)
    calls = [e for e in events(proxy) if e.type == "call"]
    assert [c.user for c in calls] == ["alice"] * 3
    assert calls[0].identity_source == "proxy_token"
    assert calls[0].output_tokens > 0


def test_every_answer_a_client_holds_is_already_recorded(proxy: RunningProxy) -> None:
    """Model lists and streams are relayed as they arrive; their record used to be queued
    after the last byte, so a client (or a drill) reading the log at once missed about one
    call in ten. Each answer is read whole, then the log is read straight away."""
    token = proxy.token()
    headers = {"x-api-key": token, "anthropic-version": API_VERSION}
    stream = json.dumps({**MESSAGE, "stream": True})
    connection = http.client.HTTPConnection(proxy.host, proxy.port, timeout=10)
    store = AuditStore.open(default_store_path(proxy.config.audit), readonly=True)
    missing: list[str] = []  # stays empty or holds the first shortfall
    try:
        for answered in range(1, 201):
            if answered % 2:
                connection.request("GET", "/v1/models", headers=headers)
            else:
                connection.request(
                    "POST",
                    "/v1/messages",
                    body=stream,
                    headers={**headers, "content-type": "application/json"},
                )
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            assert proxy.handle.server.flush_audit(5)
            found = [store.get(seq) for seq in range(1, store.head().seq + 1)]
            calls = sum(1 for f in found if f is not None and f.event.type == "call")
            if calls < answered:
                missing.append(f"after answer {answered}: {calls} call records")
                break
    finally:
        connection.close()
        store.close()
    assert missing == []


def test_plain_http_client_with_x_api_key(proxy: RunningProxy, emulator: Emulator) -> None:
    status, headers, body = send(
        proxy, "POST", "/v1/messages", MESSAGE, {"x-api-key": proxy.token()}
    )
    assert status == 200, body
    assert json.loads(body)["type"] == "message"
    assert headers["x-claudesec-request-id"].startswith("csreq_")
    assert emulator.state.requests()[0].key_id == proxy.upstream_key.id


def test_no_identity_is_401_and_nothing_reaches_upstream(
    proxy: RunningProxy, emulator: Emulator
) -> None:
    status, _, body = send(proxy, "POST", "/v1/messages", MESSAGE)
    assert status == 401
    assert json.loads(body)["error"]["type"] == "authentication_error"
    assert emulator.state.requests() == []
    [denial] = events(proxy)
    assert (denial.type, denial.reason) == ("denial", "identity.no_identity")
    assert denial.extra["http_status"] == 401 and denial.extra["via"] == "proxy"


def test_forbidden_model_is_a_bad_request_naming_reason_and_fix(
    proxy: RunningProxy, emulator: Emulator
) -> None:
    # The caller is authenticated: the SDK must not call it an authentication or permission
    # failure (Claude Code shows 401 and 403 alike as "Failed to authenticate").
    import anthropic

    client = anthropic.Anthropic(api_key=proxy.token(), base_url=proxy.base_url, max_retries=0)
    with client as c, pytest.raises(anthropic.BadRequestError) as caught:
        c.messages.create(**{**MESSAGE, "model": "claude-opus-4-1"})
    assert caught.value.status_code == 400
    message = caught.value.body["error"]["message"]  # type: ignore[index]
    assert message.startswith("claudesec: policy.model_not_allowed: ")
    assert "fix: " in message and "models" in message
    assert caught.value.response.headers["x-claudesec-reason"] == "policy.model_not_allowed"
    assert emulator.state.requests() == []
    assert events(proxy)[-1].reason == "policy.model_not_allowed"
    assert events(proxy)[-1].extra["http_status"] == 400


def test_client_side_anthropic_key_is_refused_and_never_forwarded(
    proxy: RunningProxy, emulator: Emulator
) -> None:
    client_key = emulator.state.add_key("api", name="leaked-client-key")
    for headers in (
        {"x-api-key": client_key.secret},
        {"authorization": f"Bearer {client_key.secret}"},
    ):
        status, _, body = send(proxy, "POST", "/v1/messages", MESSAGE, headers)
        assert status == 401
        assert client_key.secret not in body.decode()
    # Alongside a valid token too: the real key decides, and is recorded.
    status, _, _ = send(
        proxy,
        "POST",
        "/v1/messages",
        MESSAGE,
        {"x-api-key": proxy.token(), "authorization": f"Bearer {client_key.secret}"},
    )
    assert status == 401
    assert emulator.state.requests() == []
    recorded = events(proxy)
    assert {e.reason for e in recorded} == {"identity.anthropic_key_presented"}
    assert all(client_key.secret not in e.canonical_json() for e in recorded)


def test_expired_and_revoked_tokens_are_refused(proxy: RunningProxy, emulator: Emulator) -> None:
    expired = proxy.tokens.create(user="bob", role="dev", lifetime_s=0.01).secret
    issued = proxy.tokens.create(user="carol", role="dev", lifetime_s=3600)
    time.sleep(0.05)
    assert send(proxy, "POST", "/v1/messages", MESSAGE, {"x-api-key": expired})[0] == 401
    assert send(proxy, "POST", "/v1/messages", MESSAGE, {"x-api-key": issued.secret})[0] == 200
    proxy.tokens.revoke(issued.record.id)
    status, _, body = send(proxy, "POST", "/v1/messages", MESSAGE, {"x-api-key": issued.secret})
    assert status == 401
    assert "revoked" in json.loads(body)["error"]["message"]
    denials = [e for e in events(proxy) if e.type == "denial"]
    assert [e.reason for e in denials] == ["identity.token_expired", "identity.token_revoked"]
    # The old token's id and user are known: the record says whose credential is being tried.
    assert denials[1].extra["token_id"] == issued.record.id and denials[1].user == "carol"
    assert len(emulator.state.requests()) == 1


def test_streaming_passes_events_through_as_they_arrive(
    proxy: RunningProxy, held_stream: threading.Event
) -> None:
    # The upstream sends its first event and holds the rest: had the proxy buffered, the
    # first would only arrive with the last, and this read would time out.
    release = held_stream
    connection = http.client.HTTPConnection(proxy.host, proxy.port, timeout=10)
    connection.request(
        "POST",
        "/v1/messages",
        body=json.dumps({**MESSAGE, "stream": True}),
        headers={"x-api-key": proxy.token(), "anthropic-version": API_VERSION},
    )
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("content-type", "").startswith("text/event-stream")
    first = response.readline()
    assert not release.is_set()
    release.set()
    rest = response.read()
    connection.close()
    assert first.startswith(b"event: message_start")
    assert b"message_stop" in rest
    call = answered_call(proxy)
    assert call.output_tokens > 0 and call.stop_reason == "end_turn"


def test_sdk_streaming(proxy: RunningProxy) -> None:
    import anthropic

    client = anthropic.Anthropic(api_key=proxy.token(), base_url=proxy.base_url, max_retries=0)
    with client as c, c.messages.stream(**MESSAGE) as stream:
        text = "".join(stream.text_stream)
    assert text


def test_dlp_blocks_a_secret_in_the_prompt(proxy: RunningProxy, emulator: Emulator) -> None:
    leaked = generate_secret("api")
    body = {**MESSAGE, "messages": [{"role": "user", "content": f"debug this: {leaked}"}]}
    status, _, answer = send(proxy, "POST", "/v1/messages", body, {"x-api-key": proxy.token()})
    assert status == 400
    assert json.loads(answer)["error"]["message"].startswith("claudesec: dlp.blocked: ")
    assert leaked not in answer.decode()
    assert emulator.state.requests() == []
    last = events(proxy)[-1]
    assert (last.type, last.reason, last.dlp_kinds) == (
        "denial",
        "dlp.blocked",
        ("anthropic-api-key",),
    )


def test_dlp_redacts_for_a_redacting_role(proxy: RunningProxy, emulator: Emulator) -> None:
    leaked = generate_secret("api")
    body = {**MESSAGE, "messages": [{"role": "user", "content": f"debug this: {leaked}"}]}
    token = proxy.token(user="rita", role="redactor")
    status, _, answer = send(proxy, "POST", "/v1/messages", body, {"x-api-key": token})
    assert status == 200
    forwarded = json.dumps(emulator.state.requests()[0].body)
    assert leaked not in forwarded and "[REDACTED:" in forwarded
    # The emulator echoes the prompt: the echoed (redacted) text comes back redacted.
    assert leaked not in answer.decode()


def test_admin_api_is_not_proxied(proxy: RunningProxy, emulator: Emulator) -> None:
    status, _, _ = send(
        proxy, "GET", "/v1/organizations/api_keys", headers={"x-api-key": proxy.token()}
    )
    assert status == 404
    assert emulator.state.requests() == []
    [refused] = events(proxy)
    assert (refused.reason, refused.extra["http_status"]) == ("request.not_proxied", 404)


def test_request_size_limit_is_413(start_proxy: Any, emulator: Emulator) -> None:
    proxy = start_proxy(max_request_bytes=2048)
    big = {**MESSAGE, "messages": [{"role": "user", "content": "x" * 4096}]}
    status, _, body = send(proxy, "POST", "/v1/messages", big, {"x-api-key": proxy.token()})
    assert status == 413
    assert json.loads(body)["error"]["type"] == "request_too_large"
    assert emulator.state.requests() == []
    [refused] = events(proxy)
    assert (refused.reason, refused.user, refused.extra["http_status"]) == (
        "request.too_large",
        "alice",
        413,
    )


def test_concurrent_stream_limit_is_429_with_retry_after(
    start_proxy: Any, held_stream: threading.Event
) -> None:
    proxy = start_proxy(max_concurrent_streams=1)
    release = held_stream  # the first stream stays open until released
    token = proxy.token()
    opened = threading.Event()

    def hold() -> None:
        connection = http.client.HTTPConnection(proxy.host, proxy.port, timeout=10)
        connection.request(
            "POST",
            "/v1/messages",
            body=json.dumps({**MESSAGE, "stream": True}),
            headers={"x-api-key": token, "anthropic-version": API_VERSION},
        )
        response = connection.getresponse()
        response.readline()
        opened.set()
        response.read()
        connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert opened.wait(5)
    status, headers, body = send(
        proxy, "POST", "/v1/messages", {**MESSAGE, "stream": True}, {"x-api-key": token}
    )
    release.set()
    holder.join(10)
    assert status == 429
    assert headers["retry-after"] == "1"
    assert json.loads(body)["error"]["type"] == "rate_limit_error"
    # Non-streaming calls are not counted against the stream limit.
    assert send(proxy, "POST", "/v1/messages", MESSAGE, {"x-api-key": token})[0] == 200


def test_oidc_caller(start_proxy: Any, tmp_path: Any, oidc_idp: Any, emulator: Emulator) -> None:
    import dataclasses

    from tests.proxy.conftest import make_config

    base = make_config(tmp_path)
    dev = base.policy.roles["dev"]
    roles = {**base.policy.roles, "analyst": dev, "admin": dev}
    config = dataclasses.replace(
        base,
        identity=oidc_idp.identity_config(),
        policy=dataclasses.replace(base.policy, roles=roles),
    )
    proxy = start_proxy(config)
    jwt_token = oidc_idp.token()
    status, _, body = send(
        proxy, "POST", "/v1/messages", MESSAGE, {"authorization": f"Bearer {jwt_token}"}
    )
    assert status == 200, body
    expired = oidc_idp.token(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200)
    status, _, body = send(
        proxy, "POST", "/v1/messages", MESSAGE, {"authorization": f"Bearer {expired}"}
    )
    assert status == 401
    assert len(emulator.state.requests()) == 1


def test_healthz(proxy: RunningProxy) -> None:
    status, _, body = send(proxy, "GET", "/healthz")
    assert status == 200
    assert json.loads(body)["status"] == "ok"


# --------------------------------------------------------------------------- response DLP


class _SplitSecretUpstream(http.server.BaseHTTPRequestHandler):
    """An upstream that streams a secret cut in two across two text_delta events, each sent
    in its own write with a pause between, as a real model's tokens arrive."""

    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"
    secret = ""
    seen: list[dict[str, str]] = []  # noqa: RUF012 - the test's shared log

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.seen.append({k.lower(): v for k, v in self.headers.items()})
        half = len(self.secret) // 2
        pieces = [f"here it is: {self.secret[:half]}", f"{self.secret[half:]} and more"]
        events: list[tuple[str, dict[str, Any]]] = [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {"model": MODEL, "usage": {"input_tokens": 3, "output_tokens": 1}},
                },
            ),
            (
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}},
            ),
            *[
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": piece},
                    },
                )
                for piece in pieces
            ],
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn"},
                    "usage": {"output_tokens": 9},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        for name, data in events:
            frame = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
            self.wfile.flush()
            time.sleep(0.02)
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, *_args: Any) -> None:
        pass


def test_a_secret_split_across_two_sse_events_is_redacted(tmp_path: Any) -> None:
    from claudesec.guard.dlp import placeholder
    from claudesec.proxy.server import ThreadedProxy
    from claudesec.proxy.service import ServeOptions, build_server
    from tests.proxy.conftest import KEY_VAR, make_config

    secret = generate_secret("api")
    _SplitSecretUpstream.secret = secret
    _SplitSecretUpstream.seen = []
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _SplitSecretUpstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    config = make_config(tmp_path)
    injected = generate_secret("api")
    import os

    os.environ[KEY_VAR] = injected
    server = build_server(
        config,
        ServeOptions(listen="127.0.0.1:0", upstream=f"http://127.0.0.1:{upstream.server_port}"),
    )
    try:
        with ThreadedProxy(server) as handle:
            running = RunningProxy(
                handle.base_url,
                config,
                TokenStore.from_config(config.proxy),
                None,
                handle,  # type: ignore[arg-type]
            )
            status, _, body = send(
                running,
                "POST",
                "/v1/messages",
                {**MESSAGE, "stream": True},
                {"x-api-key": running.token()},
            )
            call = answered_call(running)
    finally:
        upstream.shutdown()
        del os.environ[KEY_VAR]
    assert status == 200
    assert secret not in body.decode()
    for half in (secret[: len(secret) // 2], secret[len(secret) // 2 :]):
        assert half not in body.decode()
    text = "".join(
        json.loads(line[5:])["delta"]["text"]
        for line in body.split(b"\n")
        if line.startswith(b"data:") and b"text_delta" in line
    )
    assert text == f"here it is: {placeholder('anthropic-api-key')} and more"
    assert call.extra["response_dlp_counts"] == {"anthropic-api-key": 1}
    assert call.output_tokens == 9
    # The upstream saw the injected key, never the client's token.
    [headers] = _SplitSecretUpstream.seen
    assert headers["x-api-key"] == injected and "authorization" not in headers


# --------------------------------------------------------------------------- fail closed


def test_an_audit_store_that_fails_turns_new_calls_away_with_503(
    tmp_path: Any, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from claudesec.audit.writer import BackgroundWriter
    from claudesec.guard.pipeline import AuditPipeline
    from claudesec.proxy.server import ThreadedProxy
    from claudesec.proxy.service import ServeOptions, build_server
    from tests.guard.test_pipeline_gateway import SlowFlakyStore
    from tests.proxy.conftest import KEY_VAR, make_config

    config = make_config(tmp_path)
    monkeypatch.setenv(KEY_VAR, emulator.state.add_key("api").secret)
    backing = SlowFlakyStore(AuditStore.from_config(config.audit))
    writer = BackgroundWriter(backing, retry_s=0.01)
    pipeline = AuditPipeline.from_config(config, store=writer)
    server = build_server(
        config, ServeOptions(listen="127.0.0.1:0", upstream=emulator.base_url), pipeline=pipeline
    )
    tokens = TokenStore.from_config(config.proxy)
    token = tokens.create(user="alice", role="dev", lifetime_s=3600).secret
    try:
        with ThreadedProxy(server) as handle:
            running = RunningProxy(handle.base_url, config, tokens, None, handle)  # type: ignore[arg-type]
            backing.failing = True
            # Write ahead: the first call after the store broke is refused too, since its
            # admission record cannot be committed; nothing goes upstream unrecorded.
            for _ in range(2):
                status, headers, body = send(
                    running, "POST", "/v1/messages", MESSAGE, {"x-api-key": token}
                )
                assert status == 503
                assert json.loads(body)["error"]["type"] == "api_error"
                assert "disk is full" in json.loads(body)["error"]["message"]
                assert headers["x-claudesec-reason"] == "audit.unavailable"
            assert send(running, "GET", "/healthz")[0] == 503
            assert emulator.state.requests() == []  # the refused calls never left
            backing.failing = False
            assert writer.flush(5)
            assert send(running, "POST", "/v1/messages", MESSAGE, {"x-api-key": token})[0] == 200
    finally:
        writer.close()
    with AuditStore.open(default_store_path(config.audit), readonly=True) as store:
        reasons = [store.get(seq).event.reason for seq in range(1, store.head().seq + 1)]  # type: ignore[union-attr]
    assert reasons == ["audit.unavailable", "audit.unavailable", "admitted", "allowed"]


@pytest.mark.parametrize("role", [None, "redactor"])
def test_lone_surrogate_in_the_body_is_a_400_and_nothing_goes_upstream(
    proxy: RunningProxy, emulator: Emulator, role: str | None
) -> None:
    # json.loads accepts "\ud800"; re-encoding the (redacted) body as UTF-8 then crashed.
    # The redactor case carries a secret so the proxy rewrites the body.
    leaked = generate_secret("api") if role else "hello"
    body = {**MESSAGE, "messages": [{"role": "user", "content": f"{leaked} LONE"}]}
    raw = json.dumps(body).replace("LONE", "\\ud800").encode()
    token = proxy.token(user="sam", role=role) if role else proxy.token(user="sam")
    status, _, answer = send(proxy, "POST", "/v1/messages", raw=raw, headers={"x-api-key": token})
    assert status == 400, answer
    assert json.loads(answer)["error"]["type"] == "invalid_request_error"
    assert emulator.state.requests() == []
    assert leaked not in answer.decode()


# --------------------------------------------------------------------------- abandoned streams


def test_a_client_that_hangs_up_mid_stream_is_recorded_as_abandoned_in_one_log_line(
    proxy: RunningProxy, held_stream: threading.Event, caplog: pytest.LogCaptureFixture
) -> None:
    import logging
    import socket
    import struct

    release = held_stream  # the stream is open when the client hangs up
    caplog.set_level(logging.DEBUG)
    body = json.dumps({**MESSAGE, "stream": True}).encode()
    client = socket.create_connection((proxy.host, proxy.port), timeout=10)
    client.sendall(
        b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"x-api-key: {proxy.token()}\r\nanthropic-version: {API_VERSION}\r\n".encode()
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    received = b""
    while b"message_start" not in received:
        chunk = client.recv(4096)
        assert chunk, "the proxy closed before the first event"
        received += chunk
    # Hang up hard (RST), as a killed client or a dropped network does.
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()
    release.set()
    call = wait_for_call(proxy)
    assert call.extra["stream_end"] == "abandoned"
    assert (call.decision, call.reason) == ("allow", "allowed")
    assert "upstream" not in call.reason
    proxy_logs = [r for r in caplog.records if r.name.startswith(("claudesec", "aiohttp"))]
    assert not [r for r in proxy_logs if r.exc_info], "a traceback was logged"
    hung_up = [r for r in proxy_logs if "disconnected" in r.getMessage()]
    assert len(hung_up) == 1, [r.getMessage() for r in proxy_logs]
