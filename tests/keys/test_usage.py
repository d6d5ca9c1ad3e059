"""`keys usage` against the emulator's usage report, reconciled with a real audit store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from claudesec.audit.events import AuditEvent
from claudesec.audit.store import AuditStore
from claudesec.config import AuditConfig
from claudesec.emulator import UsageRecord
from tests.fixtures.cli import RunCli
from tests.keys.conftest import Rig

MODEL = "claude-sonnet-4-6"


def _seed(rig: Rig) -> str:
    key = rig.new_key()
    at = datetime.now(UTC) - timedelta(days=2)
    rig.emulator.state.extend_usage(
        [
            UsageRecord(
                at=at,
                key_id=key.id,
                workspace_id=None,
                model=MODEL,
                input_tokens=1000,
                output_tokens=500,
            ),
            UsageRecord(
                at=at,
                key_id=key.id,
                workspace_id=None,
                model=MODEL,
                input_tokens=1000,
                output_tokens=500,
            ),
        ]
    )
    return key.id


def test_usage_by_key_and_model_with_cost(rig: Rig, keys_config: Path, run_cli: RunCli) -> None:
    key_id = _seed(rig)
    text = keys_config.read_text(encoding="utf-8")
    keys_config.write_text(
        text + f'\n[audit.prices]\n"{MODEL[:-3]}*:input" = 3.0\n"{MODEL[:-3]}*:output" = 15.0\n',
        encoding="utf-8",
    )
    result = run_cli("keys", "usage", "--since", "7d", "--json")
    assert result.exit_code == 0, result.output
    (line,) = json.loads(result.stdout)["usage"]
    assert line["group"] == key_id
    assert (line["input_tokens"], line["output_tokens"]) == (2000, 1000)
    assert line["cost_usd"] == (2000 * 3.0 + 1000 * 15.0) / 1e6

    by_model = json.loads(run_cli("keys", "usage", "--by", "model", "--json").stdout)
    assert by_model["usage"][0]["group"] == MODEL


def test_reconcile_flags_traffic_the_audit_log_did_not_see(
    rig: Rig, keys_config: Path, run_cli: RunCli
) -> None:
    _seed(rig)
    with AuditStore.from_config(AuditConfig()) as store:
        store.append(AuditEvent(type="call", model=MODEL, input_tokens=1000, output_tokens=500))
    result = run_cli("keys", "usage", "--reconcile", "--json")
    assert result.exit_code == 1, result.output
    (gap,) = json.loads(result.stdout)["unaudited"]
    assert gap == {
        "model": MODEL,
        "api_tokens": 3000,
        "audited_tokens": 1500,
        "unaudited_tokens": 1500,
    }
    with AuditStore.from_config(AuditConfig()) as store:
        store.append(AuditEvent(type="call", model=MODEL, input_tokens=1000, output_tokens=500))
    assert run_cli("keys", "usage", "--reconcile").exit_code == 0
