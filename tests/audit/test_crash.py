"""kill -9 at random moments: the chain still verifies and no returned append is lost."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

from claudesec.audit import AuditStore
from claudesec.audit.verify import verify_store

REPO = Path(__file__).resolve().parents[2]
ROUNDS = 16


def _start_writer(path: Path, tag: str, batch: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.audit._writer", str(path), "1000000", tag, str(batch)],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
    )


def _confirmed(output: bytes) -> dict[int, str]:
    """Records the writer reported as returned (a line cut by the kill is not a report)."""
    found: dict[int, str] = {}
    for line in output.split(b"\n")[:-1]:
        seq, digest = line.decode().split()
        found[int(seq)] = digest
    return found


def test_kill_9_never_loses_a_returned_append_nor_breaks_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    rng = random.Random(20261125)
    confirmed: dict[int, str] = {}
    for round_ in range(ROUNDS):
        writers = 2 if round_ % 4 == 3 else 1  # sometimes two writers race each other
        procs = [
            _start_writer(path, f"r{round_}w{w}", rng.choice((1, 1, 1, 20))) for w in range(writers)
        ]
        head = b""
        if round_ == ROUNDS - 1 and not confirmed:
            # On a loaded machine every earlier writer may have died in start-up: wait (on its
            # output, not on time) for this one's first append, so the end has records to check.
            assert procs[0].stdout is not None
            head = procs[0].stdout.readline()
        # Kill anywhere from start-up (opening, creating the schema or keys) to mid-stream.
        time.sleep(rng.uniform(0.02, 0.6))
        for proc in procs:
            proc.kill()
        fresh: dict[int, str] = {}
        for index, proc in enumerate(procs):
            out, _ = proc.communicate(timeout=30)
            assert proc.returncode == -9
            fresh.update(_confirmed((head if index == 0 else b"") + out))
        confirmed.update(fresh)
        if path.exists():
            _assert_intact(path, fresh, round_)
    _assert_intact(path, confirmed, ROUNDS)
    assert len(confirmed) > 0


def _assert_intact(path: Path, expected: dict[int, str], round_: int) -> None:
    with AuditStore.open(path, readonly=True) as store:
        report = verify_store(store)
        assert report.ok, (round_, report.problems)
        with store.snapshot() as conn:
            # A writer killed before it created the schema leaves an empty file: no records.
            rows = (
                conn.execute("SELECT seq, rec_hash FROM events") if store.initialised(conn) else []
            )
            stored = {int(seq): bytes(digest).hex() for seq, digest in rows}
    lost = sorted(seq for seq, digest in expected.items() if stored.get(seq) != digest)
    assert not lost, f"round {round_}: returned appends lost: {lost[:10]}"
