"""kill -9 the proxy under load: every call a client got an answer for has a record, and the
calls cut off are listed as incomplete (not as tampering): counted from the dead proxy's
intent journal at once, admission records once the next writer imported it.

Real parts throughout: `claudesec proxy` as a subprocess, the anthropic SDK in several
threads, the emulator upstream, the SQLite store read back by `logs query` and `logs verify`.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import threading
from pathlib import Path
from typing import Any

from claudesec.audit.store import AuditStore
from claudesec.emulator import Emulator
from tests.fixtures.cli import REPO_ROOT, RunCli, spawn_proxy
from tests.fixtures.emulator import API_VERSION, MODEL
from tests.guard.test_pipeline import records

MESSAGE = {"model": MODEL, "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}
LOADERS = 6
ANSWERED_BEFORE_KILL = 150


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "claudesec.toml"
    path.write_text(
        f"""
[policy.roles.dev]
models = ["claude-sonnet-*"]
max_tokens = 1024

[audit]
sample_rates = {{}}
store_path = "{tmp_path / "audit.db"}"

[proxy]
token_store = "{tmp_path / "tokens.json"}"
""",
        encoding="utf-8",
    )
    return path


def test_kill_9_under_load_loses_no_answered_call(
    emulator: Emulator, tmp_path: Path, run_cli: RunCli
) -> None:
    import anthropic

    from claudesec.config import load_config
    from claudesec.proxy.service import create_token

    config_file = _config(tmp_path)
    upstream = emulator.state.add_key("api")
    # Streams crawl (plain calls are not delayed): the held stream is still open at the kill.
    emulator.state.configure(stream_event_delay_ms=5_000)
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(REPO_ROOT),
        ANTHROPIC_API_KEY=upstream.secret,
        CLAUDESEC_CONFIG=str(config_file),
    )
    config = load_config(config_file).config
    token = create_token(config, user="alice", role="dev", expires="1h").secret
    process, port, line = spawn_proxy(emulator.base_url, env)
    answered: list[str] = []  # x-claudesec-request-id of every call a client got an answer to
    lock = threading.Condition()
    stop = threading.Event()
    held: dict[str, Any] = {}

    def load() -> None:
        client = anthropic.Anthropic(
            api_key=token, base_url=f"http://127.0.0.1:{port}", max_retries=0
        )
        with client:
            while not stop.is_set():
                try:
                    raw = client.messages.with_raw_response.create(**MESSAGE)
                except anthropic.APIConnectionError:
                    return  # the proxy is gone
                raw.parse()  # the answer, read whole: this call was answered
                with lock:
                    answered.append(raw.headers["x-claudesec-request-id"])
                    lock.notify_all()

    def hold_a_stream() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.request(
            "POST",
            "/v1/messages",
            body=json.dumps({**MESSAGE, "stream": True}),
            headers={"x-api-key": token, "anthropic-version": API_VERSION},
        )
        response = connection.getresponse()
        held["id"] = response.getheader("x-claudesec-request-id")
        held["first"] = response.readline()  # message_start: the call went upstream
        with lock:
            lock.notify_all()
        with contextlib.suppress(http.client.HTTPException, OSError):
            response.read()
        connection.close()

    threads = [threading.Thread(target=load) for _ in range(LOADERS)]
    threads.append(threading.Thread(target=hold_a_stream))
    try:
        assert "claudesec proxy on" in line, line
        for thread in threads:
            thread.start()
        with lock:
            assert lock.wait_for(
                lambda: len(answered) >= ANSWERED_BEFORE_KILL and "first" in held, timeout=120
            ), (len(answered), held)
        process.kill()  # SIGKILL: no shutdown, no flush
        process.wait(timeout=30)
    finally:
        stop.set()
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        for thread in threads:
            thread.join(timeout=60)

    assert held["first"].startswith(b"event: message_start")
    config_args = ("-c", str(config_file))
    # Before anything imports the dead proxy's intent journal, read-only tools count what it
    # holds: the open stream at least, admitted and never recorded.
    verified = run_cli(*config_args, "logs", "verify", "--format", "json")
    assert verified.exit_code == 0, verified.output
    before_import = json.loads(verified.stdout)["incomplete_calls"]
    assert before_import["journaled"] >= 1
    # The next writer (here `logs checkpoint`) imports it: admissions no call completes.
    assert run_cli(*config_args, "logs", "checkpoint").exit_code == 0
    with AuditStore.open(tmp_path / "audit.db", readonly=True) as store:
        everything = records(store, admissions=True)  # also checks each call -> its admission
    recorded = {e.extra["claudesec_request_id"]: e for e in everything if e.type != "checkpoint"}
    missing = [rid for rid in answered if rid not in recorded]
    assert not missing, f"{len(missing)} answered calls have no record: {missing[:5]}"
    # Every answered call: one record, a call or (cut off before its record) an admission.
    kinds = {recorded[rid].type for rid in answered}
    assert kinds <= {"call", "admission"}, kinds
    assert recorded[held["id"]].type == "admission"
    assert len(recorded) == len([e for e in everything if e.type in ("call", "admission")])

    # The calls cut off by the kill are listed as incomplete, the held stream among them...
    listed = run_cli(*config_args, "logs", "query", "--incomplete", "--format", "json")
    assert listed.exit_code == 0, listed.output
    incomplete = {row["claudesec_request_id"] for row in json.loads(listed.stdout)}
    assert held["id"] in incomplete
    assert incomplete == {rid for rid, e in recorded.items() if e.type == "admission"}
    assert len(incomplete) == before_import["count"]
    # ...and verify says so without calling it tampering.
    verified = run_cli(*config_args, "logs", "verify", "--format", "json")
    assert verified.exit_code == 0, verified.output
    report = json.loads(verified.stdout)
    assert report["ok"] is True
    assert report["incomplete_calls"]["count"] == len(incomplete)
    assert report["incomplete_calls"]["journaled"] == 0
    text = run_cli(*config_args, "logs", "verify")
    assert text.exit_code == 0 and "admitted with no outcome recorded" in text.output
