"""AuditedAnthropic: the real SDK through our middleware against the loopback emulator."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from claudesec.audit.store import AuditStore
from claudesec.emulator import Emulator, IssuedKey
from claudesec.errors import StoreError
from claudesec.guard.dlp import placeholder
from claudesec.guard.pipeline import CallDenied
from tests.fixtures.emulator import MODEL
from tests.fixtures.keys import KeyFactory
from tests.guard.test_pipeline import audit_config, open_store, records

if TYPE_CHECKING:
    import anthropic

    from claudesec.guard.client import AuditedAnthropic

MakeClient = Callable[..., "AuditedAnthropic"]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AuditStore]:
    with open_store(tmp_path / "audit.db") as opened:
        yield opened


@pytest.fixture
def make_client(
    emulator: Emulator, emulator_api_key: IssuedKey, store: AuditStore
) -> Iterator[MakeClient]:
    from claudesec import AuditedAnthropic

    made: list[AuditedAnthropic] = []

    def make(user: str | None = "alice", **kwargs: Any) -> AuditedAnthropic:
        kwargs.setdefault("claudesec_config", audit_config())
        if "store" not in kwargs:
            kwargs["store"] = store
        kwargs.setdefault("max_retries", 0)
        client = AuditedAnthropic(
            user=user, api_key=emulator_api_key.secret, base_url=emulator.base_url, **kwargs
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def ask(client: anthropic.Anthropic, text: str, **kwargs: Any) -> Any:
    kwargs.setdefault("model", MODEL)
    kwargs.setdefault("max_tokens", 100)
    return client.messages.create(messages=[{"role": "user", "content": text}], **kwargs)


def test_an_allowed_call_is_recorded_with_usage_and_request_id(
    make_client: MakeClient, store: AuditStore
) -> None:
    reply = ask(make_client(), "hello there")
    assert reply.content[0].text == "Emulated reply to: hello there"
    [event] = records(store)
    assert (event.type, event.decision, event.user, event.role) == (
        "call",
        "allow",
        "alice",
        "analyst",
    )
    assert event.input_tokens == reply.usage.input_tokens
    assert event.output_tokens == reply.usage.output_tokens
    assert event.stop_reason == "end_turn" and event.model == MODEL
    assert event.request_id == reply._request_id
    assert event.extra["http_status"] == 200 and event.latency_ms > 0


def test_a_denied_call_sends_nothing(
    make_client: MakeClient, emulator: Emulator, store: AuditStore
) -> None:
    client = make_client("dave")
    with pytest.raises(CallDenied) as info:
        ask(client, "hi")
    assert info.value.reason == "policy.model_not_allowed"
    assert emulator.state.requests() == []
    [event] = records(store)
    assert (event.type, event.reason, event.model) == ("denial", "policy.model_not_allowed", MODEL)


def test_planted_key_is_blocked_redacted_or_logged_per_role(
    make_client: MakeClient, emulator: Emulator, store: AuditStore, fake_keys: KeyFactory
) -> None:
    key = fake_keys.anthropic_api().value
    with pytest.raises(CallDenied, match=r"dlp\.blocked"):
        ask(make_client("alice"), f"here: {key}")
    assert emulator.state.requests() == []

    reply = ask(make_client("bob"), f"here: {key}")
    [sent] = emulator.state.requests()
    assert key not in json.dumps(sent.body)
    assert placeholder("anthropic-api-key") in sent.body["messages"][0]["content"]
    assert reply.content[0].text == f"Emulated reply to: here: {placeholder('anthropic-api-key')}"

    # "log" sends the key, and the emulator echoes it: the response is redacted on the way back.
    reply = ask(make_client("carol"), f"{key} is mine")
    assert key in json.dumps(emulator.state.requests()[-1].body)
    assert key not in reply.content[0].text
    assert placeholder("anthropic-api-key") in reply.content[0].text

    denial, redacted, logged = records(store)
    assert (denial.decision, redacted.decision, logged.decision) == ("deny", "redact", "allow")
    assert logged.extra["response_dlp_counts"] == {"anthropic-api-key": 1}
    assert key.encode() not in store.path.read_bytes()


def test_retries_record_each_attempt(
    make_client: MakeClient, emulator: Emulator, store: AuditStore
) -> None:
    emulator.state.inject_fault("rate_limit", count=1, retry_after=0.01)
    reply = ask(make_client(max_retries=1), "retry me")
    assert reply.content
    first, second = records(store)
    assert (first.decision, first.reason, first.extra["http_status"]) == ("error", "http.429", 429)
    assert "attempt" not in first.extra and second.extra["attempt"] == 1
    assert second.decision == "allow" and second.output_tokens > 0


def test_server_errors_are_recorded_and_raised(
    make_client: MakeClient, emulator: Emulator, store: AuditStore
) -> None:
    import anthropic

    emulator.state.inject_fault("server_error")
    with pytest.raises(anthropic.InternalServerError):
        ask(make_client(), "boom")
    emulator.state.inject_fault("drop_connection")
    with pytest.raises(anthropic.APIConnectionError):
        ask(make_client(), "boom")
    assert [e.reason for e in records(store)] == ["http.500", "connection"]


def test_every_resource_goes_through_the_pipeline(
    make_client: MakeClient, emulator: Emulator, store: AuditStore
) -> None:
    client = make_client()
    assert client.models.list().data
    assert client.messages.count_tokens(
        model=MODEL, messages=[{"role": "user", "content": "count me"}]
    ).input_tokens
    assert client.beta.messages.create(
        model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "beta"}]
    ).content
    raw = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "raw"}]
    )
    assert raw.parse().content
    paths = [e.extra["path"] for e in records(store)]
    assert paths == ["/v1/models", "/v1/messages/count_tokens", "/v1/messages", "/v1/messages"]
    with pytest.raises(CallDenied):
        make_client("mallory").models.list()


def test_users_own_http_client_and_middleware_keep_working(
    make_client: MakeClient, emulator: Emulator, store: AuditStore, fake_keys: KeyFactory
) -> None:
    import anthropic
    import httpx2

    seen: list[str] = []
    hooked: list[str] = []

    def mine(request: Any, call_next: Any) -> Any:
        seen.append(request.url)
        return call_next(request)

    http_client = httpx2.Client(event_hooks={"request": [lambda r: hooked.append(r.url.path)]})
    client = make_client("bob", middleware=[mine], http_client=http_client)
    key = fake_keys.stripe().value
    ask(client, f"charge with {key}")
    assert seen == ["/v1/messages"] and hooked == ["/v1/messages"]
    # Ours stays innermost: the caller's middleware saw the request, the wire got it redacted.
    assert key not in json.dumps(emulator.state.requests()[-1].body)
    # Copies keep the audit (and a caller's middleware added later still runs before ours).
    extra: list[str] = []
    copy = client.with_options(timeout=5).with_middleware(lambda r, n: (extra.append("x"), n(r))[1])
    assert isinstance(copy, anthropic.Anthropic)
    ask(copy, f"again {key}")
    assert extra == ["x"] and key not in json.dumps(emulator.state.requests()[-1].body)
    assert len(records(store)) == 2
    ask(client.for_user("carol"), "as carol")
    assert records(store)[-1].user == "carol"
    http_client.close()


def test_extra_body_cannot_smuggle_a_key_past_dlp(
    make_client: MakeClient, emulator: Emulator, fake_keys: KeyFactory
) -> None:
    key = fake_keys.github_classic().value
    with pytest.raises(CallDenied, match=r"dlp\.blocked"):
        ask(make_client(), "innocent", extra_body={"system": f"use {key}"})
    assert emulator.state.requests() == []


def test_an_unwritable_store_fails_closed(
    make_client: MakeClient, emulator: Emulator, store: AuditStore, tmp_path: Path
) -> None:
    client = make_client()
    store.close()  # every write now fails, as with a lost disk
    # Write ahead: even the first call is refused before sending, as its admission record
    # cannot be committed.
    for text in ("first", "second"):
        with pytest.raises(CallDenied, match=r"audit\.unavailable"):
            ask(client, text)
    assert emulator.state.requests() == []

    # A store that cannot even be opened stops the client from being built at all.
    blocked = tmp_path / "not-a-db"
    blocked.mkdir()
    with pytest.raises(StoreError):
        make_client(store=None, claudesec_config=audit_config(store_path=str(blocked)))


def test_fail_open_warns_and_proceeds(make_client: MakeClient, store: AuditStore) -> None:
    from claudesec.guard.pipeline import AuditWriteWarning

    client = make_client(claudesec_config=audit_config(fail_closed=False))
    store.close()
    with pytest.warns(AuditWriteWarning):
        reply = ask(client, "go anyway")
    assert reply.content


def test_import_claudesec_does_not_import_anthropic() -> None:
    code = (
        "import sys, claudesec; assert 'anthropic' not in sys.modules, 'eager'; "
        "from claudesec import AuditedAnthropic, AsyncAuditedAnthropic; "
        "assert 'anthropic' in sys.modules; print(AuditedAnthropic.__name__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "AuditedAnthropic"


# --------------------------------------------------------------------------- malformed bodies
def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [100, 5000])
def test_a_deeply_nested_body_is_refused_and_recorded(
    depth: int, make_client: MakeClient, emulator: Emulator, store: AuditStore
) -> None:
    client = make_client()
    with pytest.raises(CallDenied) as info:
        ask(client, "hi", extra_body={"metadata": {"user_id": "u", "deep": _nested(depth)}})
    assert info.value.reason == "request.malformed"
    assert "nests deeper than" in info.value.message
    assert emulator.state.requests() == []
    [event] = records(store)
    assert (event.type, event.reason, event.user) == ("denial", "request.malformed", "alice")


def test_a_secret_split_by_a_lone_surrogate_is_refused(
    make_client: MakeClient, emulator: Emulator, store: AuditStore, fake_keys: KeyFactory
) -> None:
    key = fake_keys.anthropic_api().value
    split = key[:20] + "\ud800" + key[20:]
    with pytest.raises(CallDenied) as info:
        ask(make_client(), f"use {split} please")
    assert info.value.reason == "request.malformed"
    assert emulator.state.requests() == []
    [event] = records(store)
    assert event.reason == "request.malformed"
