"""The emulator accepts what the anthropic SDK's own request types allow, walked from
``anthropic.types`` and ``anthropic.types.beta`` rather than listed by hand, and answers what
Claude Code sends today."""

from __future__ import annotations

import collections.abc
import types as pytypes
import typing
from typing import Any, Union, get_args, get_origin, get_type_hints

import anthropic
import pytest
from typing_extensions import is_typeddict

from claudesec.emulator import request_types
from tests.fixtures.emulator import MODEL

USER_TURN = [{"role": "user", "content": "hi"}]


def members(hint: Any) -> typing.Iterator[Any]:
    """The TypedDicts a union (or an iterable of a union) may hold."""
    origin = get_origin(hint)
    if origin in (Union, pytypes.UnionType) or origin in (
        collections.abc.Iterable,
        collections.abc.Sequence,
        list,
    ):
        for arg in get_args(hint):
            yield from members(arg)
    elif is_typeddict(hint):
        yield hint


def tags(typed: Any) -> set[str]:
    """The ``type`` literals a TypedDict declares (none for an untyped one)."""
    hint = get_type_hints(typed).get("type")
    return {a for a in get_args(hint) if isinstance(a, str)} if hint is not None else set()


def sdk_params() -> list[Any]:
    from anthropic.types import MessageCreateParams, MessageParam
    from anthropic.types.beta import BetaMessageParam
    from anthropic.types.beta import MessageCreateParams as BetaCreateParams

    return [(MessageCreateParams, MessageParam), (BetaCreateParams, BetaMessageParam)]


def first_member(params: Any) -> Any:
    return get_args(params)[0] if get_origin(params) is Union else params


def sdk_tags(kind: str) -> set[str]:
    found: set[str] = set()
    for create, message in sdk_params():
        fields = get_type_hints(first_member(create))
        if kind == "roles":
            for m in members(message):
                found |= {a for a in get_args(get_type_hints(m)["role"]) if isinstance(a, str)}
        elif kind == "blocks":
            for m in members(message):
                for block in members(get_type_hints(m)["content"]):
                    found |= tags(block)
        else:
            for typed in members(fields[kind]):
                found |= tags(typed)
    return found


@pytest.mark.parametrize(
    ("kind", "table"),
    [
        ("roles", request_types.ROLES),
        ("blocks", request_types.CONTENT_BLOCK_TYPES),
        ("tools", request_types.TOOL_TYPES),
        ("thinking", request_types.THINKING_TYPES),
        ("tool_choice", request_types.TOOL_CHOICE_TYPES),
    ],
)
def test_every_tag_the_sdk_knows_is_accepted(kind: str, table: frozenset[str]) -> None:
    missing = sdk_tags(kind) - table
    assert not missing, f"anthropic {anthropic.__version__} knows {kind} {sorted(missing)}"


def block_of(typed: Any, tag: str) -> dict[str, Any]:
    """A minimal block of this TypedDict: its tag plus plausible required fields."""
    block: dict[str, Any] = {"type": tag}
    for name in getattr(typed, "__required_keys__", ()):
        if name != "type":
            block.setdefault(name, "x")
    if tag == "text":
        block["text"] = "hello"
    return block


def test_every_sdk_content_block_passes_the_emulator(emulator_client: anthropic.Anthropic) -> None:
    seen: set[str] = set()
    for _, message in sdk_params():
        for m in members(message):
            for typed in members(get_type_hints(m)["content"]):
                for tag in tags(typed) - seen:
                    seen.add(tag)
                    body = {
                        "model": MODEL,
                        "max_tokens": 16,
                        "messages": [
                            {"role": "user", "content": [block_of(typed, tag)]},
                            {"role": "assistant", "content": "ok"},
                            *USER_TURN,
                        ],
                    }
                    emulator_client.post("/v1/messages", body=body, cast_to=object)
    assert "tool_result" in seen and "mcp_tool_use" in seen


def test_a_misspelt_block_type_is_refused_naming_the_tags(
    emulator_client: anthropic.Anthropic,
) -> None:
    body = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": [
        {"type": "txt", "text": "hi"}
    ]}]}  # fmt: skip
    with pytest.raises(anthropic.BadRequestError) as caught:
        emulator_client.post("/v1/messages", body=body, cast_to=object)
    assert "messages.0.content.0: Input tag 'txt'" in caught.value.message
    assert "'tool_result'" in caught.value.message


def test_what_claude_code_sends_today_is_answered(emulator_client: anthropic.Anthropic) -> None:
    # The shape of Claude Code 2.1.332's first request (issue 20): a system-role message,
    # adaptive thinking, context_management, output_config, beta fields the SDK does not type.
    body = {
        "model": MODEL,
        "max_tokens": 32_000,
        "stream": False,
        "system": [{"type": "text", "text": "You are a Claude agent."}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "<system-reminder>\nToday is a day.\n</system-reminder>"},
                {"type": "text", "text": "say hello"},
            ]},
            {"role": "system", "content": [{"type": "text", "text": "# Environment"}]},
        ],
        "thinking": {"type": "adaptive", "display": "omitted"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "medium"},
        "metadata": {"user_id": "u"},
        "a_field_from_next_month": {"anything": True},
        "tools": [{"name": "Read", "description": "read", "input_schema": {"type": "object"}}],
    }  # fmt: skip
    answer: Any = emulator_client.post("/v1/messages", body=body, cast_to=object)
    assert answer["content"] == [{"type": "text", "text": "Emulated reply to: say hello"}]


def test_a_tool_directive_is_answered_with_tool_use_then_the_result_is_echoed(
    emulator_client: anthropic.Anthropic,
) -> None:
    tools = [{"name": "lookup", "description": "d", "input_schema": {"type": "object"}}]
    ask = [{"role": "user", "content": 'please [[tool:lookup {"q": "x"}]]'}]
    first = emulator_client.messages.create(model=MODEL, max_tokens=64, messages=ask, tools=tools)  # type: ignore[arg-type]
    [call] = first.content
    assert first.stop_reason == "tool_use" and call.type == "tool_use"
    assert (call.name, call.input) == ("lookup", {"q": "x"})
    turn = [
        *ask,
        {"role": "assistant", "content": [call.model_dump()]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": call.id, "content": "found 42"}
        ]},
    ]  # fmt: skip
    second = emulator_client.messages.create(model=MODEL, max_tokens=64, messages=turn, tools=tools)  # type: ignore[arg-type]
    assert second.content[0].type == "text" and second.content[0].text.endswith("found 42")


def test_a_streamed_tool_use_arrives_whole(emulator_client: anthropic.Anthropic) -> None:
    tools = [{"name": "lookup", "description": "d", "input_schema": {"type": "object"}}]
    ask = [{"role": "user", "content": '[[tool:lookup {"q": "y"}]]'}]
    with emulator_client.messages.stream(
        model=MODEL,
        max_tokens=64,
        messages=ask,  # type: ignore[arg-type]
        tools=tools,  # type: ignore[arg-type]
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[0].type == "tool_use" and final.content[0].input == {"q": "y"}


def test_a_directive_naming_an_undeclared_tool_is_just_echoed(
    emulator_client: anthropic.Anthropic,
) -> None:
    answer = emulator_client.messages.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "[[tool:rm {}]]"}]
    )
    assert answer.stop_reason == "end_turn"
