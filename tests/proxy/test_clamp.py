"""A role that clamps max_tokens: the request goes out with the cap, and the record says so."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from claudesec.config import RoleConfig
from claudesec.emulator import Emulator
from tests.fixtures.emulator import MODEL
from tests.proxy.conftest import RunningProxy, make_config
from tests.proxy.test_server import answered_call, events


@pytest.fixture
def clamping(start_proxy: Callable[..., RunningProxy], tmp_path: Path) -> RunningProxy:
    config = make_config(tmp_path)
    roles = {
        **config.policy.roles,
        "coder": RoleConfig(models=("claude-*",), max_tokens=2000, max_tokens_mode="clamp"),
    }
    policy = dataclasses.replace(config.policy, roles=roles)
    return start_proxy(dataclasses.replace(config, policy=policy))


def test_a_request_over_the_cap_is_sent_with_the_cap(
    clamping: RunningProxy, emulator: Emulator
) -> None:
    import anthropic

    client = anthropic.Anthropic(
        api_key=clamping.token(role="coder"), base_url=clamping.base_url, max_retries=0
    )
    # Streamed, as Claude Code asks for 128 000 tokens (the SDK refuses it unstreamed).
    with (
        client as c,
        c.messages.stream(
            model=MODEL,
            max_tokens=128_000,
            thinking={"type": "enabled", "budget_tokens": 127_999},
            messages=[{"role": "user", "content": "hi"}],
        ) as stream,
    ):
        answer = stream.get_final_message()
    assert answer.content
    [sent] = emulator.state.requests(path="/v1/messages")
    assert sent.body["max_tokens"] == 2000
    assert sent.body["thinking"]["budget_tokens"] == 1999  # must stay below max_tokens
    last = answered_call(clamping)
    assert last.type == "call" and last.extra["max_tokens_clamped"] == {
        "requested": 128_000,
        "cap": 2000,
    }


def test_a_request_within_the_cap_is_left_alone(clamping: RunningProxy, emulator: Emulator) -> None:
    import anthropic

    client = anthropic.Anthropic(
        api_key=clamping.token(role="coder"), base_url=clamping.base_url, max_retries=0
    )
    with client as c:
        c.messages.create(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    [sent] = emulator.state.requests(path="/v1/messages")
    assert sent.body["max_tokens"] == 64
    assert "max_tokens_clamped" not in events(clamping)[-1].extra


def test_a_refusing_role_still_refuses(clamping: RunningProxy, emulator: Emulator) -> None:
    import anthropic

    client = anthropic.Anthropic(
        api_key=clamping.token(role="dev"), base_url=clamping.base_url, max_retries=0
    )
    with client as c, pytest.raises(anthropic.BadRequestError, match="max_tokens_exceeded"):
        c.messages.create(
            model=MODEL, max_tokens=20_000, messages=[{"role": "user", "content": "hi"}]
        )
    assert emulator.state.requests(path="/v1/messages") == []


def test_a_batch_is_clamped_request_by_request() -> None:
    # (The emulator has no batch endpoint: the rewrite is checked on the body itself.)
    from claudesec.guard.policy import clamp_max_tokens

    params = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    body = {
        "requests": [
            {"custom_id": "big", "params": {**params, "max_tokens": 50_000}},
            {"custom_id": "small", "params": {**params, "max_tokens": 10}},
        ]
    }
    sent, clamped = clamp_max_tokens(body, 2000)
    assert [r["params"]["max_tokens"] for r in sent["requests"]] == [2000, 10]
    assert clamped == {"requested": 50_000, "cap": 2000}
    assert body["requests"][0]["params"]["max_tokens"] == 50_000  # the original is untouched
    assert clamp_max_tokens(params | {"max_tokens": 5}, 2000) == (params | {"max_tokens": 5}, {})
