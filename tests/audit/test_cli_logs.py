"""`claudesec logs ...` end to end, on real stores built in the test's CLAUDESEC_HOME."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from claudesec.audit import AuditEvent, AuditStore

from ..fixtures.cli import RunCli
from .helpers import BASE_NS, DAY_NS, event, raw

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(claudesec_home: Path) -> Path:
    """30 events in the default store (checkpoint every 10 via config)."""
    Path("claudesec.toml").write_text("[audit]\ncheckpoint_every = 10\n", encoding="utf-8")
    from claudesec.config import load_config

    with AuditStore.from_config(load_config().config.audit) as opened:
        for i in range(1, 31):
            opened.append(event(i))
    return claudesec_home / "audit.db"


def test_verify_on_a_fresh_installation_exits_0(run_cli: RunCli, claudesec_home: Path) -> None:
    result = run_cli("logs", "verify")
    assert result.exit_code == 0, result.output
    assert "OK: empty" in result.stdout


def test_verify_a_clean_store(run_cli: RunCli, store: Path) -> None:
    result = run_cli("logs", "verify")
    assert result.exit_code == 0, result.output
    assert "30 records (seq 1..30), 3 checkpoints" in result.stdout
    data = json.loads(run_cli("logs", "verify", "--format", "json").stdout)
    assert data["ok"] is True and data["records"] == 30


def test_verify_names_the_first_tampered_record_and_exits_1(run_cli: RunCli, store: Path) -> None:
    with raw(store) as conn:
        conn.execute("UPDATE events SET body = replace(body, 'user2', 'root') WHERE seq = 14")
    result = run_cli("logs", "verify")
    assert result.exit_code == 1
    assert "TAMPERED: record 14: modified" in result.stdout
    data = json.loads(run_cli("logs", "verify", "--format", "json").stdout)
    assert data["problems"][0] == {
        "kind": "modified",
        "seq": 14,
        "checkpoint": None,
        "message": data["problems"][0]["message"],
    }


def test_tail_show_and_query_print_jsonl_when_piped(run_cli: RunCli, store: Path) -> None:
    lines = run_cli("logs", "tail", "-n", "3").stdout.splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [28, 29, 30]
    shown = run_cli("logs", "show", "5")
    assert json.loads(shown.stdout)["request_id"] == "req_5"
    missing = run_cli("logs", "show", "999")
    assert missing.exit_code == 1
    assert "no audit record 999" in missing.stderr
    queried = run_cli("logs", "query", "--user", "user1", "--role", "analyst", "--limit", "2")
    assert [json.loads(line)["seq"] for line in queried.stdout.splitlines()] == [19, 25]


def test_query_formats_and_filters(run_cli: RunCli, store: Path) -> None:
    csv_out = run_cli(
        "logs", "query", "--model", "claude-haiku-*", "--min-tokens", "160", "--format", "csv"
    ).stdout.splitlines()
    assert csv_out[0].startswith("seq,time,time_ns,type,user")
    assert [int(line.split(",")[0]) for line in csv_out[1:]] == [25, 27, 29]
    as_json = json.loads(run_cli("logs", "query", "--type", "call", "--format", "json").stdout)
    assert len(as_json) == 30
    table = run_cli("logs", "query", "--decision", "deny", "--format", "table")
    assert table.exit_code == 0 and table.stdout.startswith("seq\ttime")
    since = run_cli("logs", "query", "--since", "2026-01-01", "--until", "1d", "--format", "json")
    assert len(json.loads(since.stdout)) == 30
    assert run_cli("logs", "query", "--since", "2h", "--format", "json").stdout.strip() == "[]"
    bad = run_cli("logs", "query", "--since", "last tuesday")
    assert bad.exit_code == 2
    assert "not a time" in bad.stderr
    assert run_cli("logs", "query", "--format", "xml").exit_code == 2


def test_summary_by_each_dimension(run_cli: RunCli, store: Path) -> None:
    data = json.loads(run_cli("logs", "summary", "--by", "model").stdout)
    assert {r["model"] for r in data["rows"]} == {"claude-haiku-4-5", "claude-sonnet-4-5"}
    assert data["total"]["calls"] == 30
    assert data["price_source"] == "built-in"
    assert "estimate" in data["note"]
    top = json.loads(run_cli("logs", "summary", "--by", "user", "--top", "1").stdout)
    assert len(top["rows"]) == 1 and top["groups"] == 3
    for by in ("day", "role"):
        assert run_cli("logs", "summary", "--by", by).exit_code == 0
    table = run_cli("logs", "summary", "--by", "role", "--format", "table")
    assert "TOTAL\t30" in table.stdout
    assert run_cli("logs", "summary", "--by", "prompt").exit_code == 2


def test_summary_uses_configured_prices(run_cli: RunCli, store: Path) -> None:
    Path("claudesec.toml").write_text(
        '[audit]\nprices = { "claude-*:input" = 1000000.0, "claude-*:output" = 0.0 }\n',
        encoding="utf-8",
    )
    data = json.loads(run_cli("logs", "summary").stdout)
    assert data["price_source"] == "config"
    assert data["total"]["estimated_cost_usd"] == sum(100 + i for i in range(1, 31))


def test_checkpoint_export_and_verify_against_the_anchor(
    run_cli: RunCli, store: Path, tmp_path: Path
) -> None:
    anchor = tmp_path / "anchor.json"
    result = run_cli("logs", "checkpoint", "--export", str(anchor))
    assert result.exit_code == 0, result.output
    exported = json.loads(anchor.read_text())
    assert (exported["checkpoint"], exported["seq"]) == (3, 30)
    to_stdout = json.loads(run_cli("logs", "checkpoint", "--export").stdout)
    assert to_stdout["checkpoint_hash"] == exported["checkpoint_hash"]
    assert run_cli("logs", "verify", "--anchor", str(anchor)).exit_code == 0
    with raw(store) as conn:
        conn.execute("DELETE FROM events WHERE seq > 20")
        conn.execute("DELETE FROM checkpoints WHERE number = 3")
    cut = run_cli("logs", "verify", "--anchor", str(anchor), "--no-rollups")
    assert cut.exit_code == 1
    assert "truncated" in cut.stdout


def test_public_key_export_and_verify_with_it(run_cli: RunCli, store: Path, tmp_path: Path) -> None:
    pem = run_cli("logs", "public-key").stdout
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    key_file = tmp_path / "audit.pub"
    key_file.write_text(pem)
    assert run_cli("logs", "verify", "--public-key", str(key_file)).exit_code == 0
    hex_key = run_cli("logs", "public-key", "--format", "hex").stdout.strip()
    assert len(hex_key) == 64
    secret = (store.parent / "audit-signing-ed25519.key").read_text().strip()
    assert secret not in pem and secret not in hex_key


def _auditor_files(run_cli: RunCli, tmp_path: Path) -> tuple[str, str]:
    """What an auditor keeps off the host: an exported checkpoint and the public key."""
    anchor, key = tmp_path / "anchor.json", tmp_path / "audit.pub"
    assert run_cli("logs", "checkpoint", "--export", str(anchor)).exit_code == 0
    key.write_text(run_cli("logs", "public-key").stdout)
    return str(anchor), str(key)


def test_verify_with_anchor_and_key_refuses_a_faked_prune(
    run_cli: RunCli, store: Path, tmp_path: Path
) -> None:
    anchor, key = _auditor_files(run_cli, tmp_path)
    with raw(store) as conn:
        conn.execute("DELETE FROM events WHERE seq <= 20")
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('pruned_through_checkpoint', '2')")
    result = run_cli("logs", "verify", "--anchor", anchor, "--public-key", key, "--no-rollups")
    assert result.exit_code == 1
    assert "TAMPERED: record 1: deleted: records 1..20 are missing" in result.stdout


def test_verify_with_a_public_key_refuses_a_store_nothing_signed(
    run_cli: RunCli, store: Path, tmp_path: Path
) -> None:
    _, key = _auditor_files(run_cli, tmp_path)
    replacement = tmp_path / "elsewhere" / "audit.db"
    with AuditStore.open(replacement, checkpoint_every=0) as other:
        other.append_many(event(i) for i in range(1, 6))
    for suffix in ("-wal", "-shm"):
        Path(str(store) + suffix).unlink(missing_ok=True)
    store.write_bytes(replacement.read_bytes())
    assert run_cli("logs", "verify").exit_code == 0  # alone, a store with no key is just young
    result = run_cli("logs", "verify", "--public-key", key)
    assert result.exit_code == 1
    assert "NOT SIGNED: store: unsigned: nothing in this store is signed yet" in result.stdout


def test_prune_via_cli_then_verify(run_cli: RunCli, claudesec_home: Path) -> None:
    Path("claudesec.toml").write_text("[audit]\ncheckpoint_every = 10\n", encoding="utf-8")
    old = BASE_NS - 400 * DAY_NS
    with AuditStore.open_default() as opened:
        opened.append_many(event(i, time_ns=old + i) for i in range(1, 26))
        opened.append(AuditEvent(type="call", user="recent"))
    result = run_cli("logs", "prune", "--older-than", "90d")
    assert result.exit_code == 0, result.output
    assert "pruned 20 records through record 20" in result.stdout  # the checkpoint at 20
    assert run_cli("logs", "verify").exit_code == 0
    again = run_cli("logs", "prune")  # audit.retention_days (90) by default
    assert "nothing to prune" in again.stdout
    prune_event = json.loads(run_cli("logs", "query", "--type", "prune", "--format", "json").stdout)
    assert prune_event[0]["pruned_records"] == 20


def test_a_read_only_store_is_exit_3_with_one_line(run_cli: RunCli, store: Path) -> None:
    with AuditStore.open_default() as opened:
        opened.append(event(31))  # so that `logs checkpoint` has something to write
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(store)], check=True)
    else:
        store.chmod(0o400)
    try:
        result = run_cli("logs", "checkpoint")
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(store)], check=True)
        store.chmod(0o600)
    assert result.exit_code == 3
    assert result.stderr.count("\n") == 1
    assert "audit store" in result.stderr
    assert run_cli("logs", "verify").exit_code == 0


def test_store_option_points_at_another_file(run_cli: RunCli, store: Path, tmp_path: Path) -> None:
    other = tmp_path / "copy.db"
    import shutil

    for suffix in ("", "-wal", "-shm"):
        if Path(f"{store}{suffix}").exists():
            shutil.copy(f"{store}{suffix}", f"{other}{suffix}")
    assert run_cli("logs", "verify", "--store", str(other)).exit_code == 0
    assert run_cli("logs", "tail", "--store", str(tmp_path / "none.db")).stdout == ""


from tests.fixtures.cli import interruptible  # noqa: E402


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def test_tail_follow_prints_new_events_and_exits_cleanly_on_ctrl_c(
    store: Path, tmp_path: Path
) -> None:
    proc = subprocess.Popen(
        interruptible("logs", "tail", "-f", "-n", "1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline())["seq"] == 30
        with AuditStore.open_default() as writer:
            writer.append(AuditEvent(type="call", user="late"))
        line = proc.stdout.readline()
        assert json.loads(line)["user"] == "late"
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "Traceback" not in err


def test_logs_commands_do_not_import_heavy_modules(store: Path) -> None:
    code = (
        "import sys; from claudesec.cli.main import invoke;"
        "codes = [invoke(['logs', c]) for c in ('verify', 'tail', 'summary')];"
        "heavy = [m for m in ('anthropic', 'boto3', 'botocore', 'keyring') if m in sys.modules];"
        "print(codes, heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(), check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "[0, 0, 0] []"


def test_a_store_overwritten_with_garbage_fails_verify_with_exit_1(
    run_cli: RunCli, store: Path
) -> None:
    for suffix in ("-wal", "-shm"):
        Path(f"{store}{suffix}").unlink(missing_ok=True)
    store.write_bytes(b"\0garbage" * 4096)
    result = run_cli("logs", "verify")
    assert result.exit_code == 1
    assert "damaged" in result.stdout
    assert run_cli("logs", "tail").exit_code == 3


def test_a_terminal_gets_rich_tables(
    run_cli: RunCli, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    import claudesec.console as console_module
    from claudesec.console import Console, Environment

    out = io.StringIO()
    tty = Console(Environment(stdout=out, stderr=io.StringIO(), stdout_isatty=True, width=160))
    monkeypatch.setattr(console_module, "get_console", lambda: tty)
    assert run_cli("logs", "tail", "-n", "2").exit_code == 0
    assert run_cli("logs", "summary", "--by", "model").exit_code == 0
    assert run_cli("logs", "show", "3").exit_code == 0
    assert run_cli("logs", "verify").exit_code == 0
    text = out.getvalue()
    assert "audit log" in text and "┃" in text  # rich box drawing, not TSV
    assert "claude-haiku-4-5" in text and "TOTAL" in text
    assert "req_3" in text
    assert "audit log OK" in text
