"""`claudesec keys ...` as a user runs it: config file, stdin, exit codes, no key in output."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from claudesec.emulator import IssuedKey
from claudesec.redact import redact
from tests.fixtures.cli import CliResult, RunCli
from tests.keys.conftest import Rig


def _no_key_leaked(result: CliResult, *keys: IssuedKey) -> None:
    for key in keys:
        assert key.secret not in result.output
        # Not even a long piece of the body.
        assert key.secret[20:60] not in result.output


def _set(config: Path, **values: object) -> None:
    text = config.read_text(encoding="utf-8")
    for name, value in values.items():
        text = text.replace("[keys]\n", f"[keys]\n{name} = {json.dumps(value)}\n", 1)
    config.write_text(text, encoding="utf-8")


@pytest.fixture
def loaded(rig: Rig, keys_config: Path, run_cli: RunCli) -> tuple[IssuedKey, list[IssuedKey]]:
    current = rig.new_key()
    result = run_cli("keys", "add", "app", input=current.secret + "\n")
    assert result.exit_code == 0, result.output
    spares = [rig.new_key(), rig.new_key()]
    result = run_cli("keys", "pool", "add", input="".join(s.secret + "\n" for s in spares))
    assert result.exit_code == 0, result.output
    _no_key_leaked(result, current, *spares)
    return current, spares


def test_add_pool_rotate_status_from_the_cli(
    rig: Rig, loaded: tuple[IssuedKey, list[IssuedKey]], run_cli: RunCli
) -> None:
    current, spares = loaded
    listing = run_cli("keys", "pool", "list", "--json")
    assert listing.exit_code == 0
    assert [s["key_id"] for s in json.loads(listing.stdout)["spares"]] == [s.id for s in spares]

    not_due = run_cli("keys", "rotate", "--all")
    assert not_due.exit_code == 0
    assert "app: not due" in not_due.stdout

    rotated = run_cli("keys", "rotate", "--all", "--force", "--json")
    assert rotated.exit_code == 0, rotated.output
    report = json.loads(rotated.stdout)
    assert report["keys"][0]["outcome"] == "rotated"
    assert report["keys"][0]["key_id"] == spares[0].id
    assert report["pool_size"] == 1
    _no_key_leaked(rotated, current, *spares)
    assert rig.current_key() == spares[0].secret


def test_key_on_argv_is_impossible_and_garbage_on_stdin_is_refused(
    keys_config: Path, run_cli: RunCli
) -> None:
    result = run_cli("keys", "add", "app", input="not a key\n")
    assert result.exit_code == 2
    assert "not an Anthropic API key" in result.stderr
    assert "not a key" not in result.output


def test_dry_run_changes_nothing(
    rig: Rig, loaded: tuple[IssuedKey, list[IssuedKey]], run_cli: RunCli
) -> None:
    current, _ = loaded
    before = rig.stages()
    result = run_cli("keys", "rotate", "app", "--dry-run", "--force")
    assert result.exit_code == 0
    assert "would rotate" in result.stdout
    assert rig.stages() == before
    assert rig.current_key() == current.secret


def test_empty_pool_for_an_overdue_key_exits_1(
    rig: Rig, keys_config: Path, run_cli: RunCli
) -> None:
    current = rig.new_key()
    assert run_cli("keys", "add", "app", input=current.secret).exit_code == 0
    _set(keys_config, max_age_days=0)
    result = run_cli("keys", "rotate", "--all")
    assert result.exit_code == 1, result.output
    assert "pool empty" in result.stdout


def test_some_rotated_some_failed_exits_4(rig: Rig, keys_config: Path, run_cli: RunCli) -> None:
    for name in ("a", "b"):
        assert run_cli("keys", "add", name, input=rig.new_key().secret).exit_code == 0
    spares = [rig.new_key(), rig.new_key()]
    assert run_cli("keys", "pool", "add", input="\n".join(s.secret for s in spares)).exit_code == 0
    rig.emulator.state.inject_fault(
        "server_error", path_prefix=f"/v1/organizations/api_keys/{spares[1].id}"
    )
    result = run_cli("keys", "rotate", "--all", "--force", "--json")
    assert result.exit_code == 4, result.output
    outcomes = {k["name"]: k["outcome"] for k in json.loads(result.stdout)["keys"]}
    assert outcomes == {"a": "rotated", "b": "failed"}
    # The failed one resumes on the next run.
    again = run_cli("keys", "rotate", "b", "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["keys"][0]["outcome"] == "rotated"


def test_throttled_admin_api_is_one_line_exit_3_and_resumable(
    rig: Rig, loaded: tuple[IssuedKey, list[IssuedKey]], run_cli: RunCli
) -> None:
    current, spares = loaded
    rig.emulator.state.inject_fault(
        "rate_limit", count=5, path_prefix="/v1/organizations/", retry_after=120
    )
    result = run_cli("keys", "rotate", "--all", "--force")
    assert result.exit_code == 3, result.output
    assert "429" in result.stdout and "retry after 120s" in result.stdout
    assert rig.current_key() == current.secret
    rig.emulator.state.clear_faults()
    result = run_cli("keys", "rotate", "--all")
    assert result.exit_code == 0, result.output
    assert rig.current_key() == spares[0].secret


def test_unreachable_secrets_manager_is_one_line_exit_3(
    loaded: tuple[IssuedKey, list[IssuedKey]], keys_config: Path, run_cli: RunCli
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    text = keys_config.read_text(encoding="utf-8")
    keys_config.write_text(
        "\n".join(
            f'aws_endpoint_url = "http://127.0.0.1:{port}"'
            if line.startswith("aws_endpoint_url")
            else line
            for line in text.splitlines()
        ),
        encoding="utf-8",
    )
    result = run_cli("keys", "rotate", "--all", "--force")
    assert result.exit_code == 3, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unreachable" in lines[0]


class _ExpiredToken(BaseHTTPRequestHandler):
    """Answers every AWS JSON-protocol call the way AWS does for expired credentials."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        body = json.dumps(
            {
                "__type": "ExpiredTokenException",
                "message": "The security token included in the request is expired",
            }
        ).encode()
        self.send_response(400)
        self.send_header("content-type", "application/x-amz-json-1.1")
        self.send_header("x-amzn-errortype", "ExpiredTokenException")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def expired_aws() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ExpiredToken)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_expired_aws_credentials_are_one_line_exit_3(
    keys_config: Path, expired_aws: str, run_cli: RunCli
) -> None:
    text = keys_config.read_text(encoding="utf-8")
    keys_config.write_text(
        "\n".join(
            f'aws_endpoint_url = "{expired_aws}"' if line.startswith("aws_endpoint_url") else line
            for line in text.splitlines()
        ),
        encoding="utf-8",
    )
    result = run_cli("keys", "rotate", "--all")
    assert result.exit_code == 3, result.output
    assert "ExpiredTokenException" in result.stderr
    assert "refresh the AWS credentials" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_revoke_then_rollback_from_the_cli_refuses_the_revoked_key(
    rig: Rig, loaded: tuple[IssuedKey, list[IssuedKey]], run_cli: RunCli
) -> None:
    current, spares = loaded
    result = run_cli("keys", "revoke", "app", "--yes")
    assert result.exit_code == 0, result.output
    assert rig.emulator.state.get_key(current.id).status == "inactive"
    assert redact(current.secret) in result.stdout
    _no_key_leaked(result, current, *spares)

    result = run_cli("keys", "rollback", "app")
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert current.id in line and redact(current.secret) in line and "revoked" in line
    assert rig.current_key() == spares[0].secret
    assert rig.emulator.state.get_key(current.id).status == "inactive"
    # The inventory says what happened to it, not "retiring" or its old stage label.
    remote = run_cli("keys", "remote", "--json")
    marks = {e["id"]: e["marking"] for e in json.loads(remote.stdout)}
    assert marks[current.id] == "revoked"


def test_rollback_from_the_cli_after_a_plain_rotation(
    rig: Rig, loaded: tuple[IssuedKey, list[IssuedKey]], run_cli: RunCli
) -> None:
    current, _ = loaded
    assert run_cli("keys", "rotate", "app", "--force").exit_code == 0
    result = run_cli("keys", "rollback", "app")
    assert result.exit_code == 0, result.output
    assert rig.current_key() == current.secret
    assert rig.emulator.state.get_key(current.id).status == "active"


def test_status_and_remote_mark_every_key(
    rig: Rig, loaded: tuple[IssuedKey, list[IssuedKey]], run_cli: RunCli
) -> None:
    current, spares = loaded
    stray = rig.new_key()
    assert run_cli("keys", "rotate", "app", "--force").exit_code == 0

    result = run_cli("keys", "status", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    (key,) = report["keys"]
    assert key["key_id"] == spares[0].id
    assert key["stages"] == {"AWSCURRENT": spares[0].id, "AWSPREVIOUS": current.id}
    assert key["anthropic_status"] == "active"
    assert report["pool_size"] == 1
    assert any("pool low" in w for w in report["warnings"])
    assert any(stray.id in w and "unmanaged" in w for w in report["warnings"])

    result = run_cli("keys", "remote", "--json")
    marks = {e["id"]: e["marking"] for e in json.loads(result.stdout)}
    assert marks == {
        spares[0].id: "managed",
        current.id: "managed",
        spares[1].id: "spare",
        stray.id: "unmanaged",
    }
    _no_key_leaked(result, current, stray, *spares)


def test_status_exits_1_when_a_key_is_overdue(
    loaded: tuple[IssuedKey, list[IssuedKey]], keys_config: Path, run_cli: RunCli
) -> None:
    _set(keys_config, max_age_days=0)
    result = run_cli("keys", "status")
    assert result.exit_code == 1
    assert "past its max age" in result.stderr


def test_audit_store_gets_every_step_and_no_key(
    loaded: tuple[IssuedKey, list[IssuedKey]], run_cli: RunCli, claudesec_home: Path
) -> None:
    import sqlite3

    current, spares = loaded
    assert run_cli("keys", "rotate", "app", "--force").exit_code == 0
    db = sqlite3.connect(claudesec_home / "audit.db")
    try:
        bodies = [row[0] for row in db.execute("SELECT body FROM events ORDER BY seq")]
    finally:
        db.close()
    steps = [json.loads(b).get("reason") for b in bodies]
    for step in ("add", "pool_add", "create_secret", "set_secret", "test_secret", "finish_secret"):
        assert step in steps
    text = "\n".join(bodies)
    for key in (current, *spares):
        assert key.secret not in text
