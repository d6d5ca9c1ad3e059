"""What a run reports after an outage or a lost reply: the error that stopped it (not a later
failure to release its lock), when a step really applied, one line per error, and with
``--json`` exactly one JSON document per run, on success and on failure alike."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError

from tests.fixtures.cli import RunCli
from tests.keys.conftest import Rig


class Outage:
    """From the first call of ``op`` on ``secret`` on, AWS is unreachable."""

    def __init__(self, op: str, secret: str) -> None:
        self.op, self.secret = op, secret
        self.down = False

    def before(self, event_name: str, params: dict[str, Any], **_: Any) -> None:
        body = params.get("body", b"")
        about = json.loads(body).get("SecretId") if body else None
        if event_name.endswith("." + self.op) and about == self.secret:
            self.down = True
        if self.down:
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")


def _outage_client(rig: Rig, op: str, secret: str = "claudesec/app") -> Any:  # noqa: S107 - a name
    client = boto3.client(
        "secretsmanager",
        region_name="us-east-1",
        endpoint_url=rig.endpoint,
        config=Config(retries={"total_max_attempts": 1}),
    )
    client.meta.events.register("before-call.secrets-manager", Outage(op, secret).before)
    return client


def test_an_outage_mid_rotation_reports_the_step_that_failed_not_the_lock(rig: Rig) -> None:
    rig.managed("app")
    rig.spares(1)
    manager = rig.make_manager(client=_outage_client(rig, "PutSecretValue"))

    report = manager.rotate(["app"], force=True)  # a report, not an exception

    (result,) = report.results
    assert result.outcome == "failed"
    assert int(report.exit_code) == 3
    assert result.message.startswith("AWS Secrets Manager unreachable"), result.message
    assert "write claudesec/app" in result.message  # the step that failed
    assert "lock" in result.message and "expires" in result.message  # and the lock's fate


def test_an_outage_during_rollback_keeps_the_original_error(rig: Rig) -> None:
    from claudesec.errors import ClaudesecError

    rig.managed("app")
    rig.spares(1)
    rig.manager.rotate(["app"], force=True)
    manager = rig.make_manager(client=_outage_client(rig, "TagResource"))
    with pytest.raises(ClaudesecError) as caught:
        manager.rollback("app")
    assert "could not tag claudesec/app" in caught.value.user_message()


def test_a_run_that_finds_a_step_applied_by_an_earlier_run_says_when(rig: Rig) -> None:
    rig.managed("app")
    (spare,) = rig.spares(1)
    # createSecret applies, then setSecret fails: the pending version is left behind.
    rig.emulator.state.inject_fault(
        "server_error", path_prefix=f"/v1/organizations/api_keys/{spare.id}"
    )
    (first,) = rig.manager.rotate(["app"], force=True).results
    assert first.outcome == "failed"
    started = json.loads(
        rig.sm.get_secret_value(SecretId="claudesec/app", VersionStage="AWSPENDING")["SecretString"]
    )["created_at"]
    rig.clock.advance(hours=1)

    (result,) = rig.manager.rotate(["app"]).results

    assert result.outcome == "rotated", result
    assert f"resumed the rotation an earlier run started at {started}" in result.message
    assert rig.current_key() == spare.secret


def _point_aws_at(config: Path, url: str) -> None:
    text = config.read_text(encoding="utf-8")
    config.write_text(
        "\n".join(
            f'aws_endpoint_url = "{url}"' if line.startswith("aws_endpoint_url") else line
            for line in text.splitlines()
        ),
        encoding="utf-8",
    )


@pytest.mark.parametrize(
    "argv",
    [
        ("keys", "rotate", "--all", "--json"),
        ("keys", "status", "--json"),
        ("keys", "revoke", "app", "--yes", "--json"),
        ("keys", "rollback", "app", "--json"),
        ("keys", "pool", "list", "--json"),
    ],
)
def test_json_is_one_document_per_run_even_when_aws_is_unreachable(
    keys_config: Path, run_cli: RunCli, argv: tuple[str, ...]
) -> None:
    _point_aws_at(keys_config, "http://127.0.0.1:9")  # discard port: nothing listens
    jsonl = ""
    for _ in range(2):  # a cron line appending to a JSONL file, twice
        result = run_cli(*argv)
        assert result.exit_code == 3, result.output
        jsonl += result.stdout
        assert len(result.stderr.strip().splitlines()) == 1
    lines = jsonl.splitlines()
    assert len(lines) == 2
    for line in lines:
        doc = json.loads(line)
        assert doc["exit_code"] == 3
        assert "unreachable" in doc["error"]["message"]


def test_json_on_a_config_error_is_one_document_exit_2(keys_config: Path, run_cli: RunCli) -> None:
    keys_config.write_text(keys_config.read_text() + "\n[keys\nbroken", encoding="utf-8")
    result = run_cli("keys", "rotate", "--all", "--json")
    assert result.exit_code == 2, result.output
    (line,) = result.stdout.splitlines()
    assert json.loads(line)["exit_code"] == 2


def test_a_successful_json_run_is_one_line(rig: Rig, keys_config: Path, run_cli: RunCli) -> None:
    assert run_cli("keys", "add", "app", input=rig.new_key().secret).exit_code == 0
    result = run_cli("keys", "rotate", "--all", "--json")
    assert result.exit_code == 0, result.output
    (line,) = result.stdout.splitlines()
    assert json.loads(line)["keys"][0]["outcome"] == "not_due"


class _XmlGateway(BaseHTTPRequestHandler):
    """A gateway in front of the Admin API answering 502 with a multi-line XML body."""

    def _answer(self) -> None:
        body = (
            b'<?xml version="1.0"?>\n<Error>\n  <Code>BadGateway</Code>\n'
            b"  <Message>upstream\n  timed out</Message>\n</Error>\n"
        )
        self.send_response(502)
        self.send_header("content-type", "application/xml")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def xml_gateway() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _XmlGateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_multi_line_xml_error_body_becomes_one_line(
    rig: Rig, keys_config: Path, run_cli: RunCli, xml_gateway: str
) -> None:
    text = keys_config.read_text(encoding="utf-8")
    keys_config.write_text(
        text.replace(f'base_url = "{rig.emulator.base_url}"', f'base_url = "{xml_gateway}"'),
        encoding="utf-8",
    )
    result = run_cli("keys", "status")
    assert result.exit_code == 3, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "502" in line and "BadGateway" in line and "timed out" in line

    result = run_cli("keys", "status", "--json")
    (doc_line,) = result.stdout.splitlines()
    assert "\n" not in json.loads(doc_line)["error"]["message"]
