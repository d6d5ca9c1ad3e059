"""AuditedAnthropic with the store its configuration names (no ``store=``): the admission is
committed before anything is sent, the outcome is queued and shares the next call's commit,
and nothing answered is ever unrecorded: not when the script never closes its client, not
when the process is killed right after an answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from claudesec.audit.query import incomplete_calls
from claudesec.audit.store import AuditStore
from claudesec.audit.verify import verify_store
from claudesec.emulator import Emulator, IssuedKey
from tests.fixtures.emulator import MODEL
from tests.guard.test_pipeline import audit_config, open_store, records

CONFIG = """\
[audit]
store_path = "{store}"

[policy.users]
alice = "analyst"

[policy.roles.analyst]
models = ["claude-*"]
max_tokens = 1024
"""

# The script a user writes: a client from the configuration, calls, and (in the first case)
# no close(). The API key comes from the environment, as the SDK reads it.
SCRIPT = """\
import os, sys
from claudesec import AuditedAnthropic

client = AuditedAnthropic(user="alice", base_url=sys.argv[1], max_retries=0)
for n in range(int(sys.argv[2])):
    client.messages.create(
        model=sys.argv[3], max_tokens=50, messages=[{"role": "user", "content": f"hi {n}"}]
    )
    print("answered", n, flush=True)
if sys.argv[4] == "kill":
    import signal
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _run_script(
    tmp_path: Path, emulator: Emulator, key: IssuedKey, calls: int, end: str
) -> subprocess.CompletedProcess[str]:
    store = tmp_path / "audit.db"
    (tmp_path / "claudesec.toml").write_text(CONFIG.format(store=store))
    script = tmp_path / "user_script.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "ANTHROPIC_API_KEY": key.secret}
    env.pop("ANTHROPIC_AUTH_TOKEN", None)
    return subprocess.run(
        [sys.executable, str(script), emulator.base_url, str(calls), MODEL, end],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _store(tmp_path: Path) -> AuditStore:
    return AuditStore.open(tmp_path / "audit.db", readonly=True)


def test_an_outcome_is_committed_with_the_next_calls_admission(
    emulator: Emulator, emulator_api_key: IssuedKey, tmp_path: Path
) -> None:
    from claudesec import AuditedAnthropic
    from claudesec.audit.writer import BackgroundWriter

    config = audit_config(store_path=str(tmp_path / "audit.db"), sample_rates={})
    client = AuditedAnthropic(
        user="alice",
        api_key=emulator_api_key.secret,
        base_url=emulator.base_url,
        max_retries=0,
        claudesec_config=config,
    )
    assert isinstance(client.audit_pipeline.store, BackgroundWriter)
    for n in range(2):
        client.messages.create(
            model=MODEL, max_tokens=50, messages=[{"role": "user", "content": f"hi {n}"}]
        )
    with open_store(tmp_path / "audit.db", readonly=True) as store:
        seen = [(e.type, e.extra.get("admission_seq")) for e in records(store, admissions=True)]
    # Call 0 complete, and its record committed before call 1's admission: nothing sent for
    # call 1 before call 0's outcome was durable.
    assert seen[:3] == [("admission", None), ("call", 1), ("admission", None)]
    client.close()
    with open_store(tmp_path / "audit.db", readonly=True) as store:
        events = records(store, admissions=True)
        assert [e.type for e in events] == ["admission", "call", "admission", "call"]
        assert incomplete_calls(store).count == 0
        assert verify_store(store).ok


def test_a_script_that_never_closes_its_client_loses_no_outcome(
    emulator: Emulator, emulator_api_key: IssuedKey, tmp_path: Path
) -> None:
    done = _run_script(tmp_path, emulator, emulator_api_key, 3, "exit")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("answered") == 3
    with _store(tmp_path) as store:
        calls = [e for e in records(store) if e.type == "call"]
        assert [e.decision for e in calls] == ["allow"] * 3
        assert all(e.input_tokens > 0 for e in calls)
        assert incomplete_calls(store).count == 0


def test_a_kill_after_the_answer_leaves_the_call_recorded_complete_or_incomplete(
    emulator: Emulator, emulator_api_key: IssuedKey, tmp_path: Path
) -> None:
    done = _run_script(tmp_path, emulator, emulator_api_key, 2, "kill")
    assert done.returncode == -9, done.stderr
    assert done.stdout.count("answered") == 2
    with _store(tmp_path) as store:
        events = records(store, admissions=True)
        admitted = [e for e in events if e.type == "admission"]
        completed = [e for e in events if e.type == "call"]
        pending = incomplete_calls(store)
        # Two answered calls, two durable admissions; the first is complete (the second's
        # admission committed its outcome); whatever the kill cut off is listed incomplete.
        assert len(admitted) == 2
        assert len(completed) >= 1
        assert len(completed) + pending.count == 2
    summary = json.dumps({"completed": len(completed), "incomplete": pending.count})
    print(textwrap.shorten(summary, 80))


FORK_SCRIPT = """\
import os, sys
from claudesec import AuditedAnthropic, CallDenied

client = AuditedAnthropic(user="alice", base_url=sys.argv[1], max_retries=0)
ask = lambda: client.messages.create(
    model=sys.argv[2], max_tokens=50, messages=[{"role": "user", "content": "hi"}]
)
ask()
pid = os.fork()
if pid == 0:
    try:
        ask()
        print("child: answered", flush=True)
    except CallDenied as denied:
        print("child: refused", denied.reason, str(denied), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
ask()
print("parent: answered", flush=True)
"""


def test_a_client_inherited_across_fork_refuses_in_the_child_and_keeps_working_in_the_parent(
    emulator: Emulator, emulator_api_key: IssuedKey, tmp_path: Path
) -> None:
    (tmp_path / "claudesec.toml").write_text(CONFIG.format(store=tmp_path / "audit.db"))
    (tmp_path / "fork_script.py").write_text(FORK_SCRIPT)
    env = {**os.environ, "ANTHROPIC_API_KEY": emulator_api_key.secret}
    done = subprocess.run(
        [sys.executable, str(tmp_path / "fork_script.py"), emulator.base_url, MODEL],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("child: refused audit.unavailable"), lines
    assert "before a fork" in lines[0] and lines[1] == "parent: answered"
    with _store(tmp_path) as store:
        assert [e.type for e in records(store)] == ["call", "call"]
        assert incomplete_calls(store).count == 0
