"""SSE streaming: the wire format and both SDK streaming interfaces."""

from __future__ import annotations

import json
import time

import anthropic
import httpx2
import pytest
from anthropic.types import MessageParam, RawMessageDeltaEvent, RawMessageStartEvent

from claudesec.emulator import Emulator, IssuedKey
from tests.fixtures.emulator import MODEL, http_request

PROMPT = "Tell me a short story about a careful security engineer"
USER_TURN: list[MessageParam] = [{"role": "user", "content": PROMPT}]


def test_stream_helper_yields_the_same_text_and_usage_as_create(
    emulator_client: anthropic.Anthropic,
) -> None:
    created = emulator_client.messages.create(model=MODEL, max_tokens=200, messages=USER_TURN)

    with emulator_client.messages.stream(model=MODEL, max_tokens=200, messages=USER_TURN) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()

    assert len(pieces) >= 2
    assert "".join(pieces) == created.content[0].text  # type: ignore[union-attr]
    assert final.id.startswith("msg_01")
    assert final.content[0].text == created.content[0].text  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens == created.usage.input_tokens
    assert final.usage.output_tokens == created.usage.output_tokens


def test_create_with_stream_true_yields_the_api_event_sequence(
    emulator_client: anthropic.Anthropic,
) -> None:
    events = list(
        emulator_client.messages.create(
            model=MODEL, max_tokens=200, messages=USER_TURN, stream=True
        )
    )
    kinds = [event.type for event in events]

    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    deltas = kinds[2:-3]
    assert len(deltas) >= 2
    assert set(deltas) == {"content_block_delta"}
    start, delta = events[0], events[-2]
    assert isinstance(start, RawMessageStartEvent)
    assert start.message.usage.input_tokens > 0
    assert isinstance(delta, RawMessageDeltaEvent)
    assert delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens > 1


def test_streamed_max_tokens_truncation_reports_max_tokens(
    emulator_client: anthropic.Anthropic,
) -> None:
    with emulator_client.messages.stream(model=MODEL, max_tokens=3, messages=USER_TURN) as stream:
        final = stream.get_final_message()

    assert final.stop_reason == "max_tokens"
    assert final.usage.output_tokens == 3
    assert final.content[0].text == "Emulated rep"  # type: ignore[union-attr]


def test_wire_format_is_event_and_data_lines_in_chunked_frames(
    emulator: Emulator, emulator_api_key: IssuedKey
) -> None:
    response = http_request(
        emulator,
        "POST",
        "/v1/messages",
        body={"model": MODEL, "max_tokens": 50, "messages": USER_TURN, "stream": True},
        api_key=emulator_api_key.secret,
    )

    assert response.status == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.headers["request-id"].startswith("req_")
    frames = response.body.decode().split("\n\n")
    assert frames[-1] == ""
    names = []
    for frame in frames[:-1]:
        event_line, data_line = frame.split("\n")
        name = event_line.removeprefix("event: ")
        data = json.loads(data_line.removeprefix("data: "))
        assert data["type"] == name
        names.append(name)
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]


def test_streamed_message_is_billed_and_logged_as_streamed(
    emulator: Emulator, emulator_client: anthropic.Anthropic
) -> None:
    with emulator_client.messages.stream(model=MODEL, max_tokens=50, messages=USER_TURN) as stream:
        final = stream.get_final_message()

    [usage] = emulator.state.usage()
    assert usage.output_tokens == final.usage.output_tokens
    [record] = emulator.state.requests()
    assert record.streamed is True
    assert record.status == 200


def test_stream_error_fault_sends_an_error_event_the_sdk_raises(
    emulator: Emulator, emulator_client: anthropic.Anthropic
) -> None:
    emulator.state.inject_fault("stream_error")
    received: list[str] = []

    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        emulator_client.messages.stream(model=MODEL, max_tokens=50, messages=USER_TURN) as stream,
    ):
        received.extend(stream.text_stream)

    assert received  # some text arrived before the failure
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    assert emulator.state.usage() == []


def test_stream_cut_fault_breaks_the_stream_midway(
    emulator: Emulator, emulator_client: anthropic.Anthropic
) -> None:
    emulator.state.inject_fault("stream_cut")
    received: list[str] = []

    # The SDK does not wrap transport errors raised while iterating a stream.
    with (
        pytest.raises((anthropic.APIConnectionError, httpx2.TransportError)),
        emulator_client.messages.stream(model=MODEL, max_tokens=50, messages=USER_TURN) as stream,
    ):
        received.extend(stream.text_stream)

    assert received
    # The next request gets a fresh connection and a normal answer.
    message = emulator_client.messages.create(model=MODEL, max_tokens=50, messages=USER_TURN)
    assert message.stop_reason == "end_turn"


def test_stream_faults_wait_for_a_streaming_request(
    emulator: Emulator, emulator_client: anthropic.Anthropic
) -> None:
    emulator.state.inject_fault("stream_error")

    emulator_client.messages.create(model=MODEL, max_tokens=50, messages=USER_TURN)

    assert [f.kind.value for f in emulator.state.pending_faults()] == ["stream_error"]


def test_stream_event_delay_spaces_out_the_events(
    emulator: Emulator, emulator_client: anthropic.Anthropic
) -> None:
    emulator.state.configure(stream_event_delay_ms=20)
    started = time.perf_counter()

    with emulator_client.messages.stream(model=MODEL, max_tokens=200, messages=USER_TURN) as stream:
        first_text_at = None
        for _ in stream.text_stream:
            if first_text_at is None:
                first_text_at = time.perf_counter() - started
        total = time.perf_counter() - started

    assert first_text_at is not None
    assert total - first_text_at >= 0.04  # later events kept arriving after the first text


def test_refused_streaming_request_does_not_use_up_a_stream_fault(
    emulator: Emulator, emulator_client: anthropic.Anthropic
) -> None:
    emulator.state.inject_fault("stream_cut")

    with pytest.raises(anthropic.NotFoundError):
        emulator_client.messages.create(
            model="claude-imaginary-9", max_tokens=50, messages=USER_TURN, stream=True
        )

    assert [f.kind.value for f in emulator.state.pending_faults()] == ["stream_cut"]


def test_held_streams_send_the_first_event_then_wait_for_the_release(
    emulator: Emulator, emulator_client: anthropic.Anthropic, emulator_api_key: IssuedKey
) -> None:
    import socket
    from urllib.parse import urlsplit

    release = emulator.state.hold_streams()
    address = urlsplit(emulator.base_url)
    body = json.dumps(
        {"model": MODEL, "max_tokens": 200, "stream": True, "messages": USER_TURN}
    ).encode()
    with socket.create_connection((address.hostname, address.port), timeout=10) as client:
        client.sendall(
            b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"x-api-key: {emulator_api_key.secret}\r\nanthropic-version: 2023-06-01\r\n".encode()
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        received = b""
        while b"message_start" not in received or not received.endswith(b"\n\n\r\n"):
            chunk = client.recv(65536)
            assert chunk, "the emulator closed before the first event"
            received += chunk
        assert b"content_block" not in received
        client.setblocking(False)
        # Held: the first event was sent, and nothing else is on the wire.
        with pytest.raises(BlockingIOError):
            client.recv(65536)
        client.setblocking(True)
        release.set()
        while b"message_stop" not in received:
            chunk = client.recv(65536)
            assert chunk, "the emulator closed before the last event"
            received += chunk
    # Released for good: the next stream runs straight through.
    assert emulator.state.stream_hold() is None
    with emulator_client.messages.stream(model=MODEL, max_tokens=200, messages=USER_TURN) as s:
        assert s.get_final_message().stop_reason == "end_turn"


def test_reset_lets_a_held_stream_finish(emulator: Emulator) -> None:
    release = emulator.state.hold_streams()
    emulator.state.reset()
    assert release.is_set()
    assert emulator.state.stream_hold() is None
