"""`claudesec report --from s3://...`: the report over the lake equals the report over the store.

A seeded month is exported by the real lake sink to moto's S3; the lake report (DuckDB over the
downloaded Parquet) must give every access, cost and key figure the store report gives.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from claudesec.audit import AuditStore
from claudesec.audit.export import build_sink
from claudesec.audit.export.cursor import CursorStore
from claudesec.audit.export.runner import DeadLetter, Exporter
from claudesec.audit.report import build_report
from claudesec.audit.report.lake_report import report_from_lake
from claudesec.config import SinkConfig
from claudesec.emulator.seed import seed_audit

from ...fixtures.cli import RunCli
from ..helpers import DAY_NS, open_store
from .test_report import NOW_NS, _inputs

pytest.importorskip("duckdb")
pytest.importorskip("pyarrow")

BUCKET = "lake-bucket"
URL = f"s3://{BUCKET}/ext/claudesec/"


def ship(tmp_path: Path, store: AuditStore, endpoint: str, name: str = "lake") -> None:
    sink = build_sink(
        name,
        SinkConfig(
            type="lake",
            bucket=BUCKET,
            aws_region="us-east-1",
            aws_endpoint_url=endpoint,
            lake_account="123456789012",
        ),
    )
    Exporter(
        store, sink, CursorStore(tmp_path / f"{name}.cursors"), DeadLetter(tmp_path / "dl")
    ).run()


@pytest.fixture
def lake(
    tmp_path: Path, aws_endpoint: str, aws_client: Any, monkeypatch: pytest.MonkeyPatch
) -> AuditStore:
    aws_client("s3").create_bucket(Bucket=BUCKET)
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    store = open_store(tmp_path / "audit.db", checkpoint_every=500)
    seed_audit(store, days=30, now_ns=NOW_NS)
    ship(tmp_path, store, aws_endpoint)
    return store


SAME = (
    "access-by-day",
    "access-by-user",
    "access-by-role",
    "access-by-model",
    "access-denials",
    "access-dlp",
    "access-identity",
    "access-new-users",
    "cost-by-day",
    "cost-by-user",
    "cost-by-model",
    "cost-large-prompts",
    "cost-auth-bursts",
    "cost-off-hours",
    "cost-new-models",
    "keys-steps",
    "keys-events",
    "integrity-prunes",
)


def figures(report: Any) -> dict[str, Any]:
    return {f.id: f for s in report.sections for f in s.figures}


def test_lake_report_gives_the_store_reports_numbers(lake: AuditStore) -> None:
    inputs = _inputs()
    local = build_report(lake, inputs)
    remote = report_from_lake(URL, inputs)
    mine, theirs = figures(local), figures(remote)
    for figure_id in SAME:
        assert theirs[figure_id].rows == mine[figure_id].rows, figure_id
        assert theirs[figure_id].rows or figure_id in ("cost-auth-bursts",), figure_id
    for section in ("access", "cost", "keys"):
        assert remote.section(section).facts == local.section(section).facts, section
    # Each figure reproduces with SQL on the view, not a command for one host's store.
    assert theirs["access-by-user"].query.startswith("SELECT event_type, user_name")
    assert remote.integrity_ok and remote.section("integrity").facts[0] == ("verdict", "COMPLETE")


def test_many_hosts_add_up_and_a_duplicate_object_is_reported(
    tmp_path: Path, lake: AuditStore, aws_endpoint: str, aws_client: Any
) -> None:
    other = open_store(tmp_path / "other" / "audit.db", checkpoint_every=500)
    seed_audit(other, days=30, now_ns=NOW_NS)
    ship(tmp_path, other, aws_endpoint, name="lake2")
    inputs = _inputs()
    report = report_from_lake(URL, inputs)
    facts = dict(report.section("integrity").facts)
    assert facts["hosts' stores"] == 2 and facts["duplicated records"] == 0
    single = build_report(lake, inputs).section("access").facts
    both = dict(report.section("access").facts)
    assert both["calls"] == 2 * dict(single)["calls"]
    # An object copied under another name (what a non-idempotent writer would leave).
    s3 = aws_client("s3")
    key = s3.list_objects_v2(Bucket=BUCKET, Prefix="ext/")["Contents"][-1]["Key"]
    s3.copy_object(Bucket=BUCKET, Key=key[:-8] + "-copy.parquet", CopySource=f"{BUCKET}/{key}")
    damaged = report_from_lake(URL, inputs)
    assert not damaged.integrity_ok and damaged.exit_code == 1
    assert dict(damaged.section("integrity").facts)["duplicated records"] > 0


def test_cli_report_from_s3_writes_json(
    run_cli: RunCli, claudesec_home: Path, lake: AuditStore, tmp_path: Path
) -> None:
    out = tmp_path / "lake.json"
    period = ("--since", "35d", "--until", "1d")
    result = run_cli("report", "--from", URL, "--format", "json", "--out", str(out), *period)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["store"] == URL and data["integrity_ok"] is True
    assert data["sections"][1]["facts"]["calls"] > 0
    empty = run_cli("report", "--from", f"s3://{BUCKET}/nothing/", "--out", str(tmp_path / "x"))
    assert empty.exit_code == 2 and "no Parquet object" in empty.stderr


def test_days_are_the_lake_partitions_and_hours_utc(lake: AuditStore) -> None:
    inputs = _inputs(since_ns=NOW_NS - 3 * DAY_NS)
    days = [row[0] for row in figures(report_from_lake(URL, inputs))["access-by-day"].rows]
    assert days == sorted(days) and all(len(str(d)) == 10 for d in days)


def test_user_flow_export_to_the_lake_then_report_from_it(
    run_cli: RunCli,
    claudesec_home: Path,
    tmp_path: Path,
    aws_endpoint: str,
    aws_client: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`logs export --sink lake` as configured in claudesec.toml, then `report --from`."""
    from claudesec.cli import logs, logs_export

    logs_export.register(logs.app)
    aws_client("s3").create_bucket(Bucket=BUCKET)
    for name, value in (
        ("AWS_ENDPOINT_URL", aws_endpoint),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ):
        monkeypatch.setenv(name, value)
    store = open_store(tmp_path / "audit.db", checkpoint_every=500)
    seed_audit(store, days=3, now_ns=NOW_NS)
    store.close()
    (Path.cwd() / "claudesec.toml").write_text(
        f"""
[audit]
store_path = "{tmp_path / "audit.db"}"

[export.sinks.lake]
type = "lake"
bucket = "{BUCKET}"
aws_region = "us-east-1"
lake_account = "123456789012"
""",
        encoding="utf-8",
    )
    shipped = run_cli("logs", "export", "--sink", "lake")
    assert shipped.exit_code == 0, shipped.output
    out = tmp_path / "org.html"
    result = run_cli("report", "--from", URL, "--since", "5d", "--until", "1d", "--out", str(out))
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    assert "COMPLETE" in page and "SELECT event_type, user_name" in page
