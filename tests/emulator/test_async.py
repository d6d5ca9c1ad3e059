"""The async SDK client against the emulator: create, stream, admin, faults."""

from __future__ import annotations

import asyncio

import anthropic
import pytest
from anthropic.types import MessageParam

from claudesec.emulator import Emulator, IssuedKey
from tests.fixtures.emulator import MODEL

USER_TURN: list[MessageParam] = [{"role": "user", "content": "Hello emulator"}]


def _client(emulator: Emulator, key: IssuedKey) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(api_key=key.secret, base_url=emulator.base_url, max_retries=0)


def test_async_create_and_stream_agree(emulator: Emulator, emulator_api_key: IssuedKey) -> None:
    async def scenario() -> tuple[anthropic.types.Message, str, anthropic.types.Message]:
        async with _client(emulator, emulator_api_key) as client:
            created = await client.messages.create(model=MODEL, max_tokens=100, messages=USER_TURN)
            async with client.messages.stream(
                model=MODEL, max_tokens=100, messages=USER_TURN
            ) as stream:
                text = "".join([piece async for piece in stream.text_stream])
                final = await stream.get_final_message()
            return created, text, final

    created, text, final = asyncio.run(scenario())

    assert text == created.content[0].text  # type: ignore[union-attr]
    assert final.usage.output_tokens == created.usage.output_tokens
    assert final.usage.input_tokens == created.usage.input_tokens


def test_async_create_with_stream_true(emulator: Emulator, emulator_api_key: IssuedKey) -> None:
    async def scenario() -> list[str]:
        async with _client(emulator, emulator_api_key) as client:
            events = await client.messages.create(
                model=MODEL, max_tokens=100, messages=USER_TURN, stream=True
            )
            return [event.type async for event in events]

    kinds = asyncio.run(scenario())

    assert kinds[0] == "message_start"
    assert kinds[-1] == "message_stop"


def test_async_admin_list_and_update(emulator: Emulator, emulator_admin_key: IssuedKey) -> None:
    target = emulator.state.add_key("api", name="async-target")

    async def scenario() -> tuple[list[str], str]:
        async with _client(emulator, emulator_admin_key) as client:
            ids = [key.id async for key in client.organization.api_keys.list(limit=1)]
            updated = await client.organization.api_keys.update(target.id, status="inactive")
            return ids, updated.status

    ids, status = asyncio.run(scenario())

    assert ids == [target.id]
    assert status == "inactive"


def test_async_client_sees_faults(emulator: Emulator, emulator_api_key: IssuedKey) -> None:
    emulator.state.inject_fault("rate_limit")
    emulator.state.inject_fault("drop_connection")

    async def call() -> None:
        async with _client(emulator, emulator_api_key) as client:
            await client.messages.create(model=MODEL, max_tokens=100, messages=USER_TURN)

    with pytest.raises(anthropic.RateLimitError):
        asyncio.run(call())
    with pytest.raises(anthropic.APIConnectionError):
        asyncio.run(call())
