"""Streaming through AuditedAnthropic: records at the end, with usage; abandoned and failed."""

# ruff: noqa: F811 - the client fixtures are imported and requested by name

from __future__ import annotations

import gc
from typing import Any

import pytest

from claudesec.audit.store import AuditStore
from claudesec.emulator import Emulator
from claudesec.guard.dlp import placeholder
from tests.fixtures.emulator import MODEL
from tests.fixtures.keys import KeyFactory
from tests.guard.test_client import MakeClient, make_client, store  # noqa: F401 - fixtures
from tests.guard.test_pipeline import records

MESSAGES: list[Any] = [{"role": "user", "content": "stream one two three four five six seven"}]


def test_stream_true_is_recorded_when_it_ends_with_final_usage(
    make_client: MakeClient, store: AuditStore
) -> None:
    client = make_client()
    stream = client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES, stream=True)
    text = ""
    usage_in = usage_out = 0
    for event in stream:
        assert records(store) == []  # nothing is recorded while the stream is open
        if event.type == "message_start":
            usage_in = event.message.usage.input_tokens
        elif event.type == "content_block_delta" and event.delta.type == "text_delta":
            text += event.delta.text
        elif event.type == "message_delta":
            usage_out = event.usage.output_tokens
    assert text.startswith("Emulated reply to: stream one")
    [event] = records(store)
    assert (event.input_tokens, event.output_tokens) == (usage_in, usage_out)
    assert event.stop_reason == "end_turn" and event.extra["stream_end"] == "complete"
    assert event.extra["stream"] is True and event.request_id.startswith("req_")


def test_messages_stream_helper_is_recorded(make_client: MakeClient, store: AuditStore) -> None:
    client = make_client()
    with client.messages.stream(model=MODEL, max_tokens=100, messages=MESSAGES) as stream:
        final = stream.get_final_message()
    [event] = records(store)
    assert event.output_tokens == final.usage.output_tokens
    assert event.input_tokens == final.usage.input_tokens
    assert event.extra["stream_end"] == "complete"


def test_a_stream_closed_early_is_recorded_as_abandoned(
    make_client: MakeClient, emulator: Emulator, store: AuditStore
) -> None:
    emulator.state.configure(stream_event_delay_ms=5)
    client = make_client()
    with client.messages.stream(model=MODEL, max_tokens=100, messages=MESSAGES) as stream:
        for _ in stream:
            break
    [event] = records(store)
    assert event.extra["stream_end"] == "abandoned"
    assert event.input_tokens > 0 and event.decision == "allow"


def test_a_stream_dropped_without_closing_is_recorded_when_collected(
    make_client: MakeClient, store: AuditStore
) -> None:
    client = make_client()
    stream = client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES, stream=True)
    del stream
    gc.collect()
    [event] = records(store)
    assert event.extra["stream_end"] == "abandoned"


@pytest.mark.parametrize(
    ("fault", "reason"), [("stream_cut", "connection"), ("stream_error", "stream.overloaded_error")]
)
def test_a_failed_stream_is_recorded_as_an_error(
    make_client: MakeClient, emulator: Emulator, store: AuditStore, fault: str, reason: Any
) -> None:
    import anthropic
    import httpx2

    emulator.state.inject_fault(fault)
    client = make_client()
    with pytest.raises((anthropic.APIError, httpx2.TransportError)):
        for _ in client.messages.create(
            model=MODEL, max_tokens=100, messages=MESSAGES, stream=True
        ):
            pass
    [event] = records(store)
    assert event.decision == "error" and event.extra["stream_end"] == "failed"
    assert event.reason == reason


def test_a_secret_echoed_in_a_stream_is_redacted_before_the_caller_sees_it(
    make_client: MakeClient, store: AuditStore, fake_keys: KeyFactory
) -> None:
    key = fake_keys.anthropic_api().value
    client = make_client("carol")  # logs, so the key reaches the emulator, which echoes it
    with client.messages.stream(
        model=MODEL, max_tokens=200, messages=[{"role": "user", "content": f"{key} ok"}]
    ) as stream:
        deltas = [text for text in stream.text_stream]
        final = stream.get_final_message()
    joined = "".join(deltas)
    assert key not in joined and placeholder("anthropic-api-key") in joined
    assert final.content[0].text == joined  # type: ignore[union-attr]
    [event] = records(store)
    assert event.extra["response_dlp_counts"] == {"anthropic-api-key": 1}
    assert key.encode() not in store.path.read_bytes()
