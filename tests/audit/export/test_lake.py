"""The Security Lake sink against moto's S3 server, read back with pyarrow and DuckDB.

The crash tests kill the export where it hurts: right after S3 stored an object and before the
cursor moved (a botocore ``after-call`` hook raises, as a process dying there would stop). The
resumed run must leave every event in the lake exactly once.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from claudesec.audit.export import build_sink
from claudesec.audit.export.cursor import CursorStore
from claudesec.audit.export.interface import ExportItem, Sink, SinkUnavailable
from claudesec.audit.export.ocsf import to_ocsf
from claudesec.audit.export.runner import DeadLetter, Exporter, RetryPolicy
from claudesec.audit.store import AuditStore
from claudesec.config import SinkConfig
from tests.audit.export.helpers import make_store
from tests.audit.helpers import BASE_NS, DAY_NS, event

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
duckdb = pytest.importorskip("duckdb")

FAST = RetryPolicy(max_attempts=2, initial_s=0.001, max_s=0.01)
BUCKET = "aws-security-data-lake-us-east-1-test"
ACCOUNT = "123456789012"
KEY = re.compile(
    r"^ext/claudesec/region=us-east-1/accountId=123456789012/eventDay=(\d{8})/"
    r"([0-9a-f]{32})-(\d{12})\.parquet$"
)


class Crash(BaseException):
    """The process dying: not an Exception, so nothing on the way out handles it."""


def lake_sink(endpoint: str) -> Sink:
    return build_sink(
        "lake",
        SinkConfig(
            type="lake",
            bucket=BUCKET,
            aws_region="us-east-1",
            aws_endpoint_url=endpoint,
            lake_account=ACCOUNT,
        ),
    )


def exporter(tmp_path: Path, store: AuditStore, sink: Sink, batch: int = 10) -> Exporter:
    return Exporter(
        store,
        sink,
        CursorStore(tmp_path / "cursors.db"),
        DeadLetter(tmp_path / "dl.jsonl"),
        batch_size=batch,
        retry=FAST,
        sleep=lambda s: None,
    )


def keys(s3: Any) -> list[str]:
    found: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        found += [o["Key"] for o in page.get("Contents", [])]
    return sorted(found)


def download(s3: Any, directory: Path) -> Path:
    """The lake's objects as files in the same layout (what `report --from` reads)."""
    for key in keys(s3):
        target = directory / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    return directory


def seq_counts(directory: Path) -> list[tuple[int, int]]:
    """(seq, copies) for every event in the downloaded lake, by DuckDB."""
    glob = str(directory / "**" / "*.parquet")
    return duckdb.sql(
        "SELECT metadata.sequence AS seq, count(*) AS n "  # noqa: S608 - a test's own path
        f"FROM read_parquet('{glob}', hive_partitioning = true) GROUP BY 1 ORDER BY 1"
    ).fetchall()


def crash_after_puts(s3: Any, after: int) -> Callable[[], int]:
    """Kill the export once S3 has stored ``after`` objects; returns a counter of puts."""
    puts = [0]

    def hook(**_: Any) -> None:
        puts[0] += 1
        if puts[0] == after:
            raise Crash

    s3.meta.events.register("after-call.s3.PutObject", hook)
    return lambda: puts[0]


@pytest.fixture
def bucket(aws_client: Any) -> Any:
    s3 = aws_client("s3")
    s3.create_bucket(Bucket=BUCKET)
    return s3


def test_objects_follow_the_custom_source_layout_one_day_per_partition(
    tmp_path: Path, aws_endpoint: str, bucket: Any
) -> None:
    store = make_store(tmp_path / "audit.db", 0)
    # Two UTC days inside one batch, out of time order within the day.
    times = [BASE_NS + 5, BASE_NS + 1, BASE_NS + DAY_NS, BASE_NS + 3, BASE_NS + DAY_NS + 1]
    store.append_many(event(i + 1, time_ns=t) for i, t in enumerate(times))
    export = exporter(tmp_path, store, lake_sink(aws_endpoint))
    stats = export.run()
    assert stats.shipped == 5 and export.position() == 5
    found = keys(bucket)
    parsed = [KEY.match(k) for k in found]
    assert all(parsed), found
    day1 = time.strftime("%Y%m%d", time.gmtime(BASE_NS / 1e9))
    assert [(m.group(1), m.group(3)) for m in parsed if m] == [
        (day1, "000000000001"),
        (str(int(day1) + 1), "000000000003"),
    ]
    assert {m.group(2) for m in parsed if m} == {export.store_id}
    first = pq.read_table(io.BytesIO(bucket.get_object(Bucket=BUCKET, Key=found[0])["Body"].read()))
    # Records sorted by time within the object, one row group.
    assert first.column("time").to_pylist() == sorted(
        t // 10**6 for t in (times[0], times[1], times[3])
    )
    head = bucket.head_object(Bucket=BUCKET, Key=found[0])
    assert head["ContentType"] == "application/vnd.apache.parquet"


def test_a_row_holds_every_attribute_of_the_ocsf_event(
    tmp_path: Path, aws_endpoint: str, bucket: Any
) -> None:
    store = make_store(tmp_path / "audit.db", 0)
    store.append_many(
        [
            event(1, dlp_kinds=("aws_key", "email"), decision="deny", reason="dlp"),
            event(2, type="key_rotation", reason="finish_secret", extra={"secret": "s", "n": 3}),
            event(3, extra={"http_status": 401}, identity_source="jwt"),
        ]
    )
    export = exporter(tmp_path, store, lake_sink(aws_endpoint))
    export.run()
    [key] = keys(bucket)
    rows = pq.read_table(io.BytesIO(bucket.get_object(Bucket=BUCKET, Key=key)["Body"].read()))
    for row in rows.to_pylist():
        stored = store.get(row["metadata"]["sequence"])
        assert stored is not None
        doc = to_ocsf(ExportItem(stored.seq, stored.rec_hash, stored.event, export.store_id))
        unmapped = dict(row.pop("unmapped"))
        assert row.pop("time_dt").timestamp() * 1000 == doc["time"]
        expected_unmapped = doc.pop("unmapped")["claudesec"]
        # Every attribute the OCSF document has is in the row, with its value.
        assert _without_nulls(row) == doc
        for name, value in expected_unmapped.items():
            if name == "extra":
                for k, v in value.items():
                    assert unmapped[f"claudesec.extra.{k}"] == str(v)
            elif isinstance(value, list):
                assert unmapped[f"claudesec.{name}"] == ",".join(value)
            else:
                assert unmapped[f"claudesec.{name}"] == str(value)


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        kept = {k: _without_nulls(v) for k, v in value.items() if v is not None}
        return {k: v for k, v in kept.items() if v != {}}
    return value


def test_crash_between_put_and_cursor_save_leaves_no_duplicate_after_resume(
    tmp_path: Path, aws_endpoint: str, bucket: Any
) -> None:
    store = make_store(tmp_path / "audit.db", 0)
    # 25 events over two days: batches of 10 span the day boundary at seq 15.
    store.append_many(
        event(i, time_ns=BASE_NS + (DAY_NS if i > 15 else 0) + i) for i in range(1, 26)
    )
    sink = lake_sink(aws_endpoint)
    puts = crash_after_puts(sink.s3, after=2)  # type: ignore[attr-defined]
    with pytest.raises(Crash):
        exporter(tmp_path, store, sink).run()
    # The crash hit the second batch (11-20) after its first day's object was stored.
    assert puts() == 2
    assert exporter(tmp_path, store, lake_sink(aws_endpoint)).position() == 10
    # The store grows before the resume: the re-read batch is not the crashed one.
    store.append_many(event(i, time_ns=BASE_NS + DAY_NS + i) for i in range(26, 31))
    resumed = exporter(tmp_path, store, lake_sink(aws_endpoint), batch=12)
    resumed.run()
    assert resumed.position() == 30
    assert seq_counts(download(bucket, tmp_path / "lake")) == [(s, 1) for s in range(1, 31)]


def test_crash_after_the_last_put_of_a_batch_and_a_larger_batch_on_resume(
    tmp_path: Path, aws_endpoint: str, bucket: Any
) -> None:
    store = make_store(tmp_path / "audit.db", 7)
    sink = lake_sink(aws_endpoint)
    crash_after_puts(sink.s3, after=1)  # type: ignore[attr-defined]
    with pytest.raises(Crash):
        exporter(tmp_path, store, sink).run()
    store.append_many(event(i) for i in range(8, 40))
    resumed = exporter(tmp_path, store, lake_sink(aws_endpoint), batch=100)
    resumed.run()
    assert len(keys(bucket)) == 1  # the superset overwrote the crashed object
    assert seq_counts(download(bucket, tmp_path / "lake")) == [(s, 1) for s in range(1, 40)]


def test_round_trip_through_moto_and_duckdb_loses_and_duplicates_nothing(
    tmp_path: Path, aws_endpoint: str, bucket: Any
) -> None:
    """The suite's size; benchmarks/lake_bench.py runs the same round trip with 1M events."""
    n = 20_000
    store = make_store(tmp_path / "audit.db", 0)
    store.append_many(event(i, time_ns=BASE_NS + i * 60 * 10**9) for i in range(1, n + 1))
    export = exporter(tmp_path, store, lake_sink(aws_endpoint), batch=5_000)
    assert export.run().shipped == n
    counts = seq_counts(download(bucket, tmp_path / "lake"))
    assert len(counts) == n and counts[0][0] == 1 and counts[-1][0] == n
    assert {copies for _, copies in counts} == {1}


def test_missing_bucket_stops_the_run_with_the_cursor_kept(
    tmp_path: Path, aws_endpoint: str
) -> None:
    store = make_store(tmp_path / "audit.db", 3)
    export = exporter(tmp_path, store, lake_sink(aws_endpoint))
    with pytest.raises(SinkUnavailable, match="NoSuchBucket"):
        export.run()
    assert export.position() == 0


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"aws_region": ""}, "aws_region is required"),
        ({"lake_account": ""}, "lake_account is required"),
        ({"format": "ecs"}, "writes OCSF only"),
    ],
)
def test_lake_config_errors_name_the_key(fields: dict[str, str], message: str) -> None:
    from claudesec.errors import ConfigError

    base = {"type": "lake", "bucket": BUCKET, "aws_region": "us-east-1", "lake_account": ACCOUNT}
    with pytest.raises(ConfigError, match=message):
        build_sink("lake", SinkConfig(**{**base, **fields}))  # type: ignore[arg-type]
