"""--verify against the Anthropic emulator and moto's STS: live, invalid, unknown."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from claudesec.emulator import Emulator
from tests.fixtures.cli import RunCli
from tests.fixtures.keys import KeyFactory
from tests.scan.conftest import report


def _config(directory: Path, **scan: str) -> None:
    lines = [
        "[anthropic]",
        f'base_url = "{scan.pop("base_url", "http://127.0.0.1:9")}"',
        "",
        "[scan]",
        "verify_timeout_s = 5.0",
    ]
    lines += [f'{k} = "{v}"' for k, v in scan.items()]
    (directory / "claudesec.toml").write_text("\n".join(lines) + "\n")


def test_verify_anthropic_keys_against_the_emulator(
    emulator: Emulator, tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = emulator.state.add_key("api", name="live")
    dead = emulator.state.add_key("api", name="dead", status="inactive")
    admin = emulator.state.add_key("admin", name="admin")
    unknown = KeyFactory(71).anthropic_api().value  # never issued
    (tmp_path / "a.env").write_text(
        f"LIVE={live.secret}\nDEAD={dead.secret}\nADMIN={admin.secret}\nGONE={unknown}\n"
        f"GH={KeyFactory(72).github_classic().value}\n"
    )
    _config(tmp_path, base_url=emulator.base_url)
    monkeypatch.chdir(tmp_path)
    plain = report(run_cli("scan", "-f", "json"))
    assert all(f["verification"] is None for f in plain["findings"])  # never by default
    result = run_cli("scan", "--verify", "-f", "json")
    assert result.exit_code == 1
    verdicts = {f["line"]: f["verification"] for f in report(result)["findings"]}
    assert verdicts == {1: "live", 2: "invalid", 3: "live", 4: "invalid", 5: "unknown"}
    text = run_cli("scan", "--verify")
    assert "verified: live" in text.stdout


def test_verify_unreachable_issuer_is_unknown_not_a_crash(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.env").write_text(f"K={KeyFactory(73).anthropic_api().value}\n")
    _config(tmp_path, base_url="http://127.0.0.1:9")
    monkeypatch.chdir(tmp_path)
    result = run_cli("scan", "--verify", "-f", "json")
    (finding,) = report(result)["findings"]
    assert finding["verification"] == "unknown"


def test_verify_aws_pair_against_moto_sts(
    aws_endpoint: str,
    aws_client: Callable[..., Any],
    tmp_path: Path,
    run_cli: RunCli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    iam = aws_client("iam")
    iam.create_user(UserName="leaky")
    created = iam.create_access_key(UserName="leaky")["AccessKey"]
    # The session's moto server runs in this process: make it check credentials, as real STS
    # does, for this test only (monkeypatch restores both on teardown).
    monkeypatch.setattr(settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    monkeypatch.setattr(ActionAuthenticatorMixin, "request_count", 0)
    factory = KeyFactory(74)
    fake_id, fake_secret = factory.aws_pair()
    (tmp_path / "creds").write_text(
        f"aws_access_key_id = {created['AccessKeyId']}\n"
        f"aws_secret_access_key = {created['SecretAccessKey']}\n\n\n\n"
        f"aws_access_key_id = {fake_id.value}\naws_secret_access_key = {fake_secret.value}\n"
    )
    _config(tmp_path, sts_endpoint_url=aws_endpoint)
    monkeypatch.chdir(tmp_path)
    result = run_cli("scan", "--verify", "-f", "json")
    verdicts = [(f["rule_id"], f["verification"]) for f in report(result)["findings"]]
    assert verdicts == [("aws-credentials", "live"), ("aws-credentials", "invalid")]


def test_scan_without_verify_never_imports_boto3(tmp_path: Path) -> None:
    import subprocess

    code = (
        "import sys\n"
        "from claudesec.cli.main import invoke\n"
        f"invoke(['scan', {str(tmp_path)!r}])\n"
        "bad = [m for m in ('boto3', 'botocore', 'anthropic', 'keyring') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    (tmp_path / "x.txt").write_text("nothing\n")
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.strip().splitlines()[-1:] in ([""], [])


def test_fail_on_live_reports_dead_keys_without_failing(
    emulator: Emulator, tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = emulator.state.add_key("api", name="dead", status="inactive")
    (tmp_path / "a.env").write_text(f"DEAD={dead.secret}\n")
    _config(tmp_path, base_url=emulator.base_url)
    monkeypatch.chdir(tmp_path)
    assert run_cli("scan", "--verify").exit_code == 1  # by default every finding fails
    relaxed = run_cli("scan", "--verify", "--fail-on", "live")
    assert relaxed.exit_code == 0
    assert "verified: invalid" in relaxed.stdout  # still reported
    assert "1 invalid" in relaxed.stderr and "so not failed" in relaxed.stderr
    live = emulator.state.add_key("api", name="live")
    (tmp_path / "b.env").write_text(f"LIVE={live.secret}\n")
    assert run_cli("scan", "--verify", "--fail-on", "live").exit_code == 1
    only = report(run_cli("scan", "--only-verified", "-f", "json"))
    assert [f["path"] for f in only["findings"]] == ["b.env"]
    assert only["summary"]["failing"] == 1


def test_fail_on_needs_verify_and_known_verdicts(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    missing = run_cli("scan", "--fail-on", "live")
    assert missing.exit_code == 2 and "--verify" in missing.stderr
    typo = run_cli("scan", "--verify", "--fail-on", "lvie")
    assert typo.exit_code == 2 and "'lvie'" in typo.stderr
