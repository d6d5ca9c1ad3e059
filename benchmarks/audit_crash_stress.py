"""kill -9 stress for the audit store: writers killed at random moments, many times.

    .venv/bin/python benchmarks/audit_crash_stress.py --rounds 120

Each round starts one to three writer processes on the same store (single appends and
batches), kills them all with SIGKILL after a random delay (from start-up through schema and
key creation to mid-stream), then checks that the chain verifies and that every record a
writer reported as returned (it prints ``seq rec_hash`` after each append returns) is present
with the same hash. Exits 1 on any loss or verification failure.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from claudesec.audit import AuditEvent, AuditStore  # noqa: E402
from claudesec.audit.secrets import AuditKeys  # noqa: E402
from claudesec.audit.verify import verify_store  # noqa: E402


def writer(path: Path, tag: str, batch: int) -> int:
    store = AuditStore.open(path, checkpoint_every=50, keys=AuditKeys(path.parent))
    i = 0
    out = sys.stdout
    while True:
        events = [
            AuditEvent(type="call", user=tag, request_id=f"{tag}-{i + j}", input_tokens=j)
            for j in range(batch)
        ]
        records = store.append_many(events) if batch > 1 else [store.append(events[0])]
        out.write("".join(f"{r.seq} {r.rec_hash}\n" for r in records))
        out.flush()
        i += batch


def stress(rounds: int, seed: int, directory: Path) -> int:
    rng = random.Random(seed)
    path = directory / "audit.db"
    confirmed: dict[int, str] = {}
    kills = 0
    started = time.perf_counter()
    for round_ in range(rounds):
        count = rng.choice((1, 1, 1, 2, 3))
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--writer",
                    str(path),
                    f"r{round_}w{w}",
                    str(rng.choice((1, 1, 1, 10, 50))),
                ],
                stdout=subprocess.PIPE,
            )
            for w in range(count)
        ]
        time.sleep(rng.uniform(0.0, 0.8))
        for proc in procs:
            proc.kill()
        fresh: dict[int, str] = {}
        for proc in procs:
            out, _ = proc.communicate(timeout=60)
            kills += 1
            for line in out.split(b"\n")[:-1]:  # a line cut by the kill is no report
                seq, digest = line.decode().split()
                fresh[int(seq)] = digest
        confirmed.update(fresh)
        if not path.exists():
            continue
        problem = _check(path, fresh)
        if problem:
            print(f"round {round_}: {problem}")
            return 1
        if (round_ + 1) % 20 == 0:
            print(
                f"  {round_ + 1} rounds, {kills} writers killed, {len(confirmed)} confirmed",
                flush=True,
            )
    problem = _check(path, confirmed)  # everything ever confirmed, once more at the end
    if problem:
        print(f"final check: {problem}")
        return 1
    with AuditStore.open(path, readonly=True) as store:
        report = verify_store(store)
    print(
        f"OK: {rounds} rounds, {kills} writers killed with SIGKILL, {len(confirmed)} returned "
        f"appends all present, chain of {report.last_seq} records and {report.checkpoints} "
        f"checkpoints verifies ({time.perf_counter() - started:.0f} s)"
    )
    return 0


def _check(path: Path, expected: dict[int, str]) -> str | None:
    """Verify the chain and look up every expected record (one scan, not one query each)."""
    with AuditStore.open(path, readonly=True) as store:
        report = verify_store(store)
        if not report.ok:
            return f"VERIFY FAILED: {report.problems}"
        with store.snapshot() as conn:
            # A writer killed before it created the schema leaves an empty file: no records.
            rows = (
                conn.execute("SELECT seq, rec_hash FROM events") if store.initialised(conn) else []
            )
            stored = {int(seq): bytes(digest).hex() for seq, digest in rows}
    lost = sorted(s for s, d in expected.items() if stored.get(s) != d)
    return f"LOST returned records {lost[:10]}" if lost else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=120)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument(
        "--writer", nargs=3, metavar=("STORE", "TAG", "BATCH"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.writer:
        return writer(Path(args.writer[0]), args.writer[1], int(args.writer[2]))
    with tempfile.TemporaryDirectory() as tmp:
        return stress(args.rounds, args.seed, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
