"""`claudesec proxy` and `claudesec mesh` as users run them."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from claudesec.emulator import Emulator
from tests.fixtures.cli import REPO_ROOT, RunCli, spawn_proxy
from tests.fixtures.emulator import API_VERSION, MODEL

CONFIG = """
[policy.roles.dev]
models = ["claude-sonnet-*"]
max_tokens = 1024

[audit]
sample_rates = {}
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "claudesec.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def test_token_create_list_revoke(run_cli: RunCli, config_file: Path) -> None:
    created = run_cli(
        "-c",
        str(config_file),
        "proxy",
        "token",
        "create",
        "--user",
        "alice",
        "--role",
        "dev",
        "--expires",
        "7d",
        "--json",
    )
    assert created.exit_code == 0, created.output
    issued = json.loads(created.stdout)
    assert issued["token"].startswith("csp_") and issued["id"].startswith("pt_")
    listed = run_cli("-c", str(config_file), "proxy", "token", "list", "--json")
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [r["id"] for r in rows] == [issued["id"]]
    assert issued["token"] not in listed.stdout
    assert "sha256" not in rows[0]
    assert run_cli("-c", str(config_file), "proxy", "token", "revoke", issued["id"]).exit_code == 0
    listed = run_cli("-c", str(config_file), "proxy", "token", "list", "--all", "--json")
    assert json.loads(listed.stdout)["status"] == "revoked"


def test_token_for_an_undefined_role_is_refused(run_cli: RunCli, config_file: Path) -> None:
    result = run_cli(
        "-c", str(config_file), "proxy", "token", "create", "--user", "bob", "--role", "root"
    )
    assert result.exit_code == 2
    assert "not defined in policy.roles" in result.stderr


def test_env_prints_placeholders_never_a_token(run_cli: RunCli, config_file: Path) -> None:
    run_cli("-c", str(config_file), "proxy", "token", "create", "--user", "a", "--role", "dev")
    result = run_cli("-c", str(config_file), "proxy", "env")
    assert result.exit_code == 0
    assert "export ANTHROPIC_BASE_URL='http://127.0.0.1:8788'" in result.stdout
    assert "ANTHROPIC_API_KEY='<your claudesec proxy token>'" in result.stdout
    assert "csp_" not in result.stdout
    fish = run_cli(
        "-c",
        str(config_file),
        "proxy",
        "env",
        "--shell",
        "fish",
        "--url",
        "https://claude-gw.internal",
    )
    assert "set -gx ANTHROPIC_BASE_URL 'https://claude-gw.internal'" in fish.stdout


def test_mesh_render_and_lint(run_cli: RunCli, tmp_path: Path) -> None:
    out = tmp_path / "istio.yaml"
    rendered = run_cli("mesh", "render", "--kind", "istio", "-c", "apps", "-o", str(out))
    assert rendered.exit_code == 0, rendered.output
    assert run_cli("mesh", "lint", str(out)).exit_code == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\n"
        "metadata: {name: x, namespace: apps}\nspec: {hosts: [api.anthropic.com]}\n",
        encoding="utf-8",
    )
    linted = run_cli("mesh", "lint", str(bad))
    assert linted.exit_code == 1
    assert "CS-MESH-001" in linted.stdout
    assert run_cli("mesh", "render", "--kind", "consul").exit_code == 2


def test_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys\nfrom claudesec.cli.main import invoke\n"
        "try:\n    invoke(['proxy', '--help'])\nexcept SystemExit:\n    pass\n"
        "bad = [m for m in ('aiohttp', 'boto3', 'anthropic', 'keyring', 'yaml') "
        "if m in sys.modules]\nprint(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_serve_and_sigterm_finish_the_stream(
    config_file: Path, emulator: Emulator, tmp_path: Path
) -> None:
    upstream = emulator.state.add_key("api")
    release = emulator.state.hold_streams()  # the stream is open when SIGTERM comes
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(REPO_ROOT),
        ANTHROPIC_API_KEY=upstream.secret,
        CLAUDESEC_CONFIG=str(config_file),
    )
    from claudesec.config import load_config
    from claudesec.proxy.service import create_token

    token = create_token(
        load_config(config_file).config, user="alice", role="dev", expires="1h"
    ).secret
    process, port, line = spawn_proxy(emulator.base_url, env)
    try:
        assert "claudesec proxy on" in line, line
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request(
            "POST",
            "/v1/messages",
            body=json.dumps(
                {
                    "model": MODEL,
                    "max_tokens": 32,
                    "stream": True,
                    "messages": [{"role": "user", "content": "hi"}],
                }
            ),
            headers={"x-api-key": token, "anthropic-version": API_VERSION},
        )
        response = connection.getresponse()
        assert response.status == 200
        response.readline()
        process.send_signal(signal.SIGTERM)
        # Shutting down stops the listener first, then waits for the held stream.
        deadline = time.monotonic() + 10
        while _accepts(port) and time.monotonic() < deadline:
            time.sleep(0.01)  # polling a condition, with a deadline
        assert not _accepts(port)
        release.set()
        body: Any = response.read()
        assert b"message_stop" in body
        assert process.wait(timeout=15) == 0
    finally:
        release.set()
        if process.poll() is None:
            process.kill()
        time.sleep(0)


def _accepts(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError:
        return False
    return True
