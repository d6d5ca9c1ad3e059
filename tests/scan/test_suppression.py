"""Baselines, inline allow comments and config allowlists, end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from claudesec.scan.baseline import load_baseline
from tests.fixtures.cli import RunCli
from tests.fixtures.keys import KeyFactory
from tests.scan.conftest import report, rules


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    factory = KeyFactory(51)
    root = tmp_path / "tree"
    (root / "src").mkdir(parents=True)
    (root / "tests" / "fixtures").mkdir(parents=True)
    (root / "src" / "app.py").write_text(f'KEY = "{factory.anthropic_api().value}"\n')
    (root / "src" / "db.env").write_text("DB_PASSWORD=hunter2\nAPI_PASSWORD=Zq8rT2mW9xLp4Kv7#42\n")
    (root / "tests" / "fixtures" / "keys.txt").write_text(f"{factory.github_classic().value}\n")
    return root


def test_baseline_round_trip_suppresses_old_findings_only(
    tree: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    baseline = tmp_path / "baseline.json"
    written = run_cli("scan", str(tree), "--write-baseline", str(baseline))
    assert written.exit_code == 0
    assert "wrote 3 finding(s)" in written.stderr
    assert run_cli("scan", str(tree), "--baseline", str(baseline)).exit_code == 0

    new_key = KeyFactory(52).anthropic_api().value
    (tree / "src" / "new.py").write_text(f'NEW = "{new_key}"\n')
    result = run_cli("scan", str(tree), "--baseline", str(baseline), "-f", "json")
    assert result.exit_code == 1
    assert [f["path"] for f in report(result)["findings"]] == ["src/new.py"]
    assert report(result)["summary"]["suppressed"]["baseline"] == 3


def test_baseline_holds_no_secret_and_uses_a_salted_slow_hash(
    tree: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    baseline = tmp_path / "baseline.json"
    run_cli("scan", str(tree), "--write-baseline", str(baseline))
    text = baseline.read_text()
    for path in tree.rglob("*"):
        if path.is_file():
            for line in path.read_text().splitlines():
                value = line.split("=", 1)[-1].strip().strip('"')
                assert value not in text
    document = json.loads(text)
    assert document["hash"]["algorithm"] == "pbkdf2-hmac-sha256"
    assert document["hash"]["iterations"] >= 10_000
    first_salt = document["hash"]["salt"]
    # Rewriting keeps the salt, so an unchanged repository gives an unchanged file.
    run_cli("scan", str(tree), "--write-baseline", str(baseline))
    assert json.loads(baseline.read_text())["hash"]["salt"] == first_salt
    assert baseline.read_text() == text
    other = tmp_path / "other.json"
    run_cli("scan", str(tree), "--write-baseline", str(other))
    assert json.loads(other.read_text())["hash"]["salt"] != first_salt
    assert len(load_baseline(str(other)).entries) == 3


def test_baseline_errors(tree: Path, tmp_path: Path, run_cli: RunCli) -> None:
    missing = run_cli("scan", str(tree), "--baseline", str(tmp_path / "nope.json"))
    assert missing.exit_code == 2 and "baseline file not found" in missing.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 99}')
    assert run_cli("scan", str(tree), "--baseline", str(bad)).exit_code == 2


def test_config_allowlists(tree: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree)
    assert sorted(rules(run_cli("scan", "-f", "json"))) == [
        "anthropic-api-key",
        "generic-secret-assignment",
        "github-token",
    ]
    (tree / "claudesec.toml").write_text(
        '[scan]\nallow_paths = ["tests/fixtures/**"]\n'
        'disabled_rules = ["generic-secret-assignment"]\n'
    )
    result = run_cli("scan", "-f", "json")
    assert rules(result) == ["anthropic-api-key"]
    assert report(result)["summary"]["suppressed"]["path"] == 1
    (tree / "claudesec.toml").write_text('[scan]\nexclude_paths = ["src"]\n')
    assert rules(run_cli("scan", "-f", "json")) == ["github-token"]
    (tree / "claudesec.toml").write_text('[scan]\ndisabled_rules = ["no-such-rule"]\n')
    bad = run_cli("scan")
    assert bad.exit_code == 2 and "scan.disabled_rules" in bad.stderr


def test_config_baseline_is_relative_to_the_config_file(
    tree: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_cli("scan", str(tree), "--write-baseline", str(tree / ".claudesec-baseline.json"))
    (tree / "claudesec.toml").write_text('[scan]\nbaseline = ".claudesec-baseline.json"\n')
    monkeypatch.chdir(tree / "src")
    assert run_cli("scan", "..").exit_code == 0


def test_inline_allow_through_the_cli(tmp_path: Path, run_cli: RunCli) -> None:
    factory = KeyFactory(53)
    (tmp_path / "a.py").write_text(
        f'A = "{factory.anthropic_api().value}"  # claudesec:allow anthropic-api-key\n'
        "# claudesec:allow\n"
        f'B = "{factory.github_classic().value}"\n'
        f'C = "{factory.npm().value}"  # claudesec:allow github-token\n'
    )
    result = run_cli("scan", str(tmp_path), "-f", "json")
    assert rules(result) == ["npm-token"]
    assert report(result)["summary"]["suppressed"]["inline"] == 2


def test_mistyped_rule_id_in_an_allow_comment_reports_and_warns(
    tmp_path: Path, run_cli: RunCli
) -> None:
    factory = KeyFactory(54)
    (tmp_path / "a.py").write_text(
        f'A = "{factory.anthropic_api().value}"  # claudesec:allow antropic-api-key\n'
        f'B = "{factory.github_classic().value}"  # claudesec:allow github-token -- CI fixture\n'
    )
    result = run_cli("scan", str(tmp_path), "-f", "json")
    assert result.exit_code == 1
    assert rules(result) == ["anthropic-api-key"]
    assert report(result)["summary"]["suppressed"]["inline"] == 1
    assert "a.py:1: claudesec:allow names unknown rule id(s) antropic-api-key" in result.stderr
