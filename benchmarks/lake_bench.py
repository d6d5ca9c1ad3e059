"""Security Lake sink and lake report at scale.

    python benchmarks/lake_bench.py roundtrip --events 1000000
        store -> lake sink -> moto S3 (its own server process on loopback) -> download ->
        DuckDB: prints the time of each step and the lost / duplicated counts (must be 0 / 0).
    python benchmarks/lake_bench.py report --lake DIR --hosts 10
        the lake report over DIR's Parquet copied as HOSTS hosts (each copy with its own
        store id, written by DuckDB): time and peak memory of the report in a child process.

Run under ``nice -n 10`` on a shared machine. Numbers go to benchmarks/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BUCKET = "lake-bench"
DAY_NS = 86_400 * 10**9


def _moto() -> tuple[subprocess.Popen[bytes], str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc, url
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # waiting for a server to listen (a poll with a deadline)


def roundtrip(events: int, workdir: Path) -> None:
    import os

    import boto3
    import duckdb

    from claudesec.audit import AuditEvent, AuditStore
    from claudesec.audit.export import build_sink
    from claudesec.audit.export.cursor import CursorStore
    from claudesec.audit.export.runner import DeadLetter, Exporter
    from claudesec.audit.report.lake_fetch import fetch
    from claudesec.audit.secrets import AuditKeys
    from claudesec.config import SinkConfig

    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    proc, endpoint = _moto()
    try:
        start_ns = time.time_ns() - 30 * DAY_NS
        t0 = time.perf_counter()
        store = AuditStore.open(
            workdir / "audit.db", checkpoint_every=10_000, keys=AuditKeys(workdir)
        )
        step = 30 * DAY_NS // events
        chunk = 50_000
        for first in range(0, events, chunk):
            store.append_many(
                AuditEvent(
                    type="call" if i % 17 else "denial",
                    time_ns=start_ns + i * step,
                    user=f"user{i % 200}",
                    role=("analyst", "engineer", "ops")[i % 3],
                    model=("claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-1")[i % 3],
                    input_tokens=100 + i % 5000,
                    output_tokens=10 + i % 700,
                    decision="allow" if i % 17 else "deny",
                    reason="" if i % 17 else "model not allowed",
                    identity_source=("key", "jwt", "federation")[i % 3],
                )
                for i in range(first, min(events, first + chunk))
            )
        t_store = time.perf_counter() - t0
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
        sink = build_sink(
            "lake",
            SinkConfig(
                type="lake",
                bucket=BUCKET,
                aws_region="us-east-1",
                aws_endpoint_url=endpoint,
                lake_account="123456789012",
                timeout_s=120,
            ),
        )
        exporter = Exporter(
            store,
            sink,
            CursorStore(workdir / "cursors.db"),
            DeadLetter(workdir / "dl"),
            batch_size=100_000,
        )
        t0 = time.perf_counter()
        stats = exporter.run()
        t_export = time.perf_counter() - t0
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        t0 = time.perf_counter()
        fetched = fetch(f"s3://{BUCKET}/ext/", workdir / "lake")
        t_fetch = time.perf_counter() - t0
        t0 = time.perf_counter()
        glob = str(workdir / "lake" / "**" / "*.parquet")
        [(total, distinct, low, high)] = duckdb.sql(
            "SELECT count(*), count(DISTINCT metadata.sequence), min(metadata.sequence), "  # noqa: S608 - our own path
            f"max(metadata.sequence) FROM read_parquet('{glob}')"
        ).fetchall()
        t_query = time.perf_counter() - t0
        lost = events - distinct
        usage = resource.getrusage(resource.RUSAGE_SELF)
        print(
            "CPU time of this process (store, sink, download): "
            f"{usage.ru_utime + usage.ru_stime:.1f} s"
        )
        print(
            f"roundtrip {events:,} events: store {t_store:.1f} s, export {t_export:.1f} s "
            f"({stats.shipped / t_export:,.0f} ev/s, {fetched.objects} objects, "
            f"{fetched.bytes / 1e6:.1f} MB), download {t_fetch:.1f} s, DuckDB {t_query:.2f} s; "
            f"lost {lost}, duplicated {total - distinct}, seq {low}..{high}"
        )
    finally:
        proc.terminate()
        proc.wait()


def synthesise(events: int, hosts: int, many: Path) -> None:
    """``events`` events spread over ``hosts`` hosts and 30 days, in the lake sink's layout and
    with the columns the report reads, written by DuckDB (a Python loop through the real sink
    would take hours at 10M; the sink's own objects are what `roundtrip` measures)."""
    import duckdb

    start_ms = (time.time_ns() - 30 * DAY_NS) // 1_000_000
    step_ms = 30 * 86_400_000 * hosts // events
    per_host = events // hosts
    many.mkdir(parents=True, exist_ok=True)
    for host in range(hosts):
        duckdb.sql(
            f"""COPY (SELECT
              CASE WHEN i % 17 = 0 THEN 'model not allowed' END AS status_detail,
              {start_ms} + i * {step_ms} + {host} AS time,
              {{'uid': 'host{host:02d}-' || i, 'sequence': i + 1,
                'event_code': CASE WHEN i % 17 = 0 THEN 'denial' ELSE 'call' END}} AS metadata,
              {{'user': {{'uid': 'user' || (i % 200), 'name': 'user' || (i % 200)}}}} AS actor,
              {{'name': ['claude-haiku-4-5', 'claude-sonnet-4-5', 'claude-opus-4-1'][i % 3 + 1],
                'ai_provider': 'Anthropic'}} AS ai_model,
              {{'prompt_tokens': 100 + i % 5000, 'completion_tokens': 10 + i % 700}}
                AS message_context,
              MAP {{'claudesec.role': ['analyst', 'engineer', 'ops'][i % 3 + 1],
                'claudesec.decision': CASE WHEN i % 17 = 0 THEN 'deny' ELSE 'allow' END,
                'claudesec.identity_source': ['key', 'jwt', 'federation'][i % 3 + 1],
                'claudesec.store_id': 'host{host:02d}'}} AS unmapped,
              'us-east-1' AS region, '123456789012' AS accountId,
              strftime(make_timestamp(({start_ms} + i * {step_ms}) * 1000), '%Y%m%d') AS eventDay
            FROM range({per_host}) t(i))
            TO '{many}/h{host}' (FORMAT parquet, COMPRESSION zstd,
              PARTITION_BY (region, accountId, eventDay))"""  # noqa: S608 - our own numbers
        )


def report(lake: Path | None, hosts: int, workdir: Path, synthetic: int = 0) -> None:
    import duckdb

    many = workdir / "many"
    many.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if synthetic:
        synthesise(synthetic, hosts, many)
    glob = str(lake / "**" / "*.parquet") if lake else ""
    for host in range(0 if synthetic else hosts):
        # The same traffic as another host: its own store id, so completeness sees N stores.
        duckdb.sql(
            f"COPY (SELECT * REPLACE (map_concat(unmapped, MAP {{'claudesec.store_id': "  # noqa: S608
            f"'host{host:02d}'}}) AS unmapped) FROM read_parquet('{glob}', "
            f"hive_partitioning = true, hive_types_autocast = false)) TO '{many}/h{host}' "
            "(FORMAT parquet, COMPRESSION zstd, PARTITION_BY (region, accountId, eventDay))"
        )
    print(f"wrote {hosts} hosts' lakes in {time.perf_counter() - t0:.1f} s")
    # The report in a child of its own, so its peak memory is its own.
    subprocess.run([sys.executable, __file__, "query", str(many)], check=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"children peak RSS {peak:.0f} MB")


def query(directory: Path) -> None:
    from claudesec.audit.report.build import ReportInputs
    from claudesec.audit.report.lake import build_lake_report, connect
    from claudesec.config import AlertsConfig

    now = time.time_ns()
    t0 = time.perf_counter()
    inputs = ReportInputs(
        since_ns=now - 40 * DAY_NS,
        until_ns=now + DAY_NS,
        now_ns=now,
        alerts=AlertsConfig(allowed_hours="07-19"),
    )
    conn = connect(directory)
    built = build_lake_report(conn, inputs, "bench")
    elapsed = time.perf_counter() - t0
    facts = dict(built.section("integrity").facts)
    calls = dict(built.section("access").facts)["calls"]
    stores = facts["hosts' stores"]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak = usage.ru_maxrss / 1024
    print(
        f"report: {facts['records']:,} events ({calls:,} calls), {stores} stores, "
        f"{elapsed:.1f} s wall, {usage.ru_utime + usage.ru_stime:.1f} s CPU, "
        f"peak RSS {peak:.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    rt = sub.add_parser("roundtrip")
    rt.add_argument("--events", type=int, default=1_000_000)
    rt.add_argument("--keep", type=Path, help="keep the work directory here (for `report`)")
    rp = sub.add_parser("report")
    rp.add_argument("--lake", type=Path, help="a roundtrip's lake directory to copy per host")
    rp.add_argument("--synthetic", type=int, default=0, help="or: write this many events")
    rp.add_argument("--hosts", type=int, default=10)
    qp = sub.add_parser("query")
    qp.add_argument("directory", type=Path)
    args = parser.parse_args()
    if args.cmd == "query":
        query(args.directory)
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.cmd == "roundtrip":
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                work = args.keep
            roundtrip(args.events, work)
        else:
            report(args.lake, args.hosts, work, args.synthetic)


if __name__ == "__main__":
    main()
