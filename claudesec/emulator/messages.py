"""``/v1/messages`` and ``/v1/messages/count_tokens``: validation, token counts, replies.

Everything here is deterministic: the same request always gets the same token counts and
the same reply text, so tests can assert exact numbers. Tokens are estimated as one per four
characters of countable text (system, message content, tools), rounded up, at least one.

The reply echoes the last thing the user said: the last text (or tool result) of the last user
turn, passing over the ``<system-reminder>`` blocks Claude Code adds after the user's words.
A user turn holding ``[[tool:NAME {json input}]]``, where NAME is a tool the request declares,
is answered with that ``tool_use`` instead (``stop_reason`` ``tool_use``), so a client's tool
loop can be driven deterministically; the next turn's tool result is then echoed.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from claudesec.emulator import request_types as types
from claudesec.emulator.models import ModelSpec
from claudesec.emulator.wire import ApiError, invalid_request

CHARS_PER_TOKEN = 4
ECHO_LIMIT = 120
REPLY_PREFIX = "Emulated reply to: "
EMPTY_REPLY = "Emulated reply."
_WORDS_PER_DELTA = 3
TOOL_DIRECTIVE_RE = re.compile(r"\[\[tool:([A-Za-z0-9_.:-]{1,128})\s*(\{.*?\})?\]\]", re.DOTALL)
_CLIENT_REMINDER = "<system-reminder>"


def estimate_tokens(text: str) -> int:
    """The emulator's token count for ``text``: ceil(len / 4), never below one."""
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


@dataclass(frozen=True)
class MessageRequest:
    """The parts of a validated request that shape the answer."""

    model: str
    max_tokens: int
    stream: bool
    input_tokens: int
    echo: str
    stop_sequences: tuple[str, ...] = ()
    tool_call: tuple[str, dict[str, Any]] | None = None  # (name, input) the reply asks for


@dataclass(frozen=True)
class Reply:
    text: str
    stop_reason: str
    stop_sequence: str | None
    output_tokens: int
    tool_use: dict[str, Any] | None = None  # the tool_use block answered instead of text


def parse_message_request(
    body: Any, resolve: Callable[[str], ModelSpec | None], *, count_only: bool = False
) -> MessageRequest:
    """Validate a Messages request the way the API does; raise :class:`ApiError` if bad."""
    if not isinstance(body, dict):
        raise invalid_request("Request body must be a JSON object")
    model = body.get("model")
    if model is None:
        raise invalid_request("model: Field required")
    if not isinstance(model, str) or not model:
        raise invalid_request("model: Input should be a valid string")
    max_tokens = 0
    if not count_only:
        raw_max = body.get("max_tokens")
        if raw_max is None:
            raise invalid_request("max_tokens: Field required")
        if isinstance(raw_max, bool) or not isinstance(raw_max, int):
            raise invalid_request("max_tokens: Input should be a valid integer")
        if raw_max < 1:
            raise invalid_request("max_tokens: Input should be greater than or equal to 1")
        max_tokens = raw_max
    messages = body.get("messages")
    if messages is None:
        raise invalid_request("messages: Field required")
    if not isinstance(messages, list):
        raise invalid_request("messages: Input should be a valid list")
    if not messages:
        raise invalid_request("messages: at least one message is required")
    parts: list[str] = []
    parts.extend(_system_texts(body.get("system")))
    last_user: list[str] = []
    for index, message in enumerate(messages):
        role, texts, spoken = _message_texts(message, f"messages.{index}")
        parts.extend(texts)
        if role == "user":
            last_user = spoken
    tools = body.get("tools")
    names: set[str] = set()
    if tools is not None:
        if not isinstance(tools, list):
            raise invalid_request("tools: Input should be a valid list")
        for index, tool in enumerate(tools):
            names.add(_check_tool(tool, f"tools.{index}"))
        parts.extend(json.dumps(tool, sort_keys=True) for tool in tools)
    stream = body.get("stream", False)
    if not count_only and not isinstance(stream, bool):
        raise invalid_request("stream: Input should be a valid boolean")
    stop_sequences = _stop_sequences(body.get("stop_sequences"))
    temperature = body.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not 0 <= temperature <= 1
    ):
        raise invalid_request("temperature: Input should be a number between 0 and 1")
    for name in types.OBJECT_FIELDS:
        if name in body and not isinstance(body[name], dict):
            raise invalid_request(f"{name}: Input should be a valid dictionary")
    _check_thinking(body.get("thinking"), max_tokens, count_only=count_only)
    choice = body.get("tool_choice")
    if choice is not None and choice.get("type") not in types.TOOL_CHOICE_TYPES:
        raise invalid_request(
            f"tool_choice.type: Input should be {types.expected_tags(types.TOOL_CHOICE_TYPES)}"
        )
    said = next((t for t in reversed(last_user) if not t.startswith(_CLIENT_REMINDER)), "")
    if not said and last_user:
        said = last_user[-1]

    spec = resolve(model)
    if spec is None:
        raise ApiError("not_found_error", f"model: {model}")
    if max_tokens > spec.max_tokens:
        raise invalid_request(
            f"max_tokens: {max_tokens} > {spec.max_tokens}, which is the maximum allowed "
            f"number of output tokens for {spec.id}"
        )
    input_tokens = estimate_tokens("".join(parts))
    if input_tokens > spec.max_input_tokens:
        raise invalid_request(
            f"prompt is too long: {input_tokens} tokens > {spec.max_input_tokens} maximum"
        )
    return MessageRequest(
        model=model,
        max_tokens=max_tokens,
        stream=bool(stream) and not count_only,
        input_tokens=input_tokens,
        echo=" ".join(said.split()),
        stop_sequences=stop_sequences,
        tool_call=_tool_directive(said, names),
    )


def _system_texts(system: Any) -> list[str]:
    if system is None:
        return []
    if isinstance(system, str):
        return [system]
    if not isinstance(system, list):
        raise invalid_request("system: Input should be a valid string or list of text blocks")
    texts: list[str] = []
    for index, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise invalid_request(f"system.{index}.type: Input should be 'text'")
        text = block.get("text")
        if not isinstance(text, str):
            raise invalid_request(f"system.{index}.text: Input should be a valid string")
        texts.append(text)
    return texts


def _message_texts(message: Any, where: str) -> tuple[str, list[str], list[str]]:
    """A message's role, its countable texts, and what it says (texts and tool results)."""
    if not isinstance(message, dict):
        raise invalid_request(f"{where}: Input should be a valid dictionary")
    role = message.get("role")
    if role not in types.ROLES:
        raise invalid_request(f"{where}.role: Input should be {types.expected_tags(types.ROLES)}")
    content = message.get("content")
    if content is None:
        raise invalid_request(f"{where}.content: Field required")
    if isinstance(content, str):
        return role, [content], [content]
    if not isinstance(content, list):
        raise invalid_request(f"{where}.content: Input should be a valid string or list")
    texts: list[str] = []
    said: list[str] = []
    for index, block in enumerate(content):
        block_where = f"{where}.content.{index}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise invalid_request(f"{block_where}.type: Field required")
        kind = block["type"]
        allowed = frozenset({"text"}) if role == "system" else types.CONTENT_BLOCK_TYPES
        if kind not in allowed:
            raise invalid_request(
                f"{block_where}: Input tag '{kind}' found using 'type' does not match any of "
                f"the expected tags: {types.expected_tags(allowed)}"
            )
        if kind == "text":
            text = block.get("text")
            if not isinstance(text, str):
                raise invalid_request(f"{block_where}.text: Input should be a valid string")
            texts.append(text)
            said.append(text)
        else:
            # Images, documents and tool blocks still cost tokens; their JSON is a stable proxy.
            texts.append(json.dumps(block, sort_keys=True))
            if kind == "tool_result":
                said.append(_result_text(block.get("content")))
    return role, texts, said


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str)
        )
    return ""


def _check_tool(tool: Any, where: str) -> str:
    """Validate one tool definition; its name ("" for none)."""
    if not isinstance(tool, dict):
        raise invalid_request(f"{where}: Input should be a valid dictionary")
    kind = tool.get("type", "custom")
    if kind is None:
        kind = "custom"
    if kind not in types.TOOL_TYPES:
        raise invalid_request(
            f"{where}: Input tag '{kind}' found using 'type' does not match any of the "
            f"expected tags: {types.expected_tags(types.TOOL_TYPES)}"
        )
    name = tool.get("name")
    if kind == "custom":
        if not isinstance(name, str) or not name:
            raise invalid_request(f"{where}.name: Field required")
        if not isinstance(tool.get("input_schema"), dict):
            raise invalid_request(f"{where}.input_schema: Field required")
    return name if isinstance(name, str) else ""


def _check_thinking(thinking: Any, max_tokens: int, *, count_only: bool) -> None:
    if thinking is None:
        return
    kind = thinking.get("type")
    if kind not in types.THINKING_TYPES:
        raise invalid_request(
            f"thinking: Input tag '{kind}' found using 'type' does not match any of the "
            f"expected tags: {types.expected_tags(types.THINKING_TYPES)}"
        )
    if kind != "enabled":
        return
    budget = thinking.get("budget_tokens")
    if isinstance(budget, bool) or not isinstance(budget, int):
        raise invalid_request("thinking.enabled.budget_tokens: Field required")
    if budget < types.THINKING_MIN_BUDGET:
        raise invalid_request(
            "thinking.enabled.budget_tokens: Input should be greater than or equal to "
            f"{types.THINKING_MIN_BUDGET}"
        )
    if not count_only and budget >= max_tokens:
        raise invalid_request("`max_tokens` must be greater than `thinking.budget_tokens`")


def _tool_directive(text: str, names: set[str]) -> tuple[str, dict[str, Any]] | None:
    found = TOOL_DIRECTIVE_RE.search(text)
    if found is None or found.group(1) not in names:
        return None
    try:
        arguments = json.loads(found.group(2) or "{}")
    except ValueError:
        return None
    return (found.group(1), arguments) if isinstance(arguments, dict) else None


def _stop_sequences(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
        raise invalid_request("stop_sequences: Input should be a valid list of strings")
    return tuple(s for s in raw if s)


def build_reply(request: MessageRequest) -> Reply:
    """The deterministic answer: an echo of the last user turn, cut like a model would be,
    or the tool call the turn asks for."""
    if request.tool_call is not None:
        name, arguments = request.tool_call
        digest = hashlib.sha256(json.dumps([name, arguments], sort_keys=True).encode())
        block = {
            "type": "tool_use",
            "id": f"toolu_emu_{digest.hexdigest()[:20]}",
            "name": name,
            "input": arguments,
        }
        return Reply("", "tool_use", None, estimate_tokens(json.dumps(block)), tool_use=block)
    echo = request.echo
    if len(echo) > ECHO_LIMIT:
        echo = echo[:ECHO_LIMIT] + "..."
    text = f"{REPLY_PREFIX}{echo}" if echo else EMPTY_REPLY
    stop_at: int | None = None
    matched: str | None = None
    for sequence in request.stop_sequences:
        found = text.find(sequence)
        if found != -1 and (stop_at is None or found < stop_at):
            stop_at, matched = found, sequence
    limit = request.max_tokens * CHARS_PER_TOKEN
    if stop_at is not None and stop_at <= limit:
        text, stop_reason = text[:stop_at], "stop_sequence"
    elif len(text) > limit:
        text, stop_reason, matched = text[:limit], "max_tokens", None
    else:
        stop_reason, matched = "end_turn", None
    return Reply(
        text=text,
        stop_reason=stop_reason,
        stop_sequence=matched,
        output_tokens=estimate_tokens(text),
    )


def usage_json(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def message_json(message_id: str, request: MessageRequest, reply: Reply) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": [reply.tool_use or {"type": "text", "text": reply.text}],
        "stop_reason": reply.stop_reason,
        "stop_sequence": reply.stop_sequence,
        "usage": usage_json(request.input_tokens, reply.output_tokens),
    }


def text_deltas(text: str) -> list[str]:
    """The reply split into a few word-aligned pieces that join back to ``text`` exactly."""
    words = re.findall(r"\S+\s*|\s+", text)
    return [
        "".join(words[i : i + _WORDS_PER_DELTA]) for i in range(0, len(words), _WORDS_PER_DELTA)
    ]


def stream_events(
    message_id: str, request: MessageRequest, reply: Reply
) -> list[tuple[str, dict[str, Any]]]:
    """The SSE events of a streamed reply, in the API's order, as ``(event, data)`` pairs."""
    start: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage_json(request.input_tokens, 1),
    }
    first = {**reply.tool_use, "input": {}} if reply.tool_use else {"type": "text", "text": ""}
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start}),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": first},
        ),
        ("ping", {"type": "ping"}),
    ]
    if reply.tool_use:
        arguments = json.dumps(reply.tool_use["input"])
        deltas = [{"type": "input_json_delta", "partial_json": arguments}]
    else:
        deltas = [{"type": "text_delta", "text": piece} for piece in text_deltas(reply.text)]
    events.extend(
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": delta},
        )
        for delta in deltas
    )
    events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": reply.stop_reason, "stop_sequence": reply.stop_sequence},
                "usage": {
                    "input_tokens": request.input_tokens,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "output_tokens": reply.output_tokens,
                },
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def sse_frame(event: str, data: dict[str, Any]) -> bytes:
    """One event on the wire: ``event: NAME\\ndata: JSON\\n\\n``."""
    payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return f"event: {event}\ndata: {payload}\n\n".encode()
