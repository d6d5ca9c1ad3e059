"""`claudesec drill run` end to end: every offline defence proven, in time, leaving nothing
behind, with reports CI systems can read."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from claudesec.drill.catalogue import DRILLS, select
from claudesec.drill.model import DrillResult, RunReport, Status
from claudesec.drill.reports import get_format
from claudesec.drill.runner import RUN_PREFIX, run_drills
from tests.fixtures.cli import REPO_ROOT, RunCli, interruptible

OFFLINE = [d.name for d in DRILLS if "offline" in d.tags]
LIVE = [d.name for d in DRILLS if "live" in d.tags]


def _socket_fds() -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:
            continue
    return count


def _children() -> list[int]:
    me = str(os.getpid())
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me:
            found.append(int(pid))
    return found


def test_offline_run_blocks_every_drill_and_writes_junit_and_json(tmp_path: Path) -> None:
    """The README's first command, in a subprocess as CI runs it."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = dict(os.environ, TMPDIR=str(temp))
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "claudesec",
            "drill",
            "run",
            "--junit",
            "out.xml",
            "--json",
            "out.json",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in OFFLINE:
        assert any(line.startswith(name) and "blocked" in line for line in proc.stdout.splitlines())
    for name in LIVE:
        assert any(line.startswith(name) and "skipped" in line for line in proc.stdout.splitlines())
    assert list(temp.iterdir()) == [], "a drill left files behind"
    data = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert data["exit_code"] == 0
    assert data["summary"]["blocked"] == len(OFFLINE)
    tree = ET.parse(tmp_path / "out.xml")  # noqa: S314 - our own output
    suites = tree.getroot()
    assert suites.tag == "testsuites"
    suite = suites.find("testsuite")
    assert suite is not None
    for node in (suites, suite):
        assert node.get("tests") == str(len(DRILLS))
        assert node.get("failures") == "0"
        assert node.get("errors") == "0"
        assert node.get("skipped") == str(len(LIVE))
        assert float(node.get("time", "x")) > 0
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [d.name for d in select()]
    for case in cases:
        assert case.get("classname", "").startswith("claudesec.drill.")
        assert float(case.get("time", "x")) >= 0
        skipped = case.find("skipped")
        if case.get("name") in LIVE:
            assert skipped is not None and skipped.get("message")
        else:
            assert skipped is None and case.find("failure") is None


def test_junit_failure_carries_evidence_and_fix() -> None:
    failed = DrillResult(
        name="scan-history",
        title="t",
        tags=("offline",),
        status=Status.FAILED,
        time_to_block_ms=None,
        duration_ms=12.0,
        message="the history scan missed a key",
        evidence=("expected anthropic-admin-key in commit abc",),
        fix="Run `claudesec scan --history` in CI.",
    )
    errored = DrillResult("x", "t", ("offline",), Status.ERROR, None, 1.0, "moto would not start")
    report = RunReport(results=(failed, errored), wall_s=1.5)
    root = ET.fromstring(get_format("junit").render(report))  # noqa: S314 - our own output
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("2", "1", "1")
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None
    assert failure.get("message") == "the history scan missed a key"
    assert "evidence: expected anthropic-admin-key" in (failure.text or "")
    assert "fix: Run `claudesec scan --history`" in (failure.text or "")
    assert root.find("testsuite/testcase/error") is not None
    assert report.exit_code == 1
    assert RunReport(results=(errored,), wall_s=1).exit_code == 3
    text = get_format("text").render(report)
    assert "scan-history" in text and "failed" in text and "fix:" in text


def test_drills_leave_no_thread_socket_process_or_file(tmp_path: Path, home: Path) -> None:
    before_threads = {t.ident for t in threading.enumerate()}
    before_sockets = _socket_fds()
    report = run_drills(select((), ("offline",)), temp_root=str(tmp_path))
    assert report.exit_code == 0, [(r.name, r.message) for r in report.results if not r.ok]
    # Threads a drill stopped may still be unwinding: wait for each to end, then none may remain.
    for thread in threading.enumerate():
        if thread.ident not in before_threads:
            thread.join(timeout=60)
    leftover = [t.name for t in threading.enumerate() if t.ident not in before_threads]
    assert leftover == []
    assert _socket_fds() <= before_sockets
    assert _children() == []
    assert list(tmp_path.iterdir()) == []
    # Nothing written to the user's claudesec home (keys, stores, tokens).
    assert not (home / ".claudesec").exists() or list((home / ".claudesec").iterdir()) == []


def test_sigterm_cleans_up(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = dict(os.environ, TMPDIR=str(temp))
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        [sys.executable, "-m", "claudesec", "drill", "run", "rotation-crash-resume", "-j", "1"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(temp.glob(f"{RUN_PREFIX}*/*")):
        time.sleep(0.05)
    time.sleep(1.0)  # mid-drill: servers up, crash points running
    proc.terminate()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "cleaned up" in err
    assert list(temp.iterdir()) == []


def test_ctrl_c_still_writes_the_reports_of_the_drills_that_finished(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = dict(os.environ, TMPDIR=str(temp))
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    # One at a time, in catalogue order: scan-dotenv, then the slow rotation drill, then one
    # that never starts.
    names = ("scan-dotenv", "rotation-crash-resume", "policy-forbidden-model")
    proc = subprocess.Popen(
        interruptible("drill", "run", *names, "-j", "1", "--junit", "out.xml", "--json", "o.json"),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # The rotation drill's own directory exists once scan-dotenv has finished.
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not any(temp.glob(f"{RUN_PREFIX}*/rotation-*")):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    data = json.loads((tmp_path / "o.json").read_text(encoding="utf-8"))
    assert data["interrupted"] is True
    by_name = {d["name"]: d for d in data["drills"]}
    assert by_name["scan-dotenv"]["status"] == "blocked"
    assert by_name["policy-forbidden-model"]["status"] == "skipped"
    assert "not run" in by_name["policy-forbidden-model"]["message"]
    junit = (tmp_path / "out.xml").read_text(encoding="utf-8")
    assert all(name in junit for name in names)
    assert list(temp.iterdir()) == []


def test_list_and_unknown_names(run_cli: RunCli) -> None:
    listed = run_cli("drill", "list")
    assert listed.exit_code == 0
    for drill in DRILLS:
        assert drill.name in listed.stdout
    assert len(OFFLINE) >= 12
    live = run_cli("drill", "list", "--tag", "live")
    assert set(line.split("\t")[0] for line in live.stdout.splitlines()[1:]) == set(LIVE)
    unknown = run_cli("drill", "run", "scan-histroy")
    assert unknown.exit_code == 2
    assert "scan-history" in unknown.stderr


def test_live_drills_without_credentials_are_skipped_with_the_reason(run_cli: RunCli) -> None:
    result = run_cli("drill", "run", "--tag", "live")
    assert result.exit_code == 0
    assert result.stdout.count("skipped") == len(LIVE)
    assert "ANTHROPIC_ADMIN_KEY is not set" in result.stdout


@pytest.mark.parametrize("name", ["scan-url"])
def test_single_drill_by_name(run_cli: RunCli, name: str) -> None:
    result = run_cli("drill", "run", name)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(name)


def test_help_does_not_import_heavy_modules() -> None:
    code = (
        "import sys; from claudesec.cli.main import invoke; invoke(['drill', '--help']); "
        "print(sorted(m for m in ('boto3','anthropic','keyring','moto','aiohttp') "
        "if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stdout + proc.stderr


def test_rotation_drill_leaves_no_secret_behind(tmp_path: Path) -> None:
    import boto3

    report = run_drills(select(("rotation-crash-resume",)), temp_root=str(tmp_path))
    assert report.exit_code == 0, report.results[0].message
    # moto keeps state per process: read it through a throwaway server on the same backend.
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        client = boto3.client(
            "secretsmanager", region_name="us-east-1", endpoint_url=f"http://{host}:{port}"
        )
        names = [s["Name"] for s in client.list_secrets()["SecretList"]]
    finally:
        server.stop()
    assert not [n for n in names if n.startswith("claudesec-drill-")]


def test_ctrl_c_on_a_parallel_run_abandons_stuck_drills_and_still_reports(tmp_path: Path) -> None:
    """Drills in the middle of a long step are not waited for: their children are killed, the
    reports are written, nothing is left in the temporary directory."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = dict(os.environ, TMPDIR=str(temp))
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    names = (
        "rotation-crash-resume",
        "scan-precommit-hook",
        "scan-history",
        "policy-forbidden-model",
    )
    proc = subprocess.Popen(
        interruptible("drill", "run", *names, "-j", "4", "--json", "o.json", "--junit", "o.xml"),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not any(temp.glob(f"{RUN_PREFIX}*/*")):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    data = json.loads((tmp_path / "o.json").read_text(encoding="utf-8"))
    assert data["interrupted"] is True
    assert {d["name"] for d in data["drills"]} == set(names)
    assert set(data["abandoned"]) <= set(names)
    assert all(name in (tmp_path / "o.xml").read_text(encoding="utf-8") for name in names)
    assert list(temp.iterdir()) == []
