"""Report formats: text, JSON, SARIF 2.1.0 (schema-valid) and no secret in any output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from claudesec.detect.catalogue import DETECTORS
from tests.fixtures.cli import REPO_ROOT, RunCli
from tests.fixtures.git import GitRepo
from tests.fixtures.keys import KeyFactory

SCHEMA = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"


@pytest.fixture
def leaky(tmp_path: Path) -> tuple[Path, list[str]]:
    factory = KeyFactory(61)
    keys = [k.value for k in factory.every_kind()]
    key_id, secret = factory.aws_pair()
    url, password = factory.connection_url()
    root = tmp_path / "leaky"
    root.mkdir()
    for i, key in enumerate(keys):
        (root / f"file{i:02}.txt").write_text(f"value: {key}\n")
    (root / "aws.ini").write_text(
        f"aws_access_key_id = {key_id.value}\naws_secret_access_key = {secret.value}\n"
    )
    (root / "db.env").write_text(f"DATABASE_URL={url}\nDB_PASSWORD={factory.password().value}\n")
    return root, [*keys, key_id.value, secret.value, password.value]


def test_text_report_has_location_rule_hint_and_fix(
    leaky: tuple[Path, list[str]], run_cli: RunCli
) -> None:
    root, _ = leaky
    result = run_cli("scan", str(root))
    assert result.exit_code == 1
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"{root}/aws.ini:2:")
    assert "aws-credentials [critical] AWS access key pair" in first
    assert "    fix: " in result.stdout
    assert "claudesec:allow" in result.stdout
    assert "findings in" in result.stderr


def test_json_report_shape(leaky: tuple[Path, list[str]], run_cli: RunCli) -> None:
    root, keys = leaky
    document = json.loads(run_cli("scan", str(root), "-f", "json").stdout)
    expected = len(keys)  # the AWS pair is one finding; the generic password adds one
    assert document["summary"]["findings"] == len(document["findings"]) == expected
    finding = document["findings"][0]
    assert set(finding) >= {
        "rule_id",
        "kind",
        "severity",
        "path",
        "line",
        "column",
        "hint",
        "fingerprint",
        "fix",
        "commit",
        "verification",
    }
    assert len({f["fingerprint"] for f in document["findings"]}) == len(document["findings"])


def test_sarif_is_valid_against_the_official_schema(
    leaky: tuple[Path, list[str]], run_cli: RunCli, tmp_path: Path
) -> None:
    root, _ = leaky
    out = tmp_path / "report.sarif"
    result = run_cli("scan", str(root), "--format", "sarif", "--output", str(out))
    assert result.exit_code == 1 and result.stdout == ""
    document = json.loads(out.read_text())
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(document, schema, cls=jsonschema.Draft4Validator)
    run = document["runs"][0]
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == [d.id for d in DETECTORS]
    for item in run["results"]:
        assert item["partialFingerprints"]["claudesecFingerprint/v1"]
        rule = run["tool"]["driver"]["rules"][item["ruleIndex"]]
        assert rule["id"] == item["ruleId"]
        assert float(rule["properties"]["security-severity"]) > 0
        location = item["locations"][0]["physicalLocation"]
        assert not location["artifactLocation"]["uri"].startswith("/")
        assert location["region"]["startLine"] >= 1


def test_sarif_of_a_clean_scan_and_of_history_is_valid(git_repo: GitRepo, run_cli: RunCli) -> None:
    schema = json.loads(SCHEMA.read_text())
    git_repo.commit_file("a.txt", "clean\n")
    clean = run_cli("scan", str(git_repo.path), "-f", "sarif")
    jsonschema.validate(json.loads(clean.stdout), schema, cls=jsonschema.Draft4Validator)
    git_repo.commit_file("b.txt", KeyFactory(62).anthropic_api().value + "\n")
    history = run_cli("scan", "--history", str(git_repo.path), "-f", "sarif")
    document = json.loads(history.stdout)
    jsonschema.validate(document, schema, cls=jsonschema.Draft4Validator)
    assert document["runs"][0]["results"][0]["properties"]["commit"]


def test_no_output_anywhere_contains_a_planted_secret(
    leaky: tuple[Path, list[str]], tmp_path: Path
) -> None:
    root, secrets = leaky
    git = tmp_path / "repo"
    git.mkdir()
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT)

    def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "claudesec", *args],
            capture_output=True,
            text=True,
            cwd=cwd,
            env=env,
            check=False,
        )

    subprocess.run(["git", "init", "-q"], cwd=git, check=True)
    for path in root.iterdir():
        (git / path.name).write_text(path.read_text())
    subprocess.run(["git", "add", "."], cwd=git, check=True)
    outputs: list[str] = []
    files = [
        tmp_path / "r.json",
        tmp_path / "r.sarif",
        tmp_path / "r.txt",
        tmp_path / "b.json",
        tmp_path / "r.jsonl",
    ]
    for args in (
        ("scan", str(root)),
        ("scan", str(root), "-f", "jsonl", "-o", str(files[4])),
        ("scan", str(root), "-f", "json", "-o", str(files[0])),
        ("scan", str(root), "-f", "sarif", "-o", str(files[1])),
        ("scan", str(root), "-o", str(files[2])),
        ("scan", str(root), "--write-baseline", str(files[3])),
        ("scan", "--staged"),
    ):
        proc = run(*args, cwd=git)
        assert proc.returncode in (0, 1), proc.stderr
        outputs += [proc.stdout, proc.stderr]
    hook = subprocess.run(
        [sys.executable, "-m", "claudesec.scan", "--staged"],
        cwd=git,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert hook.returncode == 1
    outputs += [hook.stdout, hook.stderr]
    outputs += [f.read_text() for f in files]
    blob = "\n".join(outputs)
    assert "commit blocked" in blob
    for secret in secrets:
        assert secret not in blob, f"a planted secret of length {len(secret)} leaked"


def test_jsonl_streams_one_finding_per_line_then_a_summary(
    leaky: tuple[Path, list[str]], run_cli: RunCli
) -> None:
    root, _ = leaky
    result = run_cli("scan", str(root), "-f", "jsonl")
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    *findings, summary = lines
    assert {f["type"] for f in findings} == {"finding"} and summary["type"] == "summary"
    assert summary["findings"] == len(findings) > 10
    document = json.loads(run_cli("scan", str(root), "-f", "json").stdout)
    assert [{k: v for k, v in f.items() if k != "type"} for f in findings] == document["findings"]
