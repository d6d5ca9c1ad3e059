"""Audit store benchmark: one command, ratios printed.

    .venv/bin/python benchmarks/audit_store_bench.py              # 1M events (a few minutes)
    .venv/bin/python benchmarks/audit_store_bench.py --events 50000   # quick run

1. Durable chained appends from one writer (WAL, synchronous=NORMAL, one transaction per
   event, hash chain + rollups + signed checkpoint every 1000) against plain unchained SQLite
   inserts of the same bodies with the same durability (WAL, NORMAL, one transaction each).
2. `logs summary` over N events (rollups) against a naive GROUP BY over the events table of
   the same database.
3. `logs verify` over N events: chain + checkpoints (+ rollup recount).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from claudesec.audit import AuditEvent, AuditStore
from claudesec.audit.query import summarise
from claudesec.audit.secrets import AuditKeys
from claudesec.audit.verify import verify_store

DAY_NS = 86_400 * 1_000_000_000
MODELS = ("claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5", "claude-3-5-haiku-latest")
ROLES = ("analyst", "engineer", "support", "admin")


def make_events(n: int, *, seed: int = 7, days: int = 90) -> list[AuditEvent]:
    rng = random.Random(seed)
    start = time.time_ns() - days * DAY_NS
    step = days * DAY_NS // max(n, 1)
    events = []
    for i in range(n):
        user = rng.randrange(200)
        denied = rng.random() < 0.05
        events.append(
            AuditEvent(
                type="denial" if denied else "call",
                time_ns=start + i * step,
                user=f"user{user:03d}@example.com",
                role=ROLES[user % 4],
                identity_source="jwt",
                model=rng.choice(MODELS),
                prompt_hash=f"{rng.getrandbits(256):064x}",
                input_tokens=0 if denied else rng.randrange(50, 4000),
                output_tokens=0 if denied else rng.randrange(10, 1500),
                latency_ms=round(rng.uniform(200, 4000), 1),
                stop_reason="" if denied else "end_turn",
                decision="deny" if denied else "allow",
                reason="model not allowed" if denied else "",
                dlp_kinds=("email",) if rng.random() < 0.02 else (),
                request_id=f"req_{i:012d}",
                host="web-1",
                app="bench",
            )
        )
    return events


def _chained(directory: Path, events: list[AuditEvent], name: str) -> float:
    store = AuditStore.open(directory / name, keys=AuditKeys(directory), checkpoint_every=1000)
    t0 = time.perf_counter()
    for event in events:
        store.append(event)
    rate = len(events) / (time.perf_counter() - t0)
    store.close()
    return rate


def _plain(directory: Path, bodies: list[str], name: str) -> float:
    plain = sqlite3.connect(directory / name, isolation_level=None)
    plain.execute("PRAGMA journal_mode=WAL")
    plain.execute("PRAGMA synchronous=NORMAL")
    plain.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    t0 = time.perf_counter()
    for body in bodies:
        plain.execute("BEGIN IMMEDIATE")
        plain.execute("INSERT INTO events (body) VALUES (?)", (body,))
        plain.execute("COMMIT")
    rate = len(bodies) / (time.perf_counter() - t0)
    plain.close()
    return rate


def bench_appends(directory: Path, n: int, runs: int = 3) -> tuple[float, float, float]:
    """Best of ``runs`` for each, interleaved so that machine noise hits both alike."""
    events = make_events(n, seed=1)
    bodies = [e.canonical_json() for e in events]
    chained, unchained = 0.0, 0.0
    for run in range(runs):
        chained = max(chained, _chained(directory, events, f"chained{run}.db"))
        unchained = max(unchained, _plain(directory, bodies, f"plain{run}.db"))
    store = AuditStore.open(directory / "batched.db", keys=AuditKeys(directory))
    t0 = time.perf_counter()
    for i in range(0, n, 100):
        store.append_many(events[i : i + 100])
    batched = n / (time.perf_counter() - t0)
    store.close()
    return chained, unchained, batched


def build_big(path: Path, keys: AuditKeys, n: int) -> float:
    store = AuditStore.open(path, keys=keys, checkpoint_every=1000)
    t0 = time.perf_counter()
    chunk = 20_000
    for i in range(0, n, chunk):
        store.append_many(make_events(min(chunk, n - i), seed=i))
    elapsed = time.perf_counter() - t0
    store.close()
    return elapsed


NAIVE_SUMMARY = """
SELECT user, model, count(*),
       sum(CASE WHEN type = 'call' THEN 1 ELSE 0 END),
       sum(input_tokens), sum(output_tokens),
       sum(CASE WHEN decision = 'deny' OR type = 'denial' THEN 1 ELSE 0 END),
       sum(dlp)
FROM events GROUP BY user, model
"""


def best_of(runs: int, fn: object) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return min(times)


def machine() -> str:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    model = next(
        (ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")),
        platform.processor(),
    )
    return (
        f"{datetime.now(UTC):%Y-%m-%d}, nproc={os.cpu_count()}, {model}, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--events", type=int, default=1_000_000, help="store size for summary/verify"
    )
    parser.add_argument("--appends", type=int, default=20_000, help="events for the append test")
    parser.add_argument(
        "--dir", type=Path, default=None, help="work directory (default: a temp dir)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        directory = Path(tmp)
        print(f"machine: {machine()}")
        print(f"work dir: {directory}")

        chained, unchained, batched = bench_appends(directory, args.appends)
        print(
            f"\n[1] durable appends, one writer, {args.appends} events, WAL + synchronous=NORMAL,"
            " best of 3"
        )
        print(
            f"    chained AuditStore.append        : {chained:10,.0f} events/s  (target >= 5,000)"
        )
        print(f"    plain unchained INSERT per txn   : {unchained:10,.0f} events/s")
        print(f"    ratio chained / plain            : {chained / unchained:10.2f}x")
        print(f"    AuditStore.append_many (100/txn) : {batched:10,.0f} events/s")

        keys = AuditKeys(directory)
        big = directory / "big.db"
        print(f"\nbuilding a {args.events:,}-event store ...", flush=True)
        build_s = build_big(big, keys, args.events)
        size_mb = big.stat().st_size / 1e6
        print(
            f"    built in {build_s:.1f} s ({args.events / build_s:,.0f} events/s via "
            f"append_many), {size_mb:,.0f} MB"
        )

        store = AuditStore.open(big, readonly=True)
        rollup_s = best_of(3, lambda: summarise(store, "user"))
        with store.snapshot() as conn:
            naive_s = best_of(3, lambda: conn.execute(NAIVE_SUMMARY).fetchall())
        print(f"\n[2] summary --by user over {args.events:,} events")
        print(f"    rollups (logs summary)           : {rollup_s * 1000:10.1f} ms")
        print(f"    naive GROUP BY over events       : {naive_s * 1000:10.1f} ms")
        print(
            f"    speed-up                         : {naive_s / rollup_s:10.1f}x  (target >= 10x)"
        )
        for by in ("model", "day", "role"):
            t = best_of(3, lambda by=by: summarise(store, by))
            print(f"    summary --by {by:<6}               : {t * 1000:10.1f} ms")

        t0 = time.perf_counter()
        report = verify_store(store, check_rollups=False)
        chain_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        report_full = verify_store(store)
        full_s = time.perf_counter() - t0
        store.close()
        assert report.ok and report_full.ok, (report.problems, report_full.problems)
        print(f"\n[3] verify over {args.events:,} events ({report.checkpoints} checkpoints)")
        print(
            f"    chain + checkpoints              : {chain_s:10.2f} s  "
            f"({args.events / chain_s:,.0f} records/s)"
        )
        print(f"    + rollup recount (default)       : {full_s:10.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
