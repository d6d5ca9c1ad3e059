"""End to end: a revoked key being tried shows up as `claudesec logs alerts` auth_burst.

The rule counts records whose ``extra.http_status`` is 401; the audited client records the
status of every answer the API gave it (tests/proxy/test_auth_burst.py: the proxy's side).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from claudesec.emulator import Emulator, IssuedKey
from tests.audit.export.helpers import register_commands, write_config
from tests.fixtures.cli import RunCli
from tests.fixtures.emulator import MODEL
from tests.guard.test_pipeline import audit_config, open_store, records

ATTEMPTS = 5  # alerts.auth_failures by default


def alerts(run_cli: RunCli, config: Path, store: Path) -> list[dict[str, Any]]:
    register_commands()
    result = run_cli(
        "-c", str(config), "logs", "alerts", "--dry-run", "--format", "json", "--store", str(store)
    )
    assert result.exit_code == 1, result.output  # 1: alerts fired
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_a_revoked_key_used_by_the_audited_client(
    emulator: Emulator, emulator_api_key: IssuedKey, tmp_path: Path, run_cli: RunCli
) -> None:
    import anthropic

    from claudesec import AuditedAnthropic

    emulator.state.set_key_status(emulator_api_key.id, "inactive")
    path = tmp_path / "audit.db"
    with (
        open_store(path) as store,
        AuditedAnthropic(
            user="alice",
            api_key=emulator_api_key.secret,
            base_url=emulator.base_url,
            claudesec_config=audit_config(),
            store=store,
            max_retries=0,
        ) as client,
    ):
        for _ in range(ATTEMPTS):
            with pytest.raises(anthropic.AuthenticationError):
                client.messages.create(
                    model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "hi"}]
                )
        recorded = records(store)
    assert [e.extra["http_status"] for e in recorded] == [401] * ATTEMPTS
    assert {e.reason for e in recorded} == {"http.401"}

    fired = alerts(run_cli, write_config(tmp_path, ""), path)
    [burst] = [a for a in fired if a["rule"] == "auth_burst"]
    assert burst["count"] == ATTEMPTS
    assert emulator_api_key.secret not in json.dumps(fired)
