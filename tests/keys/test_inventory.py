"""A wrong region or account must not silence the alarms: expected keys that cannot be found
are an error, and an empty inventory says so."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fixtures.cli import RunCli
from tests.keys.conftest import Rig


def _region(config: Path, region: str) -> None:
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace('aws_region = "us-east-1"', f'aws_region = "{region}"'), encoding="utf-8"
    )


def test_a_wrong_region_fails_rotate_and_status_naming_the_missing_key(
    rig: Rig, keys_config: Path, run_cli: RunCli
) -> None:
    assert run_cli("keys", "add", "app", input=rig.new_key().secret).exit_code == 0
    assert run_cli("keys", "rotate", "--all").exit_code == 0
    _region(keys_config, "eu-west-1")  # moto keeps regions apart, as AWS does

    rotate = run_cli("keys", "rotate", "--all", "--json")
    assert rotate.exit_code == 2, rotate.output
    (doc_line,) = rotate.stdout.splitlines()
    doc = json.loads(doc_line)
    assert doc["keys"][0]["outcome"] == "failed"
    message = doc["keys"][0]["message"]
    assert "claudesec/app not found" in message and "eu-west-1" in message
    assert "us-east-1" in message  # where it was seen
    assert "no managed keys found" in rotate.stderr

    status = run_cli("keys", "status")
    assert status.exit_code == 1, status.output
    assert "claudesec/app not found" in status.stderr


def test_an_empty_inventory_says_so_on_stderr(keys_config: Path, run_cli: RunCli) -> None:
    result = run_cli("keys", "rotate", "--all")
    assert result.exit_code == 0, result.output  # nothing was ever managed here: a first run
    assert "no managed keys found" in result.stderr
    assert "us-east-1" in result.stderr


def test_a_key_named_in_the_config_must_exist(keys_config: Path, run_cli: RunCli) -> None:
    keys_config.write_text(
        keys_config.read_text(encoding="utf-8")
        + '\n[keys.scope_secret_readers]\napp = ["arn:aws:iam::123456789012:role/app"]\n',
        encoding="utf-8",
    )
    result = run_cli("keys", "rotate", "--all")
    assert result.exit_code == 2, result.output
    assert "claudesec/app not found" in result.stdout
    assert "named in the configuration" in result.stdout


def test_forget_drops_a_key_deleted_on_purpose(
    rig: Rig, keys_config: Path, run_cli: RunCli
) -> None:
    assert run_cli("keys", "add", "app", input=rig.new_key().secret).exit_code == 0
    rig.sm.delete_secret(SecretId="claudesec/app", ForceDeleteWithoutRecovery=True)
    assert run_cli("keys", "rotate", "--all").exit_code == 2

    assert run_cli("keys", "forget", "app").exit_code == 0

    result = run_cli("keys", "rotate", "--all")
    assert result.exit_code == 0, result.output
