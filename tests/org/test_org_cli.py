"""`claudesec org inventory` and `claudesec emulator serve --org`, run as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from claudesec.emulator import FaultKind
from claudesec.org import inventory_json
from tests.fixtures.cli import RunCli
from tests.fixtures.emulator import SeededEmulator

if TYPE_CHECKING:
    from claudesec.org.model import OrgInventory


@pytest.fixture
def org_config(
    emulator_org: SeededEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", emulator_org.admin_key.secret)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    path = tmp_path / "claudesec.toml"
    path.write_text(
        f'[anthropic]\nbase_url = "{emulator_org.emulator.base_url}"\ntimeout_s = 5.0\n'
        "[keys]\nadmin_max_retries = 1\nadmin_max_retry_wait_s = 0.01\n",
        encoding="utf-8",
    )
    return path


def test_inventory_out_writes_the_evidence_file(
    run_cli: RunCli,
    org_config: Path,
    emulator_org: SeededEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", emulator_org.oauth_token)
    out = tmp_path / "inventory.json"

    result = run_cli("--config", str(org_config), "org", "inventory", "--out", str(out))

    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # piped with --out: the file is the report
    inventory = inventory_json.read(out)
    assert inventory.unavailable == ()
    assert len(inventory.items("users")) == 10
    assert inventory.unavailable == ()  # the token reads service accounts and federation
    assert emulator_org.admin_key.secret not in out.read_text(encoding="utf-8")
    assert emulator_org.oauth_token not in result.output


def test_inventory_json_names_what_the_admin_key_cannot_read(
    run_cli: RunCli, org_config: Path
) -> None:
    result = run_cli("--config", str(org_config), "org", "inventory", "--json")

    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["format"] == inventory_json.FORMAT
    assert {u["kind"] for u in document["unavailable"]} == {
        "service_accounts",
        "service_account_workspaces",
        "federation_issuers",
        "federation_rules",
    }
    assert "ANTHROPIC_AUTH_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr


def test_inventory_with_a_failing_kind_is_partial(
    run_cli: RunCli, org_config: Path, emulator_org: SeededEmulator
) -> None:
    emulator_org.emulator.state.inject_fault(
        FaultKind.SERVER_ERROR, count=2, path_prefix="/v1/organizations/telemetry_destinations"
    )

    result = run_cli("--config", str(org_config), "org", "inventory", "--json")

    assert result.exit_code == 4, result.output
    assert "telemetry_destinations not read (error)" in result.stderr


def test_inventory_without_an_admin_key_is_a_config_error(
    run_cli: RunCli, org_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_ADMIN_KEY")

    result = run_cli("--config", str(org_config), "org", "inventory")

    assert result.exit_code == 2, result.output
    assert "ANTHROPIC_ADMIN_KEY" in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2


@pytest.mark.parametrize("name", ["tidy", "clean+ORG-NOPE-001", "messy+ORG-KEY-001"])
def test_emulator_serve_refuses_an_unknown_organisation(run_cli: RunCli, name: str) -> None:
    result = run_cli("emulator", "serve", "--port", "0", "--org", name)

    assert result.exit_code == 2
    assert f"unknown organisation {name!r}" in result.stderr
    assert "clean+CHECK-ID" in result.stderr


def _served(tmp_path: Path, org: str) -> tuple[OrgInventory, str]:
    """Run `claudesec emulator serve --org ORG` as a user does; read it whole; stop it."""
    import os
    import signal
    import subprocess

    from claudesec.org.http import AdminHttp
    from claudesec.org.inventory import InventoryReader
    from tests.fixtures.cli import REPO_ROOT, interruptible

    keys_file = tmp_path / "keys.json"
    proc = subprocess.Popen(
        interruptible(
            "emulator", "serve", "--port", "0", "--org", org, "--keys-file", str(keys_file)
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip().split("=", 1)[1]
        keys = json.loads(keys_file.read_text(encoding="utf-8"))
        # no stray API key beside the seeded ones; the org:admin token for federation kinds
        assert [k["kind"] for k in keys] == ["admin", "oauth"]
        inventory = InventoryReader(
            AdminHttp(base_url), admin_key=keys[0]["key"], oauth_token=keys[1]["key"]
        ).read()
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    return inventory, err


def test_emulator_serve_org_variant_serves_the_clean_organisation_with_one_defect(
    tmp_path: Path,
) -> None:
    inventory, err = _served(tmp_path, "clean+ORG-CMP-001")
    assert "seeded the clean+ORG-CMP-001 organisation" in err
    assert inventory.unavailable == ()
    assert inventory.singleton("compliance_settings") == {
        "type": "compliance_settings",
        "state": {"type": "disabled"},
        "access_transparency": {"type": "enabled"},
    }


def test_emulator_serve_org_messy_serves_the_seeded_organisation(tmp_path: Path) -> None:
    inventory, err = _served(tmp_path, "messy")
    assert "seeded the messy organisation" in err
    assert len(inventory.items("users")) == 10
    assert inventory.unavailable == ()  # the token reads service accounts and federation
    assert inventory.singleton("compliance_settings") == {
        "type": "compliance_settings",
        "state": {"type": "disabled"},
        "access_transparency": {"type": "disabled"},
    }
