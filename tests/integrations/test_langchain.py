"""LangChain's real ChatAnthropic against the emulator, through the audit pipeline."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import HumanMessage, SystemMessage

from claudesec.audit.events import AuditEvent
from claudesec.audit.store import AuditStore
from claudesec.emulator import Emulator, IssuedKey
from claudesec.guard.dlp import placeholder
from claudesec.guard.pipeline import AuditPipeline, CallDenied
from claudesec.integrations.langchain import (
    AuditCallbackHandler,
    AuditedChatAnthropic,
    audited_chat_anthropic,
)
from tests.fixtures.emulator import MODEL
from tests.fixtures.keys import KeyFactory
from tests.guard.test_pipeline import audit_config, open_store, records

MakeModel = Callable[..., AuditedChatAnthropic]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AuditStore]:
    with open_store(tmp_path / "audit.db") as opened:
        yield opened


@pytest.fixture
def pipeline(store: AuditStore) -> AuditPipeline:
    return AuditPipeline.from_config(audit_config(), store=store)


@pytest.fixture
def make_model(
    emulator: Emulator, emulator_api_key: IssuedKey, pipeline: AuditPipeline
) -> MakeModel:
    def make(user: str = "alice", **kwargs: Any) -> AuditedChatAnthropic:
        kwargs.setdefault("model", MODEL)
        kwargs.setdefault("max_tokens", 100)
        kwargs.setdefault("max_retries", 0)
        return audited_chat_anthropic(
            user=user,
            pipeline=pipeline,
            api_key=emulator_api_key.secret,
            base_url=emulator.base_url,
            **kwargs,
        )

    return make


def plain_model(emulator: Emulator, key: IssuedKey, **kwargs: Any) -> ChatAnthropic:
    kwargs.setdefault("model", MODEL)
    kwargs.setdefault("max_tokens", 100)
    return ChatAnthropic(api_key=key.secret, base_url=emulator.base_url, max_retries=0, **kwargs)


def no_text_in(events: list[AuditEvent], *texts: str) -> bool:
    dumped = json.dumps([e.to_dict() for e in events])
    return not any(text in dumped for text in texts)


# --------------------------------------------------------------------------- audited model


def test_an_allowed_invoke_is_recorded_with_tokens_and_run_id(
    make_model: MakeModel, store: AuditStore
) -> None:
    reply = make_model().invoke(
        [SystemMessage("be brief"), HumanMessage("hello there")],
        config={"run_id": "6f1e6c1e-0000-4000-8000-000000000001"},
    )
    assert reply.content == "Emulated reply to: hello there"
    [event] = records(store)
    assert (event.type, event.decision, event.user, event.model) == (
        "call",
        "allow",
        "alice",
        MODEL,
    )
    assert reply.usage_metadata is not None
    assert event.input_tokens == reply.usage_metadata["input_tokens"] > 0
    assert event.output_tokens == reply.usage_metadata["output_tokens"] > 0
    assert event.extra["langchain_run_id"] == "6f1e6c1e-0000-4000-8000-000000000001"
    assert event.latency_ms > 0 and event.prompt_hash
    assert no_text_in([event], "hello there", "be brief")


def test_a_denied_model_raises_and_nothing_reaches_the_emulator(
    make_model: MakeModel, emulator: Emulator, store: AuditStore
) -> None:
    with pytest.raises(CallDenied) as info:
        make_model("dave").invoke("hi")
    assert info.value.reason == "policy.model_not_allowed"
    assert emulator.state.requests() == []
    [event] = records(store)
    assert (event.type, event.reason, event.model) == ("denial", "policy.model_not_allowed", MODEL)


def test_a_planted_key_is_blocked_or_redacted_and_in_no_record(
    make_model: MakeModel, emulator: Emulator, store: AuditStore, fake_keys: KeyFactory
) -> None:
    key = fake_keys.anthropic_api().value
    with pytest.raises(CallDenied, match=r"dlp\.blocked"):
        make_model("alice").invoke(f"here: {key}")
    assert emulator.state.requests() == []

    reply = make_model("bob").invoke(f"here: {key}")
    [sent] = emulator.state.requests()
    assert key not in json.dumps(sent.body)
    assert placeholder("anthropic-api-key") in json.dumps(sent.body)
    assert key not in str(reply.content)

    denial, redacted = records(store)
    assert (denial.decision, redacted.decision) == ("deny", "redact")
    assert denial.dlp_kinds == ("anthropic-api-key",)
    assert no_text_in([denial, redacted], key)


def test_stream_is_recorded_once_with_tokens(make_model: MakeModel, store: AuditStore) -> None:
    chunks = list(make_model().stream("stream this please"))
    text = "".join(str(c.content) for c in chunks)
    assert text == "Emulated reply to: stream this please"
    [event] = records(store)
    assert event.extra["stream"] is True and event.extra["stream_end"] == "complete"
    assert event.input_tokens > 0 and event.output_tokens > 0
    assert "langchain_run_id" in event.extra


def test_async_invoke_and_astream_are_audited(make_model: MakeModel, store: AuditStore) -> None:
    model = make_model()

    async def run() -> str:
        first = await model.ainvoke("async hello")
        pieces = [str(c.content) async for c in model.astream("async stream")]
        return str(first.content) + "|" + "".join(pieces)

    assert asyncio.run(run()) == "Emulated reply to: async hello|Emulated reply to: async stream"
    plain, streamed = records(store)
    assert "stream" not in plain.extra and streamed.extra["stream"] is True
    assert plain.extra["langchain_run_id"] != streamed.extra["langchain_run_id"]


def test_an_unbound_audited_model_refuses_to_call(
    emulator: Emulator, emulator_api_key: IssuedKey
) -> None:
    model = AuditedChatAnthropic(
        model=MODEL, api_key=emulator_api_key.secret, base_url=emulator.base_url
    )
    with pytest.raises(RuntimeError, match="no audit pipeline"):
        model.invoke("hi")
    assert emulator.state.requests() == []


# --------------------------------------------------------------------------- callback handler


def test_handler_records_an_allowed_run_with_tokens(
    emulator: Emulator, emulator_api_key: IssuedKey, pipeline: AuditPipeline, store: AuditStore
) -> None:
    handler = AuditCallbackHandler(user="alice", pipeline=pipeline)
    model = plain_model(emulator, emulator_api_key)
    reply = model.invoke("hello handler", config={"callbacks": [handler]})
    [event] = records(store)
    assert (event.decision, event.user, event.model, event.extra["via"]) == (
        "allow",
        "alice",
        MODEL,
        "langchain-callback",
    )
    assert reply.usage_metadata is not None
    assert event.input_tokens == reply.usage_metadata["input_tokens"] > 0
    assert event.output_tokens == reply.usage_metadata["output_tokens"] > 0
    assert event.stop_reason == "end_turn" and event.extra["message_id"]


def test_handler_denial_stops_the_call_before_it_is_sent(
    emulator: Emulator,
    emulator_api_key: IssuedKey,
    pipeline: AuditPipeline,
    store: AuditStore,
    fake_keys: KeyFactory,
) -> None:
    key = fake_keys.anthropic_api().value
    model = plain_model(emulator, emulator_api_key)
    with pytest.raises(CallDenied, match="model_not_allowed"):
        model.invoke(
            "hi", config={"callbacks": [AuditCallbackHandler(user="dave", pipeline=pipeline)]}
        )
    with pytest.raises(CallDenied, match=r"dlp\.blocked"):
        model.invoke(
            f"key {key}",
            config={"callbacks": [AuditCallbackHandler(user="alice", pipeline=pipeline)]},
        )
    # A callback cannot rewrite the request, so a redacting role is refused, not let through.
    with pytest.raises(CallDenied, match=r"dlp\.redact_unavailable"):
        model.invoke(
            f"key {key}",
            config={"callbacks": [AuditCallbackHandler(user="bob", pipeline=pipeline)]},
        )
    assert emulator.state.requests() == []
    events = records(store)
    assert [e.reason for e in events] == [
        "policy.model_not_allowed",
        "dlp.blocked",
        "dlp.redact_unavailable",
    ]
    assert no_text_in(events, key)


def test_handler_records_a_stream(
    emulator: Emulator, emulator_api_key: IssuedKey, pipeline: AuditPipeline, store: AuditStore
) -> None:
    handler = AuditCallbackHandler(user="alice", pipeline=pipeline)
    model = plain_model(emulator, emulator_api_key, callbacks=[handler])
    text = "".join(str(c.content) for c in model.stream("streamed via handler"))
    assert text == "Emulated reply to: streamed via handler"
    [event] = records(store)
    assert event.input_tokens > 0 and event.output_tokens > 0 and event.model == MODEL


def test_handler_stands_aside_on_an_audited_model(
    make_model: MakeModel, pipeline: AuditPipeline, store: AuditStore
) -> None:
    handler = AuditCallbackHandler(user="alice", pipeline=pipeline)
    make_model().invoke("only once", config={"callbacks": [handler]})
    [event] = records(store)
    assert "via" not in event.extra and "langchain_run_id" in event.extra


def test_handler_records_a_failed_call(
    emulator: Emulator, pipeline: AuditPipeline, store: AuditStore
) -> None:
    model = ChatAnthropic(
        model=MODEL,
        api_key="not-a-registered-key",
        base_url=emulator.base_url,
        max_retries=0,
        max_tokens=100,
    )
    handler = AuditCallbackHandler(user="alice", pipeline=pipeline)
    with pytest.raises(Exception, match=r"401|uthentication"):
        model.invoke("hi", config={"callbacks": [handler]})
    [event] = records(store)
    assert (event.decision, event.reason) == ("error", "http.401")


def test_importing_claudesec_and_its_cli_does_not_load_langchain() -> None:
    code = (
        "import sys, claudesec, claudesec.cli.main, claudesec.audit, claudesec.integrations\n"
        "bad = [m for m in sys.modules if m.startswith(('langchain', 'langsmith'))]\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    help_run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "claudesec", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "langchain" not in help_run.stderr
