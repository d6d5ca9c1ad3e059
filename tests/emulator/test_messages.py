"""/v1/messages (non-streaming) and /v1/messages/count_tokens through the real SDK."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest
from anthropic.types import MessageParam

from claudesec.emulator import Emulator, IssuedKey, estimate_tokens
from tests.fixtures.emulator import MODEL, http_request

USER_TURN: list[MessageParam] = [{"role": "user", "content": "Hello emulator"}]


def test_create_returns_the_real_message_shape(emulator_client: anthropic.Anthropic) -> None:
    message = emulator_client.messages.create(model=MODEL, max_tokens=100, messages=USER_TURN)

    assert message.id.startswith("msg_01")
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.model == MODEL
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "Emulated reply to: Hello emulator"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    assert message.stop_sequence is None
    assert message.usage.input_tokens == estimate_tokens("Hello emulator") == 4
    assert message.usage.output_tokens == estimate_tokens("Emulated reply to: Hello emulator")
    assert message.usage.cache_creation_input_tokens == 0
    assert message.usage.cache_read_input_tokens == 0


def test_create_is_deterministic_apart_from_the_id(emulator_client: anthropic.Anthropic) -> None:
    first = emulator_client.messages.create(model=MODEL, max_tokens=100, messages=USER_TURN)
    second = emulator_client.messages.create(model=MODEL, max_tokens=100, messages=USER_TURN)

    assert first.id != second.id
    assert first.model_dump(exclude={"id"}) == second.model_dump(exclude={"id"})


def test_input_tokens_count_system_prompt_and_every_turn(
    emulator_client: anthropic.Anthropic,
) -> None:
    messages: list[Any] = [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": [{"type": "text", "text": "second question"}]},
    ]
    message = emulator_client.messages.create(
        model=MODEL, max_tokens=100, system="be brief", messages=messages
    )

    countable = "be brief" + "first question" + "first answer" + "second question"
    assert message.usage.input_tokens == estimate_tokens(countable)
    assert message.content[0].text == "Emulated reply to: second question"  # type: ignore[union-attr]


def test_max_tokens_truncates_the_reply(emulator_client: anthropic.Anthropic) -> None:
    message = emulator_client.messages.create(model=MODEL, max_tokens=2, messages=USER_TURN)

    assert message.stop_reason == "max_tokens"
    assert message.content[0].text == "Emulated"  # type: ignore[union-attr]
    assert message.usage.output_tokens == 2


def test_stop_sequence_ends_the_reply_where_it_appears(
    emulator_client: anthropic.Anthropic,
) -> None:
    message = emulator_client.messages.create(
        model=MODEL, max_tokens=100, messages=USER_TURN, stop_sequences=["emulator"]
    )

    assert message.stop_reason == "stop_sequence"
    assert message.stop_sequence == "emulator"
    assert message.content[0].text == "Emulated reply to: Hello "  # type: ignore[union-attr]


def test_model_alias_is_accepted_and_echoed(emulator_client: anthropic.Anthropic) -> None:
    message = emulator_client.messages.create(
        model="claude-haiku-4-5", max_tokens=10, messages=USER_TURN
    )

    assert message.model == "claude-haiku-4-5"


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("model", "model: Field required"),
        ("max_tokens", "max_tokens: Field required"),
        ("messages", "messages: Field required"),
    ],
)
def test_missing_required_field_is_an_invalid_request_error(
    emulator_client: anthropic.Anthropic, missing: str, message: str
) -> None:
    body: dict[str, Any] = {"model": MODEL, "max_tokens": 10, "messages": USER_TURN}
    del body[missing]

    with pytest.raises(anthropic.BadRequestError) as caught:
        emulator_client.post("/v1/messages", body=body, cast_to=object)

    assert caught.value.status_code == 400
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": message},
        "request_id": caught.value.request_id,
    }


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"max_tokens": 0}, "max_tokens: Input should be greater than or equal to 1"),
        ({"max_tokens": 10**6}, "maximum allowed number of output tokens"),
        ({"messages": []}, "at least one message"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages.0.role"),
        ({"messages": [{"role": "user"}]}, "messages.0.content: Field required"),
        ({"temperature": 3}, "temperature"),
    ],
)
def test_invalid_values_are_rejected_with_the_field_named(
    emulator_client: anthropic.Anthropic, change: dict[str, Any], fragment: str
) -> None:
    body = {"model": MODEL, "max_tokens": 10, "messages": USER_TURN, **change}

    with pytest.raises(anthropic.BadRequestError) as caught:
        emulator_client.post("/v1/messages", body=body, cast_to=object)

    assert fragment in caught.value.message


def test_unknown_model_is_not_found(emulator_client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        emulator_client.messages.create(
            model="claude-nonexistent-1", max_tokens=10, messages=USER_TURN
        )

    assert caught.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert "claude-nonexistent-1" in caught.value.message


def test_count_tokens_matches_the_input_tokens_of_create(
    emulator_client: anthropic.Anthropic,
) -> None:
    kwargs: dict[str, Any] = {"model": MODEL, "system": "sys", "messages": USER_TURN}
    counted = emulator_client.messages.count_tokens(**kwargs)
    created = emulator_client.messages.create(max_tokens=50, **kwargs)

    assert (
        counted.input_tokens == created.usage.input_tokens == estimate_tokens("sysHello emulator")
    )


def test_count_tokens_is_not_billed(
    emulator: Emulator, emulator_client: anthropic.Anthropic
) -> None:
    emulator_client.messages.count_tokens(model=MODEL, messages=USER_TURN)

    assert emulator.state.usage() == []


def test_served_message_is_billed_to_the_key(
    emulator: Emulator, emulator_api_key: IssuedKey, emulator_client: anthropic.Anthropic
) -> None:
    message = emulator_client.messages.create(model=MODEL, max_tokens=100, messages=USER_TURN)

    [usage] = emulator.state.usage()
    assert usage.key_id == emulator_api_key.id
    assert (usage.input_tokens, usage.output_tokens) == (
        message.usage.input_tokens,
        message.usage.output_tokens,
    )


def test_every_response_carries_a_request_id(
    emulator: Emulator, emulator_client: anthropic.Anthropic
) -> None:
    raw = emulator_client.messages.with_raw_response.create(
        model=MODEL, max_tokens=10, messages=USER_TURN
    )

    assert raw.headers["request-id"].startswith("req_")
    assert raw.parse()._request_id == raw.headers["request-id"]
    assert emulator.state.requests()[-1].request_id == raw.headers["request-id"]


def test_invalid_json_body_is_an_invalid_request_error(
    emulator: Emulator, emulator_api_key: IssuedKey
) -> None:
    response = http_request(
        emulator, "POST", "/v1/messages", raw_body=b"{not json", api_key=emulator_api_key.secret
    )

    assert response.status == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_missing_anthropic_version_header_is_rejected(
    emulator: Emulator, emulator_api_key: IssuedKey
) -> None:
    response = http_request(
        emulator,
        "POST",
        "/v1/messages",
        body={"model": MODEL, "max_tokens": 5, "messages": USER_TURN},
        api_key=emulator_api_key.secret,
        version=None,
    )

    assert response.status == 400
    assert response.json()["error"]["message"] == "anthropic-version: header is required"


@pytest.mark.parametrize(
    "raw_body",
    [
        # A lone high surrogate in the prompt: valid JSON syntax, not valid Unicode.
        b'{"model":"M","max_tokens":5,"messages":[{"role":"user","content":"hi \\ud800"}]}',
        # ...a lone low surrogate in a key, and one in a streaming request.
        b'{"model":"M","max_tokens":5,"\\udc00":1,"messages":[]}',
        b'{"model":"M","max_tokens":5,"stream":true,'
        b'"messages":[{"role":"user","content":"\\udfff"}]}',
    ],
)
def test_lone_surrogate_in_body_is_a_400_not_a_crash(
    emulator: Emulator, emulator_api_key: IssuedKey, raw_body: bytes
) -> None:
    body = raw_body.replace(b'"M"', json.dumps(MODEL).encode())
    response = http_request(
        emulator, "POST", "/v1/messages", raw_body=body, api_key=emulator_api_key.secret
    )

    assert response.status == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    # The emulator keeps serving, and what it recorded can be encoded as UTF-8.
    assert json.dumps(emulator.state.requests()[-1].body, ensure_ascii=False).encode()
    ok = http_request(
        emulator,
        "POST",
        "/v1/messages",
        body={"model": MODEL, "max_tokens": 5, "messages": USER_TURN},
        api_key=emulator_api_key.secret,
    )
    assert ok.status == 200


def test_surrogate_pair_escape_is_ordinary_text(
    emulator: Emulator, emulator_api_key: IssuedKey
) -> None:
    # A correctly paired escape is one character (U+1F600), not an attack.
    body = json.dumps(
        {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "\U0001f600"}]}
    ).encode()
    assert b"\\ud83d\\ude00" in body
    response = http_request(
        emulator, "POST", "/v1/messages", raw_body=body, api_key=emulator_api_key.secret
    )
    assert response.status == 200
