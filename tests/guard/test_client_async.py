"""AsyncAuditedAnthropic against the emulator: calls, streams, denials, redaction."""

# ruff: noqa: F811 - the client fixtures are imported and requested by name

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from claudesec.audit.store import AuditStore
from claudesec.emulator import Emulator, IssuedKey
from claudesec.guard.dlp import placeholder
from claudesec.guard.pipeline import CallDenied
from tests.fixtures.emulator import MODEL
from tests.fixtures.keys import KeyFactory
from tests.guard.test_client import store  # noqa: F401 - fixture
from tests.guard.test_pipeline import audit_config, records

Run = Callable[[Callable[[Any], Coroutine[Any, Any, Any]]], Any]


@pytest.fixture
def run(emulator: Emulator, emulator_api_key: IssuedKey, store: AuditStore) -> Run:
    """Runs ``body(client_factory)`` in a fresh event loop, closing every client it made."""
    from claudesec import AsyncAuditedAnthropic

    def runner(body: Callable[[Any], Coroutine[Any, Any, Any]]) -> Any:
        async def main() -> Any:
            made: list[AsyncAuditedAnthropic] = []

            def make(user: str = "alice", **kwargs: Any) -> AsyncAuditedAnthropic:
                client = AsyncAuditedAnthropic(
                    user=user,
                    claudesec_config=audit_config(),
                    store=store,
                    api_key=emulator_api_key.secret,
                    base_url=emulator.base_url,
                    max_retries=0,
                    **kwargs,
                )
                made.append(client)
                return client

            try:
                return await body(make)
            finally:
                for client in made:
                    await client.close()

        return asyncio.run(main())

    return runner


def test_async_create_is_recorded(run: Run, store: AuditStore) -> None:
    async def body(make: Any) -> Any:
        return await make().messages.create(
            model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "async hi"}]
        )

    reply = run(body)
    [event] = records(store)
    assert event.output_tokens == reply.usage.output_tokens and event.decision == "allow"
    assert event.request_id == reply._request_id


def test_async_denial_sends_nothing(run: Run, emulator: Emulator, store: AuditStore) -> None:
    async def body(make: Any) -> Any:
        with pytest.raises(CallDenied, match="unknown_user"):
            await make("mallory").messages.create(
                model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "x"}]
            )

    run(body)
    assert emulator.state.requests() == []
    assert [e.reason for e in records(store)] == ["policy.unknown_user"]


def test_async_streams_both_ways_are_recorded(run: Run, store: AuditStore) -> None:
    async def body(make: Any) -> Any:
        client = make()
        stream = await client.messages.create(
            model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "s1"}], stream=True
        )
        async for _ in stream:
            pass
        async with client.messages.stream(
            model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "s2"}]
        ) as helper:
            return await helper.get_final_message()

    final = run(body)
    first, second = records(store)
    assert first.extra["stream_end"] == second.extra["stream_end"] == "complete"
    assert second.output_tokens == final.usage.output_tokens > 0
    assert first.input_tokens > 0


def test_async_abandoned_stream_is_recorded(
    run: Run, emulator: Emulator, store: AuditStore
) -> None:
    emulator.state.configure(stream_event_delay_ms=5)

    async def body(make: Any) -> Any:
        async with make().messages.stream(
            model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "bye now"}]
        ) as helper:
            async for _ in helper:
                break

    run(body)
    [event] = records(store)
    assert event.extra["stream_end"] == "abandoned"


def test_async_redaction_both_ways(
    run: Run,
    emulator: Emulator,
    store: AuditStore,
    fake_keys: KeyFactory,
) -> None:
    key = fake_keys.openai().value

    async def body(make: Any) -> Any:
        sent = await make("bob").messages.create(
            model=MODEL, max_tokens=200, messages=[{"role": "user", "content": f"k {key}"}]
        )
        echoed = await make("carol").messages.create(
            model=MODEL, max_tokens=200, messages=[{"role": "user", "content": f"{key}"}]
        )
        return sent, echoed

    sent, echoed = run(body)
    assert key not in json.dumps(emulator.state.requests()[0].body)
    assert placeholder("openai-api-key") in sent.content[0].text
    assert key not in echoed.content[0].text
    assert [e.decision for e in records(store)] == ["redact", "allow"]


def test_async_copies_keep_the_audit_and_for_user_switches_the_caller(
    run: Run, store: AuditStore, emulator: Emulator
) -> None:
    async def body(make: Any) -> Any:
        client = make(user="alice")
        copy = client.with_options(timeout=30)
        assert copy.audit_pipeline is client.audit_pipeline
        await copy.messages.create(
            model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "copy"}]
        )
        carol = client.for_user("carol")
        await carol.messages.create(
            model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "carol"}]
        )

    run(body)
    assert [r.user for r in records(store)] == ["alice", "carol"]
    assert len(emulator.state.requests()) == 2


class _WatchedStore:
    """A real store that notes the thread of each write and can be made to fail."""

    def __init__(self, store: AuditStore) -> None:
        self.store = store
        self.threads: list[str] = []
        self.failing = False

    def append(self, event: Any) -> Any:
        import threading

        from claudesec.errors import StoreError

        self.threads.append(threading.current_thread().name)
        if self.failing:
            raise StoreError("cannot write the audit store: the disk is full")
        return self.store.append(event)


def test_async_records_are_written_off_the_event_loop_and_still_fail_closed(
    emulator: Emulator, emulator_api_key: IssuedKey, store: AuditStore
) -> None:
    import threading

    from claudesec import AsyncAuditedAnthropic

    watched = _WatchedStore(store)
    loop_thread = threading.current_thread().name  # asyncio.run runs the loop here

    async def main() -> None:
        client = AsyncAuditedAnthropic(
            user="alice",
            claudesec_config=audit_config(),
            store=watched,
            api_key=emulator_api_key.secret,
            base_url=emulator.base_url,
            max_retries=0,
        )
        try:
            await client.messages.create(
                model=MODEL, max_tokens=32, messages=[{"role": "user", "content": "hi"}]
            )
            async with client.messages.stream(
                model=MODEL, max_tokens=32, messages=[{"role": "user", "content": "hi"}]
            ) as stream:
                await stream.get_final_message()
            watched.failing = True
            with pytest.raises(CallDenied) as denied:
                await client.messages.create(
                    model=MODEL, max_tokens=32, messages=[{"role": "user", "content": "no"}]
                )
            assert denied.value.reason == "audit.unavailable"
        finally:
            await client.close()

    asyncio.run(main())
    admitted_and_done = watched.threads[:4]  # admission + call, twice
    assert len(admitted_and_done) == 4 and loop_thread not in admitted_and_done
    assert len(emulator.state.requests()) == 2  # the refused call never left
    assert [e.type for e in records(store, admissions=True)] == [
        "admission",
        "call",
        "admission",
        "call",
    ]
