"""The store: chaining, durability settings, concurrency, and failures that must not corrupt."""

from __future__ import annotations

import itertools
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from claudesec.audit import AuditEvent, AuditStore
from claudesec.audit.store import genesis_hash, record_hash
from claudesec.audit.verify import verify_store
from claudesec.errors import ExitCode, StoreError

from .helpers import build, event, open_store, raw

REPO = Path(__file__).resolve().parents[2]


def test_appends_get_contiguous_seqs_and_a_verifiable_chain(tmp_path: Path) -> None:
    store = open_store(tmp_path / "audit.db")
    records = [store.append(event(i)) for i in range(1, 26)]
    assert [r.seq for r in records] == list(range(1, 26))
    store_id = store.store_id()
    assert store_id is not None
    prev = genesis_hash(store_id)
    with raw(tmp_path / "audit.db") as conn:
        rows = conn.execute("SELECT seq, prev_hash, rec_hash, body FROM events").fetchall()
    for (seq, p, h, body), record in zip(rows, records, strict=True):
        assert p == prev
        assert h == record_hash(prev, seq, body.encode())
        assert h.hex() == record.rec_hash
        prev = h
    assert verify_store(store).ok
    store.close()


def test_the_store_runs_in_wal_mode_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "audit.db"
    with open_store(path) as store:
        store.append(event(1))
        with store.snapshot() as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        for name in ("audit.db", "audit.db-wal", "audit.db-shm"):
            assert stat.S_IMODE((path.parent / name).stat().st_mode) == 0o600, name
    with open_store(path, synchronous="full") as store, store.snapshot() as conn:
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_append_many_is_one_transaction_with_a_contiguous_chain(tmp_path: Path) -> None:
    with open_store(tmp_path / "audit.db", checkpoint_every=0) as store:
        store.append(event(0))
        records = store.append_many(event(i) for i in range(1, 101))
        assert [r.seq for r in records] == list(range(2, 102))
        assert store.append_many([]) == []
        assert verify_store(store).ok


def test_host_and_app_fill_in_empty_fields_only(tmp_path: Path) -> None:
    with open_store(tmp_path / "audit.db", host="web-1", app="billing") as store:
        store.append(AuditEvent(type="call"))
        store.append(AuditEvent(type="call", host="other", app="mine"))
        first, second = store.get(1), store.get(2)
    assert first is not None and second is not None
    assert (first.event.host, first.event.app) == ("web-1", "billing")
    assert (second.event.host, second.event.app) == ("other", "mine")


def test_checkpoints_are_written_every_n_events_and_chain(tmp_path: Path) -> None:
    store = build(tmp_path / "audit.db", 35, checkpoint_every=10)
    checkpoints = store.checkpoints()
    assert [(c.number, c.seq) for c in checkpoints] == [(1, 10), (2, 20), (3, 30)]
    for earlier, later in itertools.pairwise(checkpoints):
        assert later.prev_hash == earlier.hash
        assert later.signature_valid()
    manual = store.checkpoint()
    assert (manual.number, manual.seq) == (4, 35)
    assert store.checkpoint() == manual  # nothing new: no duplicate checkpoint
    store.close()


def test_threads_sharing_one_store_keep_the_chain_contiguous(tmp_path: Path) -> None:
    store = open_store(tmp_path / "audit.db")
    seqs: list[int] = []
    lock = threading.Lock()

    def work(t: int) -> None:
        for i in range(100):
            record = store.append(event(i, user=f"thread{t}"))
            with lock:
                seqs.append(record.seq)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seqs) == list(range(1, 801))
    assert verify_store(store).ok
    store.close()


def test_processes_writing_at_once_keep_the_chain_contiguous(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    open_store(path).close()  # keys and schema exist before the race starts
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.audit._writer",
                str(path),
                "150",
                f"p{n}",
                str(n % 2 * 7 or 1),
            ],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        for n in range(4)
    ]
    printed: list[int] = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        printed.extend(int(line.split()[0]) for line in out.splitlines())
    assert sorted(printed) == list(range(1, 601))
    with open_store(path) as store:
        report = verify_store(store)
    assert report.ok, report.problems
    assert report.records == 600


def _head_reads(store: AuditStore) -> list[str]:
    """Statements reading the chain head from the tables, as ``store`` runs them."""
    seen: list[str] = []
    store._conn.set_trace_callback(
        lambda sql: seen.append(sql) if "ORDER BY seq DESC" in sql else None
    )
    return seen


def test_the_kept_chain_head_is_revalidated_when_another_connection_appends(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.db"
    with open_store(path, checkpoint_every=3) as a, open_store(path, checkpoint_every=3) as b:
        a_reads, b_reads = _head_reads(a), _head_reads(b)
        order = "aabbbabaaab" * 3  # runs of each writer, and strict alternation
        records = [(a if who == "a" else b).append(event(i)) for i, who in enumerate(order)]
        assert [r.seq for r in records] == list(range(1, len(order) + 1))
        # A writer reads the head from the tables only after the other one committed.
        switches = sum(1 for x, y in itertools.pairwise(order) if x != y)
        assert len(a_reads) + len(b_reads) == switches + 1
        # The kept head is trusted only while nothing else committed: a burst by one writer
        # reads nothing, the other's next append reads the moved head.
        a.append(event(100))
        reads = len(a_reads)
        a.append(event(101))
        assert len(a_reads) == reads
        b.append(event(102))
        assert len(a_reads) == reads
        record = a.append(event(103))
        assert len(a_reads) == reads + 1
        assert record.seq == len(order) + 4
        # Checkpoints track the other writer's too: every 3rd record, none twice or skipped.
        assert [c.seq for c in a.checkpoints()] == list(range(3, record.seq + 1, 3))
        report = verify_store(a)
    assert report.ok, report.problems
    assert report.records == len(order) + 4


def test_the_kept_chain_head_is_revalidated_after_another_process_appends(
    tmp_path: Path,
) -> None:
    path = tmp_path / "audit.db"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open_store(path) as store:
        reads = _head_reads(store)
        first = [store.append(event(i)).seq for i in range(5)]
        before = len(reads)
        writer = [sys.executable, "-m", "tests.audit._writer", str(path), "7", "other"]
        done = subprocess.run(
            writer, check=False, capture_output=True, text=True, env=env, cwd=REPO
        )
        assert done.returncode == 0, done.stderr
        other = [int(line.split()[0]) for line in done.stdout.splitlines()]
        later = [store.append(event(i)).seq for i in range(5, 10)]
        assert len(reads) == before + 1  # re-read once, then kept again
        assert (first, other, later) == ([1, 2, 3, 4, 5], list(range(6, 13)), list(range(13, 18)))
        report = verify_store(store)
    assert report.ok, report.problems


def test_a_failed_append_drops_the_kept_head(tmp_path: Path) -> None:
    with open_store(tmp_path / "audit.db") as store:
        store.append(event(1))
        reads = _head_reads(store)
        store.append(event(2))
        assert reads == []
        with pytest.raises(TypeError):
            store.append_many([event(3), "not an event"])  # type: ignore[list-item]
        store._conn.execute("PRAGMA max_page_count = 1")
        with pytest.raises(StoreError):
            store.append(event(3, extra={"pad": "x" * 100_000}))
        store._conn.execute("PRAGMA max_page_count = 1073741823")
        assert store.append(event(4)).seq == 3
        assert len(reads) == 1
        assert verify_store(store).ok


# --------------------------------------------------------------------------- failures


@pytest.fixture
def immutable() -> Iterator[list[Path]]:
    """Make paths read-only in a way that also binds root (chattr +i), undone afterwards."""
    made: list[Path] = []
    yield made
    for path in made:
        subprocess.run(["chattr", "-i", str(path)], check=False, capture_output=True)
        path.chmod(0o700 if path.is_dir() else 0o600)


def _make_readonly(path: Path, made: list[Path]) -> None:
    if os.geteuid() == 0:
        result = subprocess.run(["chattr", "+i", str(path)], check=False, capture_output=True)
        if result.returncode != 0:
            pytest.skip("running as root without chattr: cannot make a file read-only")
        made.append(path)
    else:
        path.chmod(0o500 if path.is_dir() else 0o400)
        made.append(path)


def _count(path: Path) -> int:
    with raw(path) as conn:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])


def test_a_read_only_store_file_is_a_clear_exit_3(tmp_path: Path, immutable: list[Path]) -> None:
    path = tmp_path / "audit.db"
    build(path, 5).close()
    _make_readonly(path, immutable)
    with pytest.raises(StoreError) as caught:
        store = open_store(path)
        store.append(event(6))
    assert caught.value.exit_code == ExitCode.EXTERNAL
    assert "read-only" in caught.value.message or "cannot open" in caught.value.message
    # Reading still works, and nothing was damaged.
    with AuditStore.open(path, readonly=True) as reader:
        assert verify_store(reader).ok
        assert reader.head().seq == 5


def test_a_read_only_directory_is_a_clear_exit_3(tmp_path: Path, immutable: list[Path]) -> None:
    directory = tmp_path / "ro"
    directory.mkdir()
    build(directory / "audit.db", 3).close()
    _make_readonly(directory, immutable)
    with pytest.raises(StoreError) as caught:
        store = open_store(directory / "audit.db")
        store.append(event(4))
    assert caught.value.exit_code == ExitCode.EXTERNAL
    with pytest.raises(StoreError, match="cannot create"):
        open_store(directory / "new.db")


def test_a_lock_held_elsewhere_times_out_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    store = build(path, 3, checkpoint_every=0)
    store.close()
    store = open_store(path, checkpoint_every=0, busy_timeout_ms=150)
    with raw(path) as other:
        other.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        with pytest.raises(StoreError, match="locked by another process") as caught:
            store.append(event(4))
        assert time.monotonic() - started >= 0.1  # it waited out its 150 ms busy timeout first
        assert caught.value.exit_code == ExitCode.EXTERNAL
        other.execute("ROLLBACK")
    assert store.append(event(4)).seq == 4
    assert verify_store(store).ok
    store.close()


def test_a_full_disk_fails_cleanly_and_the_chain_survives(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    store = build(path, 5)
    with store.snapshot() as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    # The store's own connection must hit the limit: max_page_count is per connection.
    store._conn.execute(f"PRAGMA max_page_count = {pages + 1}")
    big = "x" * 900
    written = 5
    with pytest.raises(StoreError, match="disk is full") as caught:
        for i in range(6, 1000):
            store.append(event(i, reason=big))
            written += 1
    assert caught.value.exit_code == ExitCode.EXTERNAL
    assert store.head().seq == written
    assert verify_store(store).ok
    store._conn.execute("PRAGMA max_page_count = 1073741823")
    assert store.append(event(2000)).seq == written + 1
    assert verify_store(store).ok
    store.close()


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="damaged or not a SQLite database"):
        open_store(path)


def test_a_closed_or_read_only_store_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    store = build(path, 1)
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.append(event(2))
    with (
        AuditStore.open(path, readonly=True) as reader,
        pytest.raises(StoreError, match="read-only"),
    ):
        reader.append(event(2))
    with pytest.raises(StoreError, match="no audit store"):
        AuditStore.open(tmp_path / "missing.db", readonly=True)


def test_a_different_signing_key_is_refused(tmp_path: Path) -> None:
    from claudesec.audit.secrets import AuditKeys

    path = tmp_path / "audit.db"
    build(path, 12).close()
    with pytest.raises(StoreError, match="not the key this audit store is signed with"):
        AuditStore.open(path, keys=AuditKeys(tmp_path / "elsewhere"))


def test_from_config_uses_claudesec_home(claudesec_home: Path) -> None:
    from claudesec.config import AuditConfig

    with AuditStore.from_config(AuditConfig(app="svc")) as store:
        store.append(AuditEvent(type="call"))
    assert (claudesec_home / "audit.db").exists()
    assert (claudesec_home / "audit-signing-ed25519.key").exists()
    with AuditStore.open_default(readonly=True) as reader:
        stored = reader.get(1)
    assert stored is not None and stored.event.app == "svc"


def test_store_errors_never_leave_sqlite_exceptions(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    with open_store(path) as store, pytest.raises(StoreError), store.snapshot() as conn:
        conn.execute("SELECT * FROM no_such_table")
    assert isinstance(StoreError("x"), Exception)
    assert not issubclass(StoreError, sqlite3.Error)


def test_a_batch_gets_a_checkpoint_at_every_n_records(tmp_path: Path) -> None:
    with open_store(tmp_path / "audit.db", checkpoint_every=10) as store:
        store.append_many(event(i) for i in range(1, 36))
        assert [c.seq for c in store.checkpoints()] == [10, 20, 30]
        assert verify_store(store).ok
