"""`claudesec logs export` and `logs export status` as a user runs them, and the crash test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.audit.export.helpers import make_store, register_commands, write_config
from tests.audit.helpers import event
from tests.fixtures.cli import REPO_ROOT, RunCli
from tests.fixtures.sinks import ElasticServer, HecServer


@pytest.fixture(autouse=True)
def _commands() -> None:
    register_commands()


def config(tmp_path: Path, hec: HecServer, es: ElasticServer, out: Path) -> Path:
    return write_config(
        Path.cwd(),
        f"""
[audit]
store_path = "{tmp_path / "audit.db"}"
checkpoint_every = 50

[export]
batch_size = 10
backoff_initial_s = 0.01
backoff_max_s = 0.05

[export.sinks.splunk]
type = "splunk"
url = "{hec.url}"
token_source = "env:TEST_HEC_TOKEN"

[export.sinks.es]
type = "elastic"
url = "{es.url}"
token_source = "env:TEST_ES_KEY"

[export.sinks.file]
type = "jsonl"
path = "{out}"
""",
    )


def test_export_then_status_shows_zero_lag(
    tmp_path: Path,
    hec_server: HecServer,
    elastic_server: ElasticServer,
    monkeypatch: pytest.MonkeyPatch,
    run_cli: RunCli,
) -> None:
    monkeypatch.setenv("TEST_HEC_TOKEN", hec_server.token)
    monkeypatch.setenv("TEST_ES_KEY", elastic_server.token)
    config(tmp_path, hec_server, elastic_server, tmp_path / "out.jsonl")
    make_store(tmp_path / "audit.db", 30).close()

    before = run_cli("logs", "export", "status", "--format", "json")
    assert before.exit_code == 0, before.output
    rows = {row["sink"]: row for row in json.loads(before.stdout)}
    assert rows["splunk"]["lag_events"] == 30 and rows["splunk"]["lag_s"] > 0

    result = run_cli("logs", "export", "--all")
    assert result.exit_code == 0, result.output
    assert "splunk: shipped 30 events in 3 batches, cursor 30 of 30" in result.stderr
    assert len(hec_server.events) == 30 and len(elastic_server.docs) == 30
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 30

    after = {r["sink"]: r for r in json.loads(run_cli("logs", "export", "status").stdout)}
    assert all(row["lag_events"] == 0 and row["cursor"] == 30 for row in after.values())
    assert after["es"]["shipped"] == 30


def test_export_since_moves_the_cursor(
    tmp_path: Path,
    hec_server: HecServer,
    elastic_server: ElasticServer,
    monkeypatch: pytest.MonkeyPatch,
    run_cli: RunCli,
) -> None:
    monkeypatch.setenv("TEST_HEC_TOKEN", hec_server.token)
    config(tmp_path, hec_server, elastic_server, tmp_path / "out.jsonl")
    store = make_store(tmp_path / "audit.db", 20)
    since = store.get(15).event.time_ns  # type: ignore[union-attr]
    store.close()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(since // 10**9))
    micros = (since // 1000) % 1_000_000
    result = run_cli("logs", "export", "--sink", "splunk", "--since", f"{stamp}.{micros:06d}")
    assert result.exit_code == 0, result.output
    assert [e["event"]["metadata"]["sequence"] for e in hec_server.events] == list(range(15, 21))


def test_export_unknown_sink_and_failed_sink_exit_codes(
    tmp_path: Path,
    hec_server: HecServer,
    elastic_server: ElasticServer,
    monkeypatch: pytest.MonkeyPatch,
    run_cli: RunCli,
) -> None:
    monkeypatch.setenv("TEST_HEC_TOKEN", hec_server.token)
    monkeypatch.setenv("TEST_ES_KEY", "not-the-key")
    config(tmp_path, hec_server, elastic_server, tmp_path / "out.jsonl")
    make_store(tmp_path / "audit.db", 5).close()
    unknown = run_cli("logs", "export", "--sink", "nope")
    assert unknown.exit_code == 2 and "no sink named 'nope'" in unknown.stderr
    failed = run_cli("logs", "export", "--sink", "es")
    assert failed.exit_code == 3 and "HTTP 401" in failed.stderr
    partial = run_cli("logs", "export", "--sink", "es", "--sink", "splunk")
    assert partial.exit_code == 4
    assert "not-the-key" not in failed.output + partial.output


def test_export_that_dead_letters_exits_partial(
    tmp_path: Path,
    hec_server: HecServer,
    elastic_server: ElasticServer,
    monkeypatch: pytest.MonkeyPatch,
    run_cli: RunCli,
) -> None:
    # Exit 0 after dead-lettering hid the issue-14 incident from every monitor.
    monkeypatch.setenv("TEST_HEC_TOKEN", hec_server.token)
    config(tmp_path, hec_server, elastic_server, tmp_path / "out.jsonl")
    make_store(tmp_path / "audit.db", 5).close()
    hec_server.invalid_event = 2
    result = run_cli("logs", "export", "--sink", "splunk")
    assert result.exit_code == 4, result.output
    assert "1 rejected (see splunk.deadletter.jsonl)" in result.stderr
    assert len(hec_server.events) == 4


_CHILD = (
    "import sys\n"
    "from claudesec.cli import logs, logs_export\n"
    "logs_export.register(logs.app)\n"
    "from claudesec.cli.main import invoke\n"
    "sys.exit(invoke(sys.argv[1:]))\n"
)


def _spawn(*args: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_exporter_killed_mid_batch_loses_nothing_and_duplicates_nothing(
    tmp_path: Path,
    hec_server: HecServer,
    elastic_server: ElasticServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEST_HEC_TOKEN", hec_server.token)
    monkeypatch.setenv("TEST_ES_KEY", elastic_server.token)
    out = tmp_path / "out.jsonl"
    config(tmp_path, hec_server, elastic_server, out)
    n = 300
    store = make_store(tmp_path / "audit.db", n)
    store_id = store.store_id().hex()  # type: ignore[union-attr]
    store.close()
    elastic_server.delay_s = 0.01  # slow enough that a kill lands inside a request

    def shipped(sink: str) -> int:
        if sink == "es":
            return len(elastic_server.docs)
        return out.stat().st_size if out.exists() else 0

    for sink in ("es", "file"):
        # One event per batch for the file: each batch is an fsync, slow enough to kill into.
        monkeypatch.setenv("CLAUDESEC_EXPORT_BATCH_SIZE", "10" if sink == "es" else "1")
        kills = 0
        for extra in (0.0, 0.05, 0.1):
            child = _spawn("logs", "export", "--sink", sink)
            before = shipped(sink)
            deadline = time.monotonic() + 20
            while shipped(sink) == before and child.poll() is None:
                assert time.monotonic() < deadline
                time.sleep(0.002)
            time.sleep(extra)
            if child.poll() is None:
                child.send_signal(signal.SIGKILL)
                kills += 1
            child.wait(timeout=30)
        final = _spawn("logs", "export", "--sink", sink)
        _, err = final.communicate(timeout=60)
        assert final.returncode == 0, err.decode()
        assert kills >= 1

    assert set(elastic_server.docs) == {
        ("claude-logs-2026.05.28", f"{store_id}-{seq}") for seq in range(1, n + 1)
    }
    seqs = [json.loads(line)["metadata"]["sequence"] for line in out.read_text().splitlines()]
    assert seqs == list(range(1, n + 1))


def test_follow_ships_new_events_and_stops_on_sigterm(
    tmp_path: Path,
    hec_server: HecServer,
    elastic_server: ElasticServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEST_HEC_TOKEN", hec_server.token)
    config(tmp_path, hec_server, elastic_server, tmp_path / "out.jsonl")
    Path.cwd().joinpath("claudesec.toml").write_text(
        Path.cwd().joinpath("claudesec.toml").read_text() + "\n", encoding="utf-8"
    )
    monkeypatch.setenv("CLAUDESEC_EXPORT_POLL_S", "0.05")
    store = make_store(tmp_path / "audit.db", 5)
    child = _spawn("logs", "export", "--sink", "splunk", "--follow")
    try:
        deadline = time.monotonic() + 20
        while len(hec_server.events) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        store.append(event(99))
        while len(hec_server.events) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(hec_server.events) == 6
    finally:
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=20)
        store.close()
    assert child.returncode == 0, err.decode()
