"""An agent with a real MCP server (the ``mcp`` package, stdio) whose tool results carry a
planted secret: the tool result goes back to the model through the proxy, where the agent
preset redacts it, and both turns are audited."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from claudesec.emulator import Emulator, generate_secret
from claudesec.guard.dlp import placeholder
from tests.fixtures.emulator import MODEL
from tests.proxy.conftest import RunningProxy
from tests.proxy.test_server import events

SERVER = Path(__file__).with_name("mcp_server.py")


async def agent_turns(base_url: str, token: str, planted: str) -> list[Any]:
    import anthropic
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    server = StdioServerParameters(
        command=sys.executable,
        args=[str(SERVER)],
        env={**os.environ, "PLANTED": planted},
    )
    client = anthropic.Anthropic(api_key=token, base_url=base_url, max_retries=0)
    answers: list[Any] = []
    async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        listed = await session.list_tools()
        tools: list[Any] = [
            {"name": t.name, "description": t.description or "", "input_schema": t.input_schema}
            for t in listed.tools
        ]
        turns: list[Any] = [{"role": "user", "content": '[[tool:read_config {"name": "deploy"}]]'}]
        first = client.messages.create(model=MODEL, max_tokens=256, messages=turns, tools=tools)
        answers.append(first)
        [call] = [b for b in first.content if b.type == "tool_use"]
        result = await session.call_tool(call.name, call.input)
        text = " ".join(getattr(c, "text", "") for c in result.content)
        turns += [
            {"role": "assistant", "content": [call.model_dump()]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": call.id, "content": text}
            ]},
        ]  # fmt: skip
        answers.append(
            client.messages.create(model=MODEL, max_tokens=256, messages=turns, tools=tools)
        )
    client.close()
    return answers


@pytest.mark.timeout(120)
def test_an_mcp_tool_result_with_a_secret_is_redacted_before_the_model_sees_it(
    preset_proxy: RunningProxy, emulator: Emulator
) -> None:
    planted = generate_secret("api")
    first, second = asyncio.run(
        agent_turns(preset_proxy.base_url, preset_proxy.token(user="agent", role="bot"), planted)
    )
    assert first.stop_reason == "tool_use"
    reply = second.content[0].text
    assert reply.startswith("Emulated reply to: deploy uses token ")
    assert placeholder("anthropic-api-key") in reply and planted not in reply
    for request in emulator.state.requests():
        assert planted not in str(request.body)  # the model never saw it
    calls = events(preset_proxy)
    assert [(e.type, e.decision) for e in calls] == [("call", "allow"), ("call", "redact")]
    assert calls[1].dlp_kinds == ("anthropic-api-key",)
