"""`org check --sink NAME`: the findings reach a real export sink as OCSF Compliance Findings
(a loopback Splunk HEC and a JSONL file), retried through transient failures, with stable ids;
a sink whose schema cannot hold them is refused by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from claudesec.org import samples
from claudesec.org.inventory_json import to_json
from tests.fixtures.cli import RunCli
from tests.fixtures.sinks import HecServer
from tests.org.test_cli import MESSY_TOML


@pytest.fixture
def messy_file(tmp_path: Path) -> Path:
    path = tmp_path / "messy.json"
    path.write_text(json.dumps(to_json(samples.messy())))
    return path


def _config(tmp_path: Path, sinks: str) -> Path:
    path = tmp_path / "claudesec.toml"
    path.write_text(MESSY_TOML + "\n" + sinks)
    return path


def test_findings_reach_splunk_as_compliance_findings_through_a_transient_failure(
    run_cli: RunCli,
    messy_file: Path,
    tmp_path: Path,
    hec_server: HecServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEST_HEC_TOKEN", hec_server.token)
    config = _config(
        tmp_path,
        f'[export.sinks.siem]\ntype = "splunk"\nurl = "{hec_server.url}"\n'
        'token_source = "env:TEST_HEC_TOKEN"\nindex = "posture"\n',
    )
    hec_server.fail(503)
    result = run_cli(
        "--config", str(config), "org", "check", "--inventory", str(messy_file),
        "--format", "ocsf", "--sink", "siem",
    )  # fmt: skip
    assert result.exit_code == 1, result.stderr  # the findings decide, as without --sink
    shipped = [e["event"] for e in hec_server.events]
    assert shipped and {e["class_uid"] for e in shipped} == {2003}
    # What reached the SIEM is exactly what `--format ocsf` prints, once each.
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    assert shipped == printed
    assert len({e["metadata"]["uid"] for e in shipped}) == len(shipped)
    assert f"sent {len(shipped)} OCSF event(s) to sink siem" in result.stderr
    assert len(hec_server.requests) > 1  # the 503 was retried


def test_findings_go_to_a_jsonl_sink_and_a_lake_sink_is_refused(
    run_cli: RunCli, messy_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "findings.jsonl"
    config = _config(
        tmp_path,
        f'[export.sinks.file]\ntype = "jsonl"\npath = "{out}"\n\n'
        '[export.sinks.lake]\ntype = "lake"\nbucket = "b"\naws_region = "us-east-1"\n'
        'lake_account = "123456789012"\n',
    )
    result = run_cli(
        "--config", str(config), "org", "check", "--inventory", str(messy_file), "--sink", "file"
    )
    assert result.exit_code == 1, result.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines and all(doc["class_uid"] == 2003 for doc in lines)
    refused = run_cli(
        "--config", str(config), "org", "check", "--inventory", str(messy_file), "--sink", "lake"
    )
    assert refused.exit_code == 2
    assert "cannot go to a lake sink" in refused.stderr and "Traceback" not in refused.stderr
