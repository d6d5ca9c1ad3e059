"""docs/proxy.md's "Claude Code in five minutes", run as written: its claudesec.toml, then its
shell steps with bash, Claude Code from npm and the emulator standing in for the API."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from claudesec.audit.store import AuditStore
from claudesec.emulator import Emulator
from tests.clients.npm import NpmClients, Sentinel, loopback_env
from tests.test_docs import marked

pytestmark = pytest.mark.timeout(600)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def proxy_records(home: Path) -> str:
    """What the proxy recorded (decision, reason, status of each), for a failure's message."""
    if not (home / "audit.db").exists():
        return "(no audit store)"
    with AuditStore.open(home / "audit.db", readonly=True) as store:
        records = [store.get(seq) for seq in range(1, store.head().seq + 1)]
    return "\n".join(
        f"{r.event.type} {r.event.decision} {r.event.reason} {r.event.extra.get('http_status')}"
        f" {r.event.extra.get('error', '')}"
        for r in records
        if r is not None
    )


@dataclass(frozen=True)
class StepsRun:
    returncode: int
    printed: str
    complained: str
    left_running: bool  # a process of the steps' group outlived bash


def run_steps(steps: str, env: dict[str, str], cwd: Path) -> StepsRun:
    """The steps with ``bash -e``, output to files, bash leading its own process group: a step
    that fails must neither leave the proxy holding a pipe (the run would hang to its timeout)
    nor leave it running. Whatever is left is killed, after noting that it was."""
    out, err = cwd / "steps.out", cwd / "steps.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        steps_run = subprocess.Popen(
            ["bash", "-e", "-c", steps],
            env=env,
            cwd=cwd,
            stdout=stdout,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
        left_running = True
        try:
            returncode = steps_run.wait(timeout=300)
            try:
                os.killpg(steps_run.pid, 0)
            except ProcessLookupError:
                left_running = False
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(steps_run.pid, signal.SIGKILL)
            steps_run.wait()
    return StepsRun(returncode, out.read_text(), err.read_text(), left_running)


@dataclass(frozen=True)
class Session:
    """The documented claudesec.toml in place and the environment the steps run in."""

    env: dict[str, str]
    cwd: Path

    def run(self, port: int, replace: tuple[tuple[str, str], ...] = ()) -> StepsRun:
        """The documented steps with the proxy on ``port``, each ``(old, new)`` replaced."""
        steps = marked("claude-code-session").replace("127.0.0.1:8788", f"127.0.0.1:{port}")
        for old, new in replace:
            steps = steps.replace(old, new)
        return run_steps(steps, self.env, self.cwd)


@pytest.fixture
def session(
    npm_clients: NpmClients,
    emulator: Emulator,
    sentinel: Sentinel,
    tmp_path: Path,
    claudesec_home: Path,
) -> Session:
    (tmp_path / "claudesec.toml").write_text(marked("claude-code-config"), encoding="utf-8")
    bins = f"{npm_clients.claude.parent}{os.pathsep}{Path(sys.executable).parent}"
    env = loopback_env(
        tmp_path / "home",
        sentinel,
        PATH=f"{bins}{os.pathsep}{os.environ['PATH']}",
        CLAUDESEC_HOME=str(claudesec_home),
        # The emulator stands in for api.anthropic.com, with a key it issued as the real one.
        CLAUDESEC_ANTHROPIC_BASE_URL=emulator.base_url,
        REAL_ANTHROPIC_KEY=emulator.state.add_key("api", name="real").secret,
    )
    return Session(env, tmp_path)


def test_the_five_minute_session_works_and_is_audited(
    session: Session, emulator: Emulator, sentinel: Sentinel, claudesec_home: Path
) -> None:
    done = session.run(free_port())
    printed, complained, returncode = done.printed, done.complained, done.returncode
    assert returncode == 0, (
        f"stdout:\n{printed[-3000:]}\nstderr:\n{complained[-3000:]}\n"
        f"proxy records:\n{proxy_records(claudesec_home)}\n"
        f"upstream saw: {[(r.method, r.path, r.status) for r in emulator.state.requests()]}"
    )
    result = next(json.loads(line) for line in printed.splitlines() if line.startswith('{"'))
    assert result["is_error"] is False and result["result"] == "Emulated reply to: say hello"
    assert "alice" in printed  # logs query printed the session's records
    with AuditStore.open(claudesec_home / "audit.db", readonly=True) as store:
        records = [store.get(seq) for seq in range(1, store.head().seq + 1)]
    proxied = [r.event for r in records if r is not None and r.event.extra.get("via") == "proxy"]
    # Each call was written ahead (a line in the proxy's intent journal, whose id its call
    # record carries); a clean run leaves no admission without its call.
    calls = [e for e in proxied if e.type == "call"]
    assert [e for e in proxied if e.type == "admission"] == []
    assert all(e.extra.get("call_id") for e in calls)
    sent = emulator.state.requests(path="/v1/messages")
    assert len(calls) == len(sent) >= 1
    assert {(c.type, c.user, c.role) for c in calls} == {("call", "alice", "dev")}
    assert sentinel.seen == []
    assert not done.left_running


def test_a_failing_step_stops_the_proxy_with_it(session: Session) -> None:
    claude_fails = ('claude -p "say hello" --output-format json', "false  # claude failed")
    done = session.run(free_port(), replace=(claude_fails,))
    assert done.returncode != 0
    assert not done.left_running, done.complained  # the steps' trap stopped the proxy


def test_a_proxy_that_cannot_start_ends_the_steps_instead_of_waiting_forever(
    session: Session,
) -> None:
    with socket.socket() as taken:  # the port is someone else's: the proxy cannot listen
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        done = session.run(taken.getsockname()[1])
    assert done.returncode != 0
    assert "127.0.0.1" in done.complained and "Traceback" not in done.complained
    assert not done.left_running
