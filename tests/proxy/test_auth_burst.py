"""End to end: a revoked proxy token being tried shows up as `claudesec logs alerts`
auth_burst; the proxy records the 401s it answers itself as well as those it relays."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.audit.export.helpers import write_config
from tests.audit.test_auth_burst import ATTEMPTS, alerts
from tests.fixtures.cli import RunCli
from tests.proxy.test_server import MESSAGE, events, send


def test_a_revoked_proxy_token(start_proxy: Any, tmp_path: Path, run_cli: RunCli) -> None:
    proxy = start_proxy()
    issued = proxy.tokens.create(user="mallory", role="dev", lifetime_s=3600)
    proxy.tokens.revoke(issued.record.id)
    for _ in range(ATTEMPTS):
        status, _, _ = send(proxy, "POST", "/v1/messages", MESSAGE, {"x-api-key": issued.secret})
        assert status == 401
    recorded = events(proxy)
    assert [e.extra["http_status"] for e in recorded] == [401] * ATTEMPTS
    assert {e.extra["token_id"] for e in recorded} == {issued.record.id}

    store = Path(proxy.config.audit.store_path)
    fired = alerts(run_cli, write_config(tmp_path, ""), store)
    [burst] = [a for a in fired if a["rule"] == "auth_burst"]
    assert burst["count"] == ATTEMPTS
    assert issued.secret not in json.dumps(fired)
