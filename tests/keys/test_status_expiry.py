"""``keys status`` / ``keys remote`` show each key's expiry, scope and principal (the Admin
API's fields) and flag keys that never expire: a leak of one works until it is revoked."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from tests.fixtures.cli import RunCli
from tests.keys.conftest import Rig


def test_status_shows_expiry_scope_principal_and_flags_never_expiring(
    rig: Rig, keys_config: Path, run_cli: RunCli
) -> None:
    state = rig.emulator.state
    expiring = state.add_key("api", expires_at=state.now() + timedelta(days=30))
    assert run_cli("keys", "add", "app", input=expiring.secret + "\n").exit_code == 0
    forever = state.add_key("api", name="ci-forever")
    bot = state.add_key("api", name="bot", scope="organization", service_account_id="svac_drillbot")

    report = json.loads(run_cli("keys", "status", "--json").stdout)
    (key,) = report["keys"]
    assert key["key_id"] == expiring.id
    assert key["expires_at"] and not key["never_expires"]
    assert key["scope"] == "workspace" and key["principal"] == ""
    assert any(forever.id in w and "never expires" in w for w in report["warnings"])
    assert not any("app: key" in w and "never expires" in w for w in report["warnings"])

    remote = {e["id"]: e for e in json.loads(run_cli("keys", "remote", "--json").stdout)}
    assert remote[forever.id]["expires_at"] is None
    assert remote[bot.id]["scope"] == "organization"
    assert remote[bot.id]["principal"] == "service_account_actor:svac_drillbot"
    table = run_cli("keys", "remote").stdout
    assert "NEVER" in table


def test_a_managed_key_that_never_expires_is_flagged_but_not_an_alert(
    rig: Rig, keys_config: Path, run_cli: RunCli
) -> None:
    key = rig.new_key()
    assert run_cli("keys", "add", "app", input=key.secret + "\n").exit_code == 0
    result = run_cli("keys", "status", "--json")
    report = json.loads(result.stdout)
    assert report["keys"][0]["never_expires"] is True
    assert any("app: key" in w and "never expires" in w for w in report["warnings"])
    assert not any("never expires" in a for a in report["alerts"])
    assert result.exit_code == 0
