"""docs/proxy.md's "Claude Code in five minutes", run as written: its claudesec.toml, then its
shell steps with bash, Claude Code from npm and the emulator standing in for the API."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
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


def test_the_five_minute_session_works_and_is_audited(
    npm_clients: NpmClients,
    emulator: Emulator,
    sentinel: Sentinel,
    tmp_path: Path,
    claudesec_home: Path,
) -> None:
    (tmp_path / "claudesec.toml").write_text(marked("claude-code-config"), encoding="utf-8")
    port = free_port()
    steps = marked("claude-code-session").replace("127.0.0.1:8788", f"127.0.0.1:{port}")
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
    done = subprocess.run(
        ["bash", "-e", "-c", steps],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = next(json.loads(line) for line in done.stdout.splitlines() if line.startswith('{"'))
    assert result["is_error"] is False and result["result"] == "Emulated reply to: say hello"
    assert "alice" in done.stdout  # logs query printed the session's records
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
