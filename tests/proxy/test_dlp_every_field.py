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
    base = make_config(tmp_path)
    proxy = start_proxy(Config(policy=_config(tmp_path).policy, audit=base.audit, proxy=base.proxy))
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
