"""The event schema and its canonical form."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from claudesec.audit.events import SCHEMA_VERSION, AuditEvent, EventType, InvalidEvent
from claudesec.errors import ExitCode


def test_canonical_json_is_sorted_compact_and_leaves_out_defaults() -> None:
    event = AuditEvent(type=EventType.CALL, time_ns=5, user="alice", input_tokens=3)
    assert event.canonical_json() == (
        '{"input_tokens":3,"time_ns":5,"type":"call","user":"alice","v":1}'
    )


def test_all_fields_round_trip_through_canonical_json() -> None:
    event = AuditEvent(
        type="denial",
        time_ns=1_780_000_000_123_456_789,
        user="alice",
        role="analyst",
        identity_source="jwt:okta",
        model="claude-opus-4-5",
        prompt_hash="a" * 64,
        input_tokens=10,
        output_tokens=20,
        latency_ms=1.25,
        stop_reason="end_turn",
        decision="deny",
        reason="model not allowed for role",
        dlp_kinds=("anthropic-api-key", "email"),
        request_id="req_1",
        host="web-1",
        app="billing",
        extra={"tool_calls": 2, "labels": {"team": "x"}, "list": [1, "a"]},
    )
    again = AuditEvent.from_json(event.canonical_json())
    assert again == event
    assert again.canonical_json() == event.canonical_json()


def test_fields_from_a_newer_version_are_kept_and_written_back_unchanged() -> None:
    future = '{"future_field":{"a":[1,2]},"time_ns":7,"type":"call","user":"bob","v":3}'
    event = AuditEvent.from_json(future)
    assert event.version == 3
    assert event.extra["future_field"]["a"] == (1, 2)
    assert event.canonical_json() == future


def test_extra_is_a_deep_copy_the_caller_cannot_mutate() -> None:
    data: dict[str, object] = {"k": [1]}
    event = AuditEvent(type="call", extra=data)
    data["k"] = [2]
    assert event.to_dict()["k"] == [1]
    with pytest.raises(TypeError):
        event.extra["k"] = 3  # type: ignore[index]


def test_time_defaults_to_now_in_utc_nanoseconds() -> None:
    import time

    before = time.time_ns()
    event = AuditEvent(type="call")
    assert before <= event.time_ns <= time.time_ns()
    assert event.version == SCHEMA_VERSION


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"type": "Call!"}, "event type"),
        ({"type": "call", "prompt_hash": "what is my password"}, "never prompt text"),
        ({"type": "call", "dlp_kinds": ("sk-ant-api03-xxx yyy",)}, "never matched values"),
        ({"type": "call", "input_tokens": -1}, "non-negative"),
        ({"type": "call", "latency_ms": float("nan")}, "finite"),
        ({"type": "call", "extra": {"user": "x"}}, "clashes"),
        ({"type": "call", "extra": {"x": object()}}, "JSON values"),
        ({"type": "call", "user": "u" * 2000}, "longer than"),
    ],
)
def test_invalid_events_are_refused_with_a_usage_error(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidEvent, match=message) as caught:
        AuditEvent(**fields)  # type: ignore[arg-type]
    assert caught.value.exit_code == ExitCode.USAGE


_text = st.text(max_size=30)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)


@given(
    user=_text,
    model=_text,
    tokens=st.integers(0, 10**9),
    latency=st.floats(0, 1e6, allow_nan=False),
    extra=st.dictionaries(st.from_regex(r"x_[a-z]{1,8}", fullmatch=True), _json, max_size=3),
)
def test_canonical_form_is_stable_for_any_values(
    user: str, model: str, tokens: int, latency: float, extra: dict[str, object]
) -> None:
    event = AuditEvent(
        type="call",
        time_ns=1,
        user=user,
        model=model,
        input_tokens=tokens,
        latency_ms=latency,
        extra=extra,
    )
    text = event.canonical_json()
    assert json.loads(text)["v"] == 1
    decoded = AuditEvent.from_json(text)
    assert decoded.canonical_json() == text


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"path": "/v1/messages", "http_status": 200, "stream": True, "ratio": 0.25, "n": None},
        {"z": 1, "a": {"y": [1, 2, {"b": "c"}], "x": ()}, "m": ["é", 3.5, False]},
        {"dlp_counts": {"email": 2, "anthropic-api-key": 1}, "batch_models": ["m1", "m2"]},
    ],
)
def test_plain_extra_is_frozen_exactly_as_the_json_round_trip_would(extra: dict[str, Any]) -> None:
    event = AuditEvent(type="call", extra=extra)
    # What a JSON round trip gives: sorted keys at every level, lists as tuples, read-only.
    expected = json.loads(json.dumps(extra, sort_keys=True))
    assert json.loads(event.canonical_json()) == {
        "v": SCHEMA_VERSION,
        "type": "call",
        "time_ns": event.time_ns,
        **expected,
    }
    assert list(event.extra) == sorted(extra)
    nested = event.extra.get("a")
    if nested is not None:
        assert list(nested) == ["x", "y"] and nested["y"][2]["b"] == "c"
        assert isinstance(nested["y"], tuple)
        with pytest.raises(TypeError):
            nested["new"] = 1  # type: ignore[index]
    assert AuditEvent.from_json(event.canonical_json()) == event


def test_extra_is_copied_so_the_caller_cannot_change_a_recorded_event() -> None:
    source = {"models": ["a"], "counts": {"email": 1}}
    event = AuditEvent(type="call", extra=source)
    source["models"].append("b")
    source["counts"]["email"] = 9
    assert event.extra["models"] == ("a",) and event.extra["counts"]["email"] == 1


def test_extra_values_that_are_not_plain_json_still_go_through_the_round_trip() -> None:
    event = AuditEvent(type="call", extra={"kind": EventType.CALL, "nested": {1: "one"}})
    assert type(event.extra["kind"]) is str and event.extra["kind"] == "call"
    assert dict(event.extra["nested"]) == {"1": "one"}
    for bad in (float("nan"), float("inf"), {"x": [float("-inf")]}, object(), b"bytes"):
        with pytest.raises(InvalidEvent):
            AuditEvent(type="call", extra={"bad": bad})
