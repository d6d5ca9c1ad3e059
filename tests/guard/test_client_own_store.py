"""AuditedAnthropic with the store its configuration names (no ``store=``): the admission is
in the client's intent journal before anything is sent, the call's record is queued and
committed by the writer thread, and nothing answered is ever unrecorded: not when the script
never closes its client, not when the process is killed mid-call or right after an answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

from claudesec.audit.intents import intents_dir
from claudesec.audit.query import incomplete_calls
from claudesec.audit.store import AuditStore
from claudesec.audit.verify import verify_store
from claudesec.emulator import Emulator, IssuedKey
from tests.fixtures.cli import RunCli
from tests.fixtures.emulator import MODEL
from tests.guard.test_pipeline import audit_config, open_store, records

if TYPE_CHECKING:
    from claudesec import AuditedAnthropic

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


def _journal_lines(store_path: Path) -> list[dict[str, object]]:
    lines: list[dict[str, object]] = []
    for journal in sorted(intents_dir(store_path).glob("*.jsonl")):
        lines += [json.loads(line) for line in journal.read_text().splitlines() if line]
    return lines


def _own_store_client(
    tmp_path: Path, emulator: Emulator, key: IssuedKey, **kwargs: Any
) -> AuditedAnthropic:
    """A client with the store its configuration names (``tmp_path/audit.db``)."""
    from claudesec import AuditedAnthropic

    return AuditedAnthropic(
        user="alice",
        api_key=key.secret,
        base_url=emulator.base_url,
        max_retries=0,
        claudesec_config=audit_config(store_path=str(tmp_path / "audit.db"), sample_rates={}),
        **kwargs,
    )


def test_the_admission_is_journaled_before_the_first_byte_goes_upstream(
    emulator: Emulator, emulator_api_key: IssuedKey, tmp_path: Path
) -> None:
    import httpx2 as httpx  # the SDK's HTTP client

    from claudesec.audit.writer import BackgroundWriter

    store_path = tmp_path / "audit.db"
    seen_at_send: list[list[dict[str, object]]] = []

    class Watching(httpx.HTTPTransport):
        # The moment the request leaves for the API: what is durable on disk by then.
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            seen_at_send.append(_journal_lines(store_path))
            return super().handle_request(request)

    client = _own_store_client(
        tmp_path, emulator, emulator_api_key, http_client=httpx.Client(transport=Watching())
    )
    writer = client.audit_pipeline.store
    assert isinstance(writer, BackgroundWriter) and writer.journal is not None
    for n in range(2):
        client.messages.create(
            model=MODEL, max_tokens=50, messages=[{"role": "user", "content": f"hi {n}"}]
        )
    # Each call's admission was on disk when its request went out, with its call id...
    assert [len(lines) >= 1 for lines in seen_at_send] == [True, True]
    sent_ids = [lines[-1]["call_id"] for lines in seen_at_send]
    assert all(lines[-1]["type"] == "admission" for lines in seen_at_send)
    assert len(set(sent_ids)) == 2
    # ...and its call record, once committed, carries the same id (no admission record: the
    # journal entry is done).
    assert writer.flush(timeout=30)
    with open_store(store_path, readonly=True) as store:
        events = records(store, admissions=True)
        assert [(e.type, e.extra["call_id"]) for e in events] == [
            ("call", sent_ids[0]),
            ("call", sent_ids[1]),
        ]
        assert incomplete_calls(store).count == 0
    client.close()
    assert not list(intents_dir(store_path).glob("*.jsonl"))  # a clean close leaves none
    with open_store(store_path, readonly=True) as store:
        assert [e.type for e in records(store, admissions=True)] == ["call", "call"]
        assert verify_store(store).ok


def test_a_journal_that_cannot_be_written_refuses_the_call_before_sending(
    emulator: Emulator, emulator_api_key: IssuedKey, tmp_path: Path
) -> None:
    from claudesec import CallDenied
    from claudesec.audit.intents import IntentJournal
    from claudesec.audit.writer import BackgroundWriter

    client = _own_store_client(tmp_path, emulator, emulator_api_key)
    writer = client.audit_pipeline.store
    assert isinstance(writer, BackgroundWriter) and writer.journal is not None
    # A full disk, for real: every write() to /dev/full fails with ENOSPC.
    writer.journal.close(None)
    writer.journal = IntentJournal(tmp_path / "full.jsonl", os.open("/dev/full", os.O_WRONLY))
    try:
        client.messages.create(
            model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        )
    except CallDenied as denied:
        assert denied.reason == "audit.unavailable", denied
    else:
        raise AssertionError("a call went ahead with its admission unrecorded")
    assert emulator.state.requests(path="/v1/messages") == []  # nothing went upstream
    client.close()
    with open_store(tmp_path / "audit.db", readonly=True) as store:
        assert [(e.type, e.reason) for e in records(store)] == [("denial", "audit.unavailable")]


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
        completed = [e for e in records(store, admissions=True) if e.type == "call"]
        pending = incomplete_calls(store)
        # Two answered calls: each is either a committed call record or an admission still
        # in the dead client's journal, counted as incomplete by read-only tools.
        assert len(completed) + pending.count == 2
        assert pending.journaled == pending.count
    # The next writer imports what the journal holds, once.
    AuditStore.open(tmp_path / "audit.db", checkpoint_every=0).close()
    AuditStore.open(tmp_path / "audit.db", checkpoint_every=0).close()
    with _store(tmp_path) as store:
        events = records(store, admissions=True)
        after = incomplete_calls(store)
        assert after.count == pending.count and after.journaled == 0
        assert len([e for e in events if e.type == "admission"]) == pending.count
        assert verify_store(store).ok
    assert not list(intents_dir(tmp_path / "audit.db").glob("*.jsonl"))
    summary = json.dumps({"completed": len(completed), "incomplete": pending.count})
    print(textwrap.shorten(summary, 80))


# A call cut off mid-stream: the first event has arrived (the request went upstream), then the
# process is killed before the stream ends.
MID_CALL_SCRIPT = """\
import sys, time
from claudesec import AuditedAnthropic

client = AuditedAnthropic(user="alice", base_url=sys.argv[1], max_retries=0)
ask = [{"role": "user", "content": "a"}]
client.messages.create(model=sys.argv[2], max_tokens=50, messages=ask)
with client.messages.stream(
    model=sys.argv[2], max_tokens=50, messages=[{"role": "user", "content": "b"}]
) as stream:
    for event in stream:
        print("streaming", flush=True)
        time.sleep(600)  # killed here by the test
"""


def test_a_kill_mid_call_leaves_the_call_listed_incomplete_never_missing(
    emulator: Emulator, emulator_api_key: IssuedKey, tmp_path: Path, run_cli: RunCli
) -> None:
    store_path = tmp_path / "audit.db"
    (tmp_path / "claudesec.toml").write_text(CONFIG.format(store=store_path))
    (tmp_path / "mid_call.py").write_text(MID_CALL_SCRIPT)
    env = {**os.environ, "ANTHROPIC_API_KEY": emulator_api_key.secret}
    env.pop("ANTHROPIC_AUTH_TOKEN", None)
    emulator.state.configure(stream_event_delay_ms=5_000)
    child = subprocess.Popen(
        [sys.executable, str(tmp_path / "mid_call.py"), emulator.base_url, MODEL],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "streaming\n"  # the stream's call went upstream
    finally:
        child.kill()
        child.wait(timeout=30)
    # Read-only tools see it before anything imports it...
    listed = run_cli("-c", str(tmp_path / "claudesec.toml"), "logs", "verify", "--format", "json")
    assert listed.exit_code == 0, listed.output
    report = json.loads(listed.stdout)
    assert report["incomplete_calls"]["journaled"] == 1
    assert report["incomplete_calls"]["count"] >= 1
    queried = run_cli("-c", str(tmp_path / "claudesec.toml"), "logs", "query", "--incomplete")
    assert queried.exit_code == 0 and "intent journal" in queried.output
    # ...and once a writer opened the store, it is an admission no call completes.
    checkpoint = run_cli("-c", str(tmp_path / "claudesec.toml"), "logs", "checkpoint")
    assert checkpoint.exit_code == 0, checkpoint.output
    with _store(tmp_path) as store:
        events = records(store, admissions=True)
        # The stream is an admission no call completes; the first call (answered) is either
        # its committed call record or, if the kill came before the writer's commit, an
        # admission too: two calls, each recorded one way or the other.
        incomplete = [e for e in events if e.type == "admission"]
        assert [e for e in incomplete if e.extra.get("stream")] != []
        assert len(events) == 2 and incomplete_calls(store).count == len(incomplete)
        assert verify_store(store).ok
    listed = run_cli(
        "-c", str(tmp_path / "claudesec.toml"), "logs", "query", "--incomplete", "--format", "json"
    )
    rows = json.loads(listed.stdout)
    assert [row["call_id"] for row in rows] == [e.extra["call_id"] for e in incomplete]


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
