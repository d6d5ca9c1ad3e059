"""The proxy blocks or redacts a secret and a PII value planted in every field of a request
that the SDK's types accept (the places come from :mod:`tests.guard.sdk_requests`; the same
attack through the audited client is in ``tests/guard/test_dlp_every_field.py``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from claudesec.config import Config
from claudesec.emulator import Emulator
from tests.fixtures.keys import KeyFactory
from tests.guard.sdk_requests import Planted, inside_signed_block
from tests.guard.test_dlp_every_field import (
    BASE,
    EMAIL,
    ENDPOINTS,
    KINDS,
    _by_hand,
    _config,
    _expect_skip,
    _in_clear,
    _one_per_field,
    _plant,
)
from tests.proxy.conftest import RunningProxy, make_config
from tests.proxy.test_server import events, send


def _start(start_proxy: Callable[..., RunningProxy], tmp_path: Path) -> RunningProxy:
    base = make_config(tmp_path)
    return start_proxy(Config(policy=_config(tmp_path).policy, audit=base.audit, proxy=base.proxy))


@pytest.mark.parametrize("mode", ["block", "redact"])
@pytest.mark.parametrize(
    ("endpoint", "places"), ENDPOINTS, ids=["messages", "count_tokens", "batches"]
)
def test_proxy_blocks_or_redacts_every_field(
    mode: str,
    endpoint: str,
    places: Callable[[], list[Planted]],
    start_proxy: Callable[..., RunningProxy],
    emulator: Emulator,
    tmp_path: Path,
    fake_keys: KeyFactory,
) -> None:
    proxy = _start(start_proxy, tmp_path)
    token = proxy.token(*(("alice", "blocker") if mode == "block" else ("bob", "redactor")))
    key, _, fill = _plant(fake_keys)
    failures = []
    for place in _one_per_field(places()) + _by_hand(endpoint):
        if _expect_skip(place):
            continue
        emulator.state.clear_requests()
        status, headers, answer = send(
            proxy, "POST", endpoint, fill(place.body), {"x-api-key": token}
        )
        sent = json.dumps([r.body for r in emulator.state.requests()])
        if key[:24] in answer.decode() or EMAIL in answer.decode():
            failures.append(f"{place.where}: the refusal echoes the value")
        # A DLP refusal is a 400 naming its reason (clients show 403 as an auth failure).
        if status == 400 and headers.get("x-claudesec-reason") == "dlp.blocked":
            if mode == "redact" and not inside_signed_block(place.body):
                failures.append(f"{place.where}: refused under redact")
            continue
        if mode == "block" or _in_clear(key, sent):
            failures.append(f"{place.where}: sent in clear ({mode}, {status}) {answer[:200]!r}")
    assert failures == []
    recorded = [e for e in events(proxy) if e.dlp_kinds]
    assert recorded, [(e.type, e.reason) for e in events(proxy)][:5]
    assert all(set(e.dlp_kinds) >= KINDS for e in recorded)
    logged = json.dumps([e.to_dict() for e in events(proxy)])
    assert key[:24] not in logged and EMAIL not in logged


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/v1/messages", {"anthropic-workspace-id": "KEY"}),
        ("/v1/messages", {"x-note": "KEY"}),
        ("/v1/messages?note=KEY", {}),
    ],
    ids=["workspace-header", "any-header", "query"],
)
def test_proxy_refuses_a_secret_in_a_header_or_the_query_and_forwards_nothing(
    path: str,
    headers: dict[str, str],
    start_proxy: Callable[..., RunningProxy],
    emulator: Emulator,
    tmp_path: Path,
    fake_keys: KeyFactory,
) -> None:
    from urllib.parse import quote

    proxy = _start(start_proxy, tmp_path)
    key = fake_keys.anthropic_api().value
    token = proxy.token("bob", "redactor")  # even under redact: a header cannot be redacted
    sent_headers = {k: v.replace("KEY", key) for k, v in headers.items()}
    emulator.state.clear_requests()
    status, answered, answer = send(
        proxy,
        "POST",
        path.replace("KEY", quote(key)),
        BASE,
        {"x-api-key": token, **sent_headers},
    )  # fmt: skip
    assert (status, answered.get("x-claudesec-reason")) == (400, "dlp.blocked"), answer[:200]
    assert key[:24] not in answer.decode()
    assert emulator.state.requests(path="/v1/messages") == []
    [refusal] = [e for e in events(proxy) if e.reason == "dlp.blocked"]
    assert refusal.dlp_kinds == ("anthropic-api-key",)


def test_proxy_forwards_what_the_network_adds_to_headers(
    start_proxy: Callable[..., RunningProxy], emulator: Emulator, tmp_path: Path
) -> None:
    proxy = _start(start_proxy, tmp_path)
    status, _, answer = send(
        proxy,
        "POST",
        "/v1/messages",
        BASE,
        {
            "x-api-key": proxy.token("alice", "blocker"),
            "x-forwarded-for": "203.0.113.7, 10.0.0.12",
            "user-agent": f"n8n/1.0 (+{EMAIL})",
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        },
    )  # fmt: skip
    assert status == 200, answer[:200]
    [forwarded] = emulator.state.requests(path="/v1/messages")
    assert forwarded.headers.get("x-forwarded-for") == "203.0.113.7, 10.0.0.12"
