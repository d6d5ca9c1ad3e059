"""DLP sees every field of a Messages request: a secret and a PII value planted in each place
the SDK's request types accept, through the audited client and the proxy.

The places come from the SDK's own TypedDicts (:mod:`tests.guard.sdk_requests`), so a block
type or field a new SDK adds is planted in with no change here. Under ``dlp = "block"`` every
planted request is refused before anything reaches the emulator; under ``"redact"`` the
emulator receives neither value. Two kinds of place are decided differently, on purpose:
the ``data`` of base64 image and PDF sources is bytes, not text, and is not inspected; text
in signed thinking blocks cannot be redacted (the API rejects a changed block), so a
redacting role refuses the call instead.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from claudesec.audit.store import AuditStore
from claudesec.config import AuditConfig, Config, PolicyConfig, RoleConfig
from claudesec.emulator import Emulator, IssuedKey
from claudesec.guard.dlp import DlpScanner, placeholder, request_text_slots
from claudesec.guard.pipeline import CallDenied
from tests.fixtures.emulator import MODEL
from tests.fixtures.keys import KeyFactory
from tests.guard.sdk_requests import (
    Planted,
    binary_source_data,
    inside_signed_block,
    planted_bodies,
    substitute,
)
from tests.guard.test_pipeline import open_store, records

EMAIL = "rita.leak" + "@" + "example.org"  # assembled so no PII-shaped literal sits here
KINDS = {"anthropic-api-key", "email"}
BASE = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
COUNT_BASE = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}


def _message_places() -> list[Planted]:
    from anthropic.types.message_create_params import MessageCreateParamsNonStreaming

    return list(planted_bodies(MessageCreateParamsNonStreaming, BASE))


def _count_places() -> list[Planted]:
    from anthropic.types.message_count_tokens_params import MessageCountTokensParams

    return list(planted_bodies(MessageCountTokensParams, COUNT_BASE))


def _batch_places() -> list[Planted]:
    from anthropic.types.messages.batch_create_params import Request

    base = {"custom_id": "item-1", "params": BASE}
    return [
        Planted(p.where, {"requests": [p.body]}, p.field_of) for p in planted_bodies(Request, base)
    ]


def _one_per_field(places: list[Planted]) -> list[Planted]:
    """One body per (type, field, shape): the HTTP tests need not repeat a field in every
    context the unit test already covers."""
    seen: set[tuple[str, str, str]] = set()
    kept = []
    for place in places:
        shape = place.where.rsplit(">.", 1)[-1]
        key = (*place.field_of, shape)
        if key not in seen:
            seen.add(key)
            kept.append(place)
    return kept


def _by_hand(endpoint: str = "/v1/messages") -> list[Planted]:
    """Places the SDK's types cannot show: a block type and a field the API adds later, a
    plant in the discriminators, a plain-text document sent as base64, and a value nested
    deeper than any fixed recursion limit."""
    from tests.guard.sdk_requests import PLANT

    deep: Any = PLANT
    # Deep, yet within the 64 levels a body may nest (deeper ones are refused as malformed
    # before DLP runs: tests/proxy/test_ambiguous_json.py).
    for _ in range(25):
        deep = {"k": [deep]}
    future_block = {"type": "hologram", "caption": PLANT, "layers": [{"note": PLANT}]}
    b64 = {"type": "base64", "media_type": "text/plain", "data": "B64PLANT"}
    hand = {
        "future block type": {
            **BASE,
            "messages": [{"role": "user", "content": [future_block]}],
        },
        "future top-level field": {**BASE, "context_management": {"edits": [{"why": PLANT}]}},
        "role value": {**BASE, "messages": [{"role": PLANT, "content": "hi"}]},
        "block type value": {
            **BASE,
            "messages": [{"role": "user", "content": [{"type": PLANT, "text": "hi"}]}],
        },
        "base64 text document": {
            **BASE,
            "messages": [{"role": "user", "content": [{"type": "document", "source": b64}]}],
        },
        "deep tool input": {
            **BASE,
            "messages": [
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t1", "name": "x", "input": deep}],
                }
            ],
        },
    }
    if endpoint.endswith("/batches"):
        hand = {k: {"requests": [{"custom_id": "a", "params": v}]} for k, v in hand.items()}
    return [Planted(name, body, ("by-hand", name)) for name, body in hand.items()]


def _plant(fake_keys: KeyFactory) -> tuple[str, str, Callable[[Any], Any]]:
    key = fake_keys.anthropic_api().value
    value = f"{key} {EMAIL}"
    encoded = base64.b64encode(f"notes: {value}".encode()).decode()

    def fill(body: Any) -> Any:
        filled = substitute(body, value)
        return json.loads(json.dumps(filled).replace("B64PLANT", encoded))

    return key, value, fill


def _in_clear(key: str, sent: str) -> bool:
    """Whether the key or the address reached the emulator, as text or inside base64."""
    if key in sent or EMAIL in sent:
        return True
    decoded = []
    for found in re.findall(r'"data": "([A-Za-z0-9+/=]{16,})"', sent):
        decoded.append(base64.b64decode(found).decode("utf-8", "replace"))
    return any(key in text or EMAIL in text for text in decoded)


def _redacted(sent: str) -> bool:
    mark = placeholder("anthropic-api-key")
    texts = [sent]
    for found in re.findall(r'"data": "([A-Za-z0-9+/=]{16,})"', sent):
        texts.append(base64.b64decode(found).decode("utf-8", "replace"))
    return any(mark in text for text in texts)


def _expect_skip(place: Planted) -> bool:
    return binary_source_data(place.body)


def _header_fields(endpoint: str) -> set[str]:
    """Arguments the SDK sends as HTTP headers (``anthropic-workspace-id``...), not in the
    body: read from the SDK method's signature, minus the body fields of its params type."""
    import inspect
    import typing

    import anthropic
    from anthropic.types.message_count_tokens_params import MessageCountTokensParams
    from anthropic.types.message_create_params import MessageCreateParamsNonStreaming
    from anthropic.types.messages.batch_create_params import BatchCreateParams

    client = anthropic.Anthropic(api_key="unused", base_url="http://127.0.0.1:9")
    method, params = {
        "/v1/messages": (client.messages.create, MessageCreateParamsNonStreaming),
        "/v1/messages/count_tokens": (client.messages.count_tokens, MessageCountTokensParams),
        "/v1/messages/batches": (client.messages.batches.create, BatchCreateParams),
    }[endpoint]
    arguments = set(inspect.signature(method).parameters)
    generic = {"extra_headers", "extra_query", "extra_body", "timeout", "betas", "stream"}
    in_body = set(typing.get_type_hints(params)) - {"user_profile_id", "workspace_id"}
    return arguments - in_body - generic


# --------------------------------------------------------------------------- the walk itself


@pytest.mark.parametrize(
    ("endpoint", "places"),
    [
        ("/v1/messages", _message_places),
        ("/v1/messages/count_tokens", _count_places),
        ("/v1/messages/batches", _batch_places),
    ],
    ids=["messages", "count_tokens", "batches"],
)
def test_every_field_the_sdk_accepts_is_inspected(
    endpoint: str, places: Callable[[], list[Planted]], fake_keys: KeyFactory
) -> None:
    scanner = DlpScanner()
    _, _, fill = _plant(fake_keys)
    every = places() + _by_hand(endpoint)
    assert len(every) > 300  # the SDK's types were really walked
    missed = []
    for place in every:
        slots = request_text_slots(endpoint, fill(place.body))
        found = scanner.scan_parts([s.text for s in slots])
        kinds = {f.kind for part in found for f in part}
        if _expect_skip(place):
            assert not kinds, place.where
        elif not kinds >= KINDS:
            missed.append(place.where)
    assert missed == []


# --------------------------------------------------------------------------- real adapters


def _config(tmp_path: Path) -> Config:
    roles = {
        name: RoleConfig(models=("*",), max_tokens=100_000, tools_allowed=True, dlp=mode)
        for name, mode in (("blocker", "block"), ("redactor", "redact"))
    }
    return Config(
        policy=PolicyConfig(users={"alice": "blocker", "bob": "redactor"}, roles=roles),
        audit=AuditConfig(store_path=str(tmp_path / "audit.db"), sample_rates={}),
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AuditStore]:
    with open_store(tmp_path / "audit.db") as opened:
        yield opened


def _sdk_call(client: Any, endpoint: str, body: dict[str, Any]) -> None:
    import inspect

    import anthropic

    method = {
        "/v1/messages": client.messages.create,
        "/v1/messages/count_tokens": client.messages.count_tokens,
        "/v1/messages/batches": client.messages.batches.create,
    }[endpoint]
    # Fields the SDK has no argument for yet go the way a user sends them: extra_body.
    known = set(inspect.signature(method).parameters)
    extra = {k: v for k, v in body.items() if k not in known}
    # The emulator may refuse a shape it does not know: what it received is what counts.
    with contextlib.suppress(anthropic.APIStatusError):
        method(**{k: v for k, v in body.items() if k in known}, extra_body=extra or None)


ENDPOINTS = [
    ("/v1/messages", _message_places),
    ("/v1/messages/count_tokens", _count_places),
    ("/v1/messages/batches", _batch_places),
]


@pytest.mark.parametrize("mode", ["block", "redact"])
@pytest.mark.parametrize(
    ("endpoint", "places"), ENDPOINTS, ids=["messages", "count_tokens", "batches"]
)
def test_audited_client_blocks_or_redacts_every_field(
    mode: str,
    endpoint: str,
    places: Callable[[], list[Planted]],
    emulator: Emulator,
    emulator_api_key: IssuedKey,
    store: AuditStore,
    tmp_path: Path,
    fake_keys: KeyFactory,
) -> None:
    key, _, fill = _plant(fake_keys)
    user = "alice" if mode == "block" else "bob"
    client = _audited(user, emulator, emulator_api_key, tmp_path, store)
    failures = []
    headers = _header_fields(endpoint)
    with client:
        for place in _one_per_field(places()) + _by_hand(endpoint):
            if _expect_skip(place) or place.where.split("<")[0] in headers:
                continue
            emulator.state.clear_requests()
            body = fill(place.body)
            try:
                _sdk_call(client, endpoint, body)
            except CallDenied as denied:
                refused = mode == "block" or inside_signed_block(place.body)
                if not (refused and set(denied.dlp.kinds) >= KINDS):
                    failures.append(f"{place.where}: denied {denied.reason} {denied.dlp.kinds}")
                continue
            sent = json.dumps([r.body for r in emulator.state.requests()])
            if mode == "block" or _in_clear(key, sent):
                failures.append(f"{place.where}: sent in clear ({mode})")
            elif not _redacted(sent):
                failures.append(f"{place.where}: nothing redacted")
    assert failures == []
    assert all(set(e.dlp_kinds) >= KINDS for e in records(store))
    # Nothing planted reaches the audit log either (the model id is recorded, for one).
    logged = json.dumps([e.to_dict() for e in records(store)])
    assert key[:24] not in logged and EMAIL not in logged


def _audited(
    user: str, emulator: Emulator, key: IssuedKey, tmp_path: Path, store: AuditStore
) -> Any:
    from claudesec import AuditedAnthropic

    return AuditedAnthropic(
        user=user,
        api_key=key.secret,
        base_url=emulator.base_url,
        max_retries=0,
        claudesec_config=_config(tmp_path),
        store=store,
    )


@pytest.mark.parametrize("field", ["user_profile_id", "workspace_id"])
@pytest.mark.parametrize("user", ["alice", "bob"])  # dlp = block, dlp = redact
def test_values_the_sdk_sends_as_headers_are_inspected(
    field: str,
    user: str,
    emulator: Emulator,
    emulator_api_key: IssuedKey,
    store: AuditStore,
    tmp_path: Path,
    fake_keys: KeyFactory,
) -> None:
    """A header cannot be redacted (an id replaced by a placeholder is another request), so
    under both block and redact the call is refused, naming the header, never the value."""
    assert _header_fields("/v1/messages") == {"user_profile_id", "workspace_id"}
    key, value, _ = _plant(fake_keys)
    client = _audited(user, emulator, emulator_api_key, tmp_path, store)
    emulator.state.clear_requests()
    with client, pytest.raises(CallDenied) as denied:
        _sdk_call(client, "/v1/messages", {**BASE, field: value})
    assert emulator.state.requests() == []
    assert set(denied.value.dlp.kinds) >= KINDS
    header = "anthropic-" + field.replace("_", "-")
    assert header in str(denied.value) and key[:24] not in str(denied.value)
    [event] = records(store)
    assert event.reason == "dlp.blocked" and set(event.dlp_kinds) >= KINDS
    assert key[:24] not in json.dumps(event.to_dict())


@pytest.mark.parametrize(
    "where",
    [
        {"extra_headers": {"x-trace-note": "KEY"}},
        {"extra_headers": {"X-Api-Key-Comment": "KEY"}},
        {"extra_query": {"note": "KEY"}},
        {"extra_query": {"notes": ["fine", "KEY"]}},
    ],
    ids=["extra-header", "header-named-like-a-credential", "extra-query", "query-list"],
)
def test_extra_headers_and_query_parameters_are_inspected(
    where: dict[str, Any],
    emulator: Emulator,
    emulator_api_key: IssuedKey,
    store: AuditStore,
    tmp_path: Path,
    fake_keys: KeyFactory,
) -> None:
    key = fake_keys.anthropic_api().value
    filled = json.loads(json.dumps(where).replace("KEY", f"see {key}"))
    client = _audited("alice", emulator, emulator_api_key, tmp_path, store)
    emulator.state.clear_requests()
    with client, pytest.raises(CallDenied) as denied:
        client.messages.create(**BASE, **filled)
    assert emulator.state.requests() == []
    assert denied.value.dlp.kinds == ("anthropic-api-key",)


def test_what_the_network_puts_in_headers_is_no_finding(
    emulator: Emulator,
    emulator_api_key: IssuedKey,
    store: AuditStore,
    tmp_path: Path,
) -> None:
    """An address in X-Forwarded-For, a mail address in a User-Agent, a trace id: the
    network's, not the caller's data, and a secrets-only look finds nothing in them."""
    client = _audited("alice", emulator, emulator_api_key, tmp_path, store)
    headers = {
        "x-forwarded-for": "203.0.113.7, 10.0.0.12",
        "user-agent": f"batch-runner/1.2 (+{EMAIL})",
        "x-request-id": "4bf92f3577b34da6a3ce929d0e0e4736",
    }
    with client:
        client.messages.create(**BASE, extra_headers=headers)
    [event] = records(store)
    assert (event.decision, event.dlp_kinds) == ("allow", ())
