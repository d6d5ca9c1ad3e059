"""The pipeline over plain request data: decisions, records, sampling, fail-closed, SSE."""

from __future__ import annotations

import json
import sqlite3
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from claudesec.audit.events import AuditEvent
from claudesec.audit.secrets import AuditKeys
from claudesec.audit.store import AuditStore, StoredRecord
from claudesec.config import AuditConfig, Config, DlpConfig, PolicyConfig, RoleConfig
from claudesec.errors import StoreError
from claudesec.guard.dlp import placeholder
from claudesec.guard.pipeline import (
    ApiRequest,
    AuditPipeline,
    AuditUnavailable,
    AuditWriteWarning,
    CallDenied,
    Caller,
    Outcome,
)
from tests.fixtures.keys import KeyFactory

MODEL = "claude-sonnet-4-6"

# --------------------------------------------------------------------------- shared helpers
# (imported by the client tests: plain functions, no test_ names)


def audit_config(**audit: Any) -> Config:
    """Roles for every DLP mode; alice blocks, bob redacts, carol logs, dave is capped."""
    roles = {
        "analyst": RoleConfig(models=("claude-*",), max_tokens=1024, dlp="block"),
        "redactor": RoleConfig(models=("claude-*",), max_tokens=1024, dlp="redact"),
        "logger": RoleConfig(models=("claude-*",), max_tokens=1024, dlp="log"),
        "haiku": RoleConfig(models=("claude-haiku-*",), max_tokens=64),
    }
    users = {"alice": "analyst", "bob": "redactor", "carol": "logger", "dave": "haiku"}
    return Config(
        policy=PolicyConfig(users=users, roles=roles),
        audit=replace(AuditConfig(), **audit),
    )


def open_store(path: Path, **kwargs: Any) -> AuditStore:
    return AuditStore.open(path, keys=AuditKeys(path.parent), checkpoint_every=0, **kwargs)


def records(store: AuditStore, *, admissions: bool = False) -> list[AuditEvent]:
    """The records in order; admission records (written ahead of each call) only when asked.

    Every call record that names an admission is checked here to complete a real one, so
    each test that reads records also checks the write-ahead pairing.
    """
    head = store.head().seq
    found = {seq: store.get(seq) for seq in range(1, head + 1)}
    events = [f.event for f in found.values() if f is not None]
    for event in events:
        if "admission_seq" in event.extra:
            admitted = found.get(event.extra["admission_seq"])
            assert admitted is not None and admitted.event.type == "admission", event
    return events if admissions else [e for e in events if e.type != "admission"]


def message_body(text: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": text}],
    }
    body.update(overrides)
    return body


def sse(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    return b"".join(
        f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events
    )


def text_stream(deltas: list[str], *, input_tokens: int = 12, output_tokens: int = 7) -> bytes:
    events: list[tuple[str, dict[str, Any]]] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "model": MODEL,
                    "usage": {"input_tokens": input_tokens, "output_tokens": 1},
                },
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        ("ping", {"type": "ping"}),
    ]
    events += [
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": d}},
        )
        for d in deltas
    ]
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {"output_tokens": output_tokens},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return sse(events)


def streamed_text(raw: bytes) -> str:
    text = ""
    for frame in raw.split(b"\n\n"):
        for line in frame.split(b"\n"):
            if line.startswith(b"data:"):
                data = json.loads(line[5:])
                if data.get("type") == "content_block_delta":
                    text += data["delta"]["text"]
    return text


# --------------------------------------------------------------------------- fixtures


class FlakyStore:
    """A real store whose writes can be made to fail, as a full disk or a lock would."""

    def __init__(self, store: AuditStore) -> None:
        self.store = store
        self.failing = False

    def append(self, event: AuditEvent) -> StoredRecord:
        if self.failing:
            raise StoreError(f"cannot write the audit store {self.store.path}: the disk is full")
        return self.store.append(event)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AuditStore]:
    with open_store(tmp_path / "audit.db") as opened:
        yield opened


def make_pipeline(store: Any, config: Config | None = None, **kwargs: Any) -> AuditPipeline:
    return AuditPipeline.from_config(config or audit_config(), store=store, **kwargs)


# --------------------------------------------------------------------------- decisions


def test_allowed_call_is_recorded_with_usage_and_a_keyed_prompt_hash(store: AuditStore) -> None:
    pipeline = make_pipeline(store)
    admission = pipeline.admit(
        Caller("alice"), ApiRequest("POST", "/v1/messages", message_body("hello"))
    )
    assert admission.body == message_body("hello")
    pipeline.finish(
        admission,
        Outcome(
            status=200,
            request_id="req_1",
            input_tokens=5,
            output_tokens=9,
            stop_reason="end_turn",
            model=MODEL,
        ),
    )
    [event] = records(store)
    assert (event.type, event.decision, event.reason) == ("call", "allow", "allowed")
    assert (event.user, event.role, event.identity_source) == ("alice", "analyst", "trusted")
    assert (event.input_tokens, event.output_tokens, event.stop_reason) == (5, 9, "end_turn")
    assert event.request_id == "req_1"
    assert len(event.prompt_hash) == 64 and "hello" not in event.canonical_json()


@pytest.mark.parametrize(
    ("caller", "body", "reason"),
    [
        (Caller("mallory"), message_body("hi"), "policy.unknown_user"),
        (Caller("alice", role="redactor"), message_body("hi"), "policy.role_not_assigned"),
        (Caller("dave"), message_body("hi"), "policy.model_not_allowed"),
        (Caller("alice"), message_body("hi", max_tokens=4096), "policy.max_tokens_exceeded"),
        (Caller(), message_body("hi"), "identity.no_identity"),
        (Caller(token="a.b.c"), message_body("hi"), "identity.oidc_not_configured"),
    ],
)
def test_denials_are_recorded_and_explained(
    store: AuditStore, caller: Caller, body: dict[str, Any], reason: str
) -> None:
    pipeline = make_pipeline(store)
    with pytest.raises(CallDenied) as info:
        pipeline.admit(caller, ApiRequest("POST", "/v1/messages", body))
    assert info.value.reason == reason
    assert reason in str(info.value)
    [event] = records(store)
    assert (event.type, event.decision, event.reason) == ("denial", "deny", reason)
    assert info.value.record is not None


@pytest.mark.parametrize(
    ("user", "decision", "sent_has_key"),
    [("alice", "deny", None), ("bob", "redact", False), ("carol", "allow", True)],
)
def test_dlp_mode_follows_the_role(
    store: AuditStore, fake_keys: KeyFactory, user: str, decision: str, sent_has_key: bool | None
) -> None:
    key = fake_keys.anthropic_api().value
    pipeline = make_pipeline(store)
    request = ApiRequest("POST", "/v1/messages", message_body(f"deploy with {key} please"))
    if sent_has_key is None:
        with pytest.raises(CallDenied) as info:
            pipeline.admit(Caller(user), request)
        assert info.value.reason == "dlp.blocked"
        assert key not in str(info.value)
    else:
        admission = pipeline.admit(Caller(user), request)
        assert (key in json.dumps(admission.body)) is sent_has_key
        if not sent_has_key:
            assert placeholder("anthropic-api-key") in json.dumps(admission.body)
        pipeline.finish(admission, Outcome(status=200))
    [event] = records(store)
    assert event.decision == decision
    assert event.dlp_kinds == ("anthropic-api-key",)
    assert event.extra["dlp_counts"] == {"anthropic-api-key": 1}
    assert key not in store.path.read_bytes().decode("latin-1")


def test_uninspectable_upload_is_denied_unless_the_role_only_logs(store: AuditStore) -> None:
    pipeline = make_pipeline(store)
    upload = ApiRequest("POST", "/v1/files", None, opaque=True)
    with pytest.raises(CallDenied, match=r"dlp\.uninspectable"):
        pipeline.admit(Caller("alice"), upload)
    assert pipeline.admit(Caller("carol"), upload).decision == "allow"


def test_endpoints_without_a_prompt_need_only_a_role(store: AuditStore) -> None:
    pipeline = make_pipeline(store)
    assert pipeline.admit(Caller("dave"), ApiRequest("GET", "/v1/models")).role == "haiku"
    with pytest.raises(CallDenied, match="unknown_user"):
        pipeline.admit(Caller("mallory"), ApiRequest("GET", "/v1/models"))


def test_a_batch_is_denied_when_any_request_is(store: AuditStore, fake_keys: KeyFactory) -> None:
    pipeline = make_pipeline(store)
    good = {"custom_id": "a", "params": message_body("fine")}
    bad = {"custom_id": "b", "params": message_body("x", model="claude-opus-4-1")}
    batch = ApiRequest("POST", "/v1/messages/batches", {"requests": [good, bad]})
    with pytest.raises(CallDenied, match="model_not_allowed"):
        pipeline.admit(Caller("dave"), batch)
    key = fake_keys.github_classic().value
    leaky = {"requests": [good, {"custom_id": "c", "params": message_body(key)}]}
    admission = pipeline.admit(Caller("bob"), ApiRequest("POST", "/v1/messages/batches", leaky))
    assert key not in json.dumps(admission.body)


def test_token_budget_is_charged_from_real_usage(store: AuditStore) -> None:
    config = audit_config()
    roles = dict(config.policy.roles)
    roles["analyst"] = replace(roles["analyst"], tokens_per_minute=100)
    config = replace(config, policy=replace(config.policy, roles=roles))
    pipeline = make_pipeline(store, config)
    request = ApiRequest("POST", "/v1/messages", message_body("hi"))
    admission = pipeline.admit(Caller("alice"), request)
    pipeline.finish(admission, Outcome(status=200, input_tokens=60, output_tokens=45))
    with pytest.raises(CallDenied, match="minute_budget_exceeded"):
        pipeline.admit(Caller("alice"), request)


# --------------------------------------------------------------------------- sampling


def test_sampling_drops_only_plain_allowed_calls(
    store: AuditStore, fake_keys: KeyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAUDESEC_ENV", "dev")
    pipeline = make_pipeline(store, rng=lambda: 0.99)  # never within dev's 10 %
    assert pipeline.environment == "dev" and pipeline.sample_rate == 0.1
    request = ApiRequest("POST", "/v1/messages", message_body("hello"))
    pipeline.finish(pipeline.admit(Caller("alice"), request), Outcome(status=200))
    assert records(store) == []
    pipeline.finish(pipeline.admit(Caller("alice"), request), Outcome(status=500, error="http.500"))
    leaky = ApiRequest("POST", "/v1/messages", message_body(fake_keys.npm().value))
    pipeline.finish(pipeline.admit(Caller("carol"), leaky), Outcome(status=200))
    with pytest.raises(CallDenied):
        pipeline.admit(Caller("mallory"), request)
    kept = records(store)
    assert [e.reason for e in kept] == ["http.500", "allowed", "policy.unknown_user"]
    assert kept[0].extra["sample_rate"] == 0.1


def test_environment_comes_from_the_argument_then_env_then_config(
    store: AuditStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = audit_config(environment="staging", sample_rates={"staging": 0.5, "dev": 0.1})
    assert make_pipeline(store, config).sample_rate == 0.5
    monkeypatch.setenv("CLAUDESEC_ENV", "dev")
    assert make_pipeline(store, config).sample_rate == 0.1
    assert make_pipeline(store, config, environment="prod").sample_rate == 1.0


# --------------------------------------------------------------------------- fail closed


def test_unwritable_record_fails_closed_then_refuses_until_the_store_recovers(
    store: AuditStore,
) -> None:
    flaky = FlakyStore(store)
    pipeline = make_pipeline(flaky)
    request = ApiRequest("POST", "/v1/messages", message_body("hello"))
    admission = pipeline.admit(Caller("alice"), request)
    flaky.failing = True
    with pytest.raises(AuditUnavailable, match="disk is full"):
        pipeline.finish(admission, Outcome(status=200))
    with pytest.raises(CallDenied, match=r"audit\.unavailable"):
        pipeline.admit(Caller("alice"), request)
    flaky.failing = False
    # The refusal that proves the store works again is recorded; the next call goes through.
    with pytest.raises(CallDenied, match=r"audit\.unavailable"):
        pipeline.admit(Caller("alice"), request)
    pipeline.finish(pipeline.admit(Caller("alice"), request), Outcome(status=200))
    assert [e.reason for e in records(store)] == ["audit.unavailable", "allowed"]


def test_fail_open_warns_and_proceeds(store: AuditStore, caplog: pytest.LogCaptureFixture) -> None:
    flaky = FlakyStore(store)
    pipeline = make_pipeline(flaky, audit_config(fail_closed=False))
    admission = pipeline.admit(
        Caller("alice"), ApiRequest("POST", "/v1/messages", message_body("top secret plan"))
    )
    flaky.failing = True
    with pytest.warns(AuditWriteWarning, match="fail_closed is off"):
        assert pipeline.finish(admission, Outcome(status=200)) is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AuditWriteWarning)
        pipeline.admit(Caller("alice"), ApiRequest("POST", "/v1/messages", message_body("x")))
    assert "not written" in caplog.text
    assert "top secret plan" not in caplog.text


def test_a_locked_store_fails_closed(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    with open_store(path, busy_timeout_ms=50) as store:
        pipeline = make_pipeline(store)
        admission = pipeline.admit(
            Caller("alice"), ApiRequest("POST", "/v1/messages", message_body("hi"))
        )
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(AuditUnavailable, match="locked"):
                pipeline.finish(admission, Outcome(status=200))
        finally:
            holder.execute("ROLLBACK")
            holder.close()


# --------------------------------------------------------------------------- streams


def _admitted(pipeline: AuditPipeline, user: str = "alice") -> Any:
    return pipeline.admit(
        Caller(user), ApiRequest("POST", "/v1/messages", message_body("hi"), stream=True)
    )


def test_stream_usage_is_read_as_bytes_pass_even_one_byte_at_a_time(store: AuditStore) -> None:
    pipeline = make_pipeline(store, audit_config())
    pipeline.responses = "off"
    monitor = pipeline.stream_monitor(_admitted(pipeline), status=200, request_id="req_s")
    raw = text_stream(["Hello ", "world"], input_tokens=12, output_tokens=7)
    out = b"".join(monitor.feed(raw[i : i + 1]) for i in range(len(raw)))
    assert out == raw
    monitor.finish("complete")
    monitor.finish("abandoned")  # idempotent
    [event] = records(store)
    assert (event.input_tokens, event.output_tokens, event.stop_reason) == (12, 7, "end_turn")
    assert event.extra["stream_end"] == "complete" and event.request_id == "req_s"


def test_abandoned_and_failed_streams_are_recorded(store: AuditStore) -> None:
    pipeline = make_pipeline(store)
    raw = b"\n\n".join(text_stream(["a"]).split(b"\n\n")[:3]) + b"\n\n"
    abandoned = pipeline.stream_monitor(_admitted(pipeline), status=200, request_id="")
    abandoned.feed(raw)
    abandoned.finish("abandoned")
    failed = pipeline.stream_monitor(_admitted(pipeline), status=200, request_id="")
    failed.feed(
        raw
        + sse(
            [
                (
                    "error",
                    {
                        "type": "error",
                        "error": {"type": "overloaded_error", "message": "Overloaded"},
                    },
                )
            ]
        )
    )
    failed.finish("abandoned")
    first, second = records(store)
    assert (first.extra["stream_end"], first.decision, first.input_tokens) == (
        "abandoned",
        "allow",
        12,
    )
    assert (second.extra["stream_end"], second.decision, second.reason) == (
        "failed",
        "error",
        "stream.overloaded_error",
    )


@pytest.mark.parametrize("split", [3, 20, 60, 100])
def test_a_key_split_across_deltas_is_redacted_in_the_stream(
    store: AuditStore, fake_keys: KeyFactory, split: int
) -> None:
    key = fake_keys.anthropic_api().value
    pipeline = make_pipeline(store)
    monitor = pipeline.stream_monitor(_admitted(pipeline), status=200, request_id="")
    text = f"Your key is {key} keep it safe."
    deltas = [text[: 12 + split], text[12 + split :]]
    raw = text_stream(deltas)
    out = b"".join(monitor.feed(raw[i : i + 50]) for i in range(0, len(raw), 50))
    monitor.finish("complete")
    assert key.encode() not in out
    assert streamed_text(out) == f"Your key is {placeholder('anthropic-api-key')} keep it safe."
    [event] = records(store)
    assert event.extra["response_dlp_counts"] == {"anthropic-api-key": 1}


def test_response_redaction_of_a_whole_message(store: AuditStore, fake_keys: KeyFactory) -> None:
    key = fake_keys.slack_token().value
    pipeline = make_pipeline(store, replace(audit_config(), dlp=DlpConfig(responses="all")))
    admission = pipeline.admit(
        Caller("alice"), ApiRequest("POST", "/v1/messages", message_body("hi"))
    )
    body = json.dumps(
        {
            "model": MODEL,
            "content": [{"type": "text", "text": f"token {key}, mail eve@example.org"}],
            "usage": {"input_tokens": 3, "output_tokens": 4},
            "stop_reason": "end_turn",
        }
    ).encode()
    outcome, rewritten = pipeline.response_outcome(admission, 200, "req_x", body)
    assert rewritten is not None and key.encode() not in rewritten
    assert outcome.response_dlp.counts == {"slack-token": 1, "email": 1}
    assert (outcome.input_tokens, outcome.output_tokens) == (3, 4)


def test_stream_events_needing_no_rewrite_go_out_before_any_text_is_scanned(
    store: AuditStore,
) -> None:
    pipeline = make_pipeline(store)
    raw = text_stream(["Hello ", "world"])
    monitor = pipeline.stream_monitor(_admitted(pipeline), status=200, request_id="")
    pieces = list(monitor.feed_parts(raw))
    first_delta = raw.index(b"event: content_block_delta")
    # message_start, content_block_start and ping, untouched, then the rest in one piece.
    assert pieces[0] == raw[:first_delta]
    assert len(pieces) == 2
    twin = pipeline.stream_monitor(_admitted(pipeline), status=200, request_id="")
    assert b"".join(pieces) == twin.feed(raw)
    assert streamed_text(pieces[1]) == "Hello world"
    # Once the first bytes are out, a chunk is one piece again: one write per chunk.
    assert len(list(monitor.feed_parts(raw))) == 1


def test_usage_is_recorded_when_the_reader_stops_after_the_first_piece(
    store: AuditStore,
) -> None:
    pipeline = make_pipeline(store)
    monitor = pipeline.stream_monitor(_admitted(pipeline), status=200, request_id="")
    parts = monitor.feed_parts(text_stream(["Hello"], input_tokens=30, output_tokens=9))
    next(parts)
    parts.close()
    monitor.finish("abandoned")
    [event] = records(store)
    assert (event.input_tokens, event.output_tokens, event.stop_reason) == (30, 9, "end_turn")
    assert event.extra["stream_end"] == "abandoned"


def test_text_deltas_left_unchanged_are_forwarded_byte_for_byte(store: AuditStore) -> None:
    pipeline = make_pipeline(store)
    monitor = pipeline.stream_monitor(_admitted(pipeline), status=200, request_id="")
    head = text_stream(["x"]).split(b"event: content_block_delta")[0]
    # Spacing our own encoder would not produce: proves the frame was not re-encoded.
    delta = (
        b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, '
        b'"delta": {"type": "text_delta", "text": "Hello there\\n"}}\n\n'
    )
    out = monitor.feed(head + delta)
    assert out == head + delta


def test_pass_through_reads_usage_whose_lines_straddle_chunks(store: AuditStore) -> None:
    pipeline = make_pipeline(store, audit_config())
    pipeline.responses = "off"
    monitor = pipeline.stream_monitor(_admitted(pipeline), status=200, request_id="")
    chunks = [
        b"event: content_block_delta\ndata: {}\n\nevent: message_de",
        b"lta\n",
        # No event name in the data itself: it is attributed by the event line before it.
        b'data: {"delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 5}}\n',
        b"\nevent: ping\ndata: {}\n\n",
    ]
    assert b"".join(monitor.feed(c) for c in chunks) == b"".join(chunks)
    monitor.finish("complete")
    [event] = records(store)
    assert (event.output_tokens, event.stop_reason) == (5, "max_tokens")
