from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

from tests.fixtures.cli import REPO_ROOT, interruptible
from tests.fixtures.emulator import MODEL


def test_emulator_serve_answers_the_real_sdk_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    import anthropic

    keys_file = tmp_path / "keys.json"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        interruptible("emulator", "serve", "--port", "0", "--keys-file", str(keys_file)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        assert first.startswith("ANTHROPIC_BASE_URL=http://127.0.0.1:")
        base_url = first.split("=", 1)[1]
        assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
        keys = {k["kind"]: k for k in json.loads(keys_file.read_text(encoding="utf-8"))}
        client = anthropic.Anthropic(api_key=keys["api"]["key"], base_url=base_url, max_retries=0)
        reply = client.messages.create(
            model=MODEL, max_tokens=32, messages=[{"role": "user", "content": "hello"}]
        )
        assert reply.usage.input_tokens > 0
        bad = anthropic.Anthropic(api_key="not-a-key", base_url=base_url, max_retries=0)
        try:
            bad.models.list()
            raise AssertionError("an unknown key was accepted")
        except anthropic.AuthenticationError:
            pass
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert keys["api"]["key"] not in err
    assert keys["admin"]["key"] not in err
    assert "Traceback" not in err


def test_emulator_serve_on_a_busy_port_is_exit_3(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        proc = subprocess.run(
            [sys.executable, "-m", "claudesec", "emulator", "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
            check=False,
        )
    assert proc.returncode == 3
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr
