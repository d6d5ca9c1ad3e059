"""The intent journal: an audited client's admissions on disk before anything is sent, and
imported exactly once, by the next writer, after the client died.

Real files, real ``flock``s and a real store; a process dies by being a separate process
that is killed (SIGKILL), so the kernel releases its lock the way it does after any crash.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from claudesec.audit import AuditEvent, AuditStore, intents
from claudesec.audit.events import EventType
from claudesec.audit.intents import (
    CALL_ID,
    IntentJournal,
    import_dead_journals,
    intents_dir,
    pending_admissions,
)
from claudesec.audit.query import incomplete_calls

REPO = Path(__file__).resolve().parents[2]


def _store(tmp_path: Path, **kwargs: object) -> AuditStore:
    return AuditStore.open(tmp_path / "audit.db", checkpoint_every=0, **kwargs)  # type: ignore[arg-type]


def _admission(call_id: str, user: str = "alice") -> AuditEvent:
    return AuditEvent(
        type=EventType.ADMISSION, user=user, reason="admitted", extra={CALL_ID: call_id}
    )


def _call(call_id: str) -> AuditEvent:
    return AuditEvent(type=EventType.CALL, user="alice", decision="allow", extra={CALL_ID: call_id})


def _journals(tmp_path: Path) -> list[Path]:
    return sorted(intents_dir(tmp_path / "audit.db").glob("*.jsonl"))


# A process that journals admissions and is killed holding its lock: a dead client.
DYING = """\
import os, signal, sys
from pathlib import Path
from claudesec.audit.events import AuditEvent, EventType
from claudesec.audit.intents import CALL_ID, IntentJournal

journal = IntentJournal.create(Path(sys.argv[1]))
for call_id in sys.argv[2:]:
    journal.admit(call_id, AuditEvent(type=EventType.ADMISSION, user="alice",
                                      reason="admitted", extra={CALL_ID: call_id}))
os.kill(os.getpid(), signal.SIGKILL)
"""


def _die_with(tmp_path: Path, *call_ids: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", DYING, str(tmp_path / "audit.db"), *call_ids],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr


def test_a_dead_clients_admissions_are_imported_once_by_the_next_writer(tmp_path: Path) -> None:
    _store(tmp_path).close()
    _die_with(tmp_path, "x.1", "x.2")
    with _store(tmp_path, readonly=True) as store:
        # Read-only tools count them before anyone imports them...
        assert [e.extra[CALL_ID] for e in pending_admissions(store)] == ["x.1", "x.2"]
        assert incomplete_calls(store).count == 2
        assert incomplete_calls(store).journaled == 2
    with _store(tmp_path) as store:  # ...the next writer imports them...
        events = [store.get(seq) for seq in range(1, store.head().seq + 1)]
        assert [(s.event.type, s.event.extra[CALL_ID]) for s in events if s] == [
            ("admission", "x.1"),
            ("admission", "x.2"),
        ]
    assert _journals(tmp_path) == []
    with _store(tmp_path) as store:  # ...and no later one again
        assert store.head().seq == 2
        found = incomplete_calls(store)
        assert (found.count, found.seqs, found.journaled) == (2, (1, 2), 0)


def test_a_live_clients_journal_is_never_imported(tmp_path: Path) -> None:
    store = _store(tmp_path)
    journal = IntentJournal.create(store.path)
    journal.admit("live.1", _admission("live.1"))
    try:
        with _store(tmp_path) as other:  # another process opening the store meanwhile
            assert other.head().seq == 0
            assert pending_admissions(other) == []
        assert import_dead_journals(store) == 0
    finally:
        journal.close(store)  # the entry never finished: it becomes an admission now
        store.close()
    with _store(tmp_path, readonly=True) as store:
        assert incomplete_calls(store).count == 1
    assert _journals(tmp_path) == []


def test_an_admission_whose_call_record_was_committed_is_not_imported(tmp_path: Path) -> None:
    # Killed after the writer committed the call record but before the entry was trimmed.
    with _store(tmp_path) as store:
        store.append(_call("x.1"))
    _die_with(tmp_path, "x.1", "x.2")
    with _store(tmp_path) as store:
        types = [store.get(seq).event.type for seq in range(1, store.head().seq + 1)]  # type: ignore[union-attr]
        assert types == ["call", "admission"]
        assert incomplete_calls(store).count == 1


def test_torn_and_forged_lines_are_skipped_and_the_rest_imported(tmp_path: Path) -> None:
    _store(tmp_path).close()
    _die_with(tmp_path, "x.1")
    [journal] = _journals(tmp_path)
    with journal.open("ab") as handle:
        # Not admissions (a forged call, an admission without an id), garbage, a torn line.
        handle.write(json.dumps(_call("x.9").to_dict()).encode() + b"\n")
        handle.write(json.dumps({"v": 1, "type": "admission", "time_ns": 1}).encode() + b"\n")
        handle.write(b"\x00\xff not json\n")
        handle.write(json.dumps(_admission("x.2").to_dict()).encode()[:40])
    with _store(tmp_path) as store:
        events = [store.get(seq) for seq in range(1, store.head().seq + 1)]
        assert [(s.event.type, s.event.extra.get(CALL_ID)) for s in events if s] == [
            ("admission", "x.1")
        ]


def test_a_claimed_journal_cannot_be_imported_by_a_second_importer(tmp_path: Path) -> None:
    _store(tmp_path).close()
    _die_with(tmp_path, "x.1")
    with _store(tmp_path, readonly=True) as reader, _store(tmp_path) as writer:
        # The writer's open imported it already; make another dead journal and claim it.
        assert writer.head().seq == 1
        _die_with(tmp_path, "x.2")
        claims = intents._dead_journals(writer.path)
        claimed = next(claims)
        try:
            assert pending_admissions(reader) == []  # locked by the first claimant
            assert import_dead_journals(writer) == 0
        finally:
            os.close(claimed.fd)
            claims.close()
        assert import_dead_journals(writer) == 1
        assert import_dead_journals(writer) == 0


def test_the_journal_stays_small_without_losing_an_open_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(intents, "_TRUNCATE_AT", 2_000)
    monkeypatch.setattr(intents, "_REWRITE_AT", 8_000)
    store = _store(tmp_path)
    journal = IntentJournal.create(store.path)
    held = journal.new_call_id()  # a stream a script never finished reading
    journal.admit(held, _admission(held))
    sizes = []
    for _ in range(200):
        call_id = journal.new_call_id()
        journal.admit(call_id, _admission(call_id, user="u" * 40))
        journal.done(call_id)
        sizes.append(journal.path.stat().st_size)
    assert max(sizes) < 8_000 + 1_000  # rewritten with only the open entry, over and over
    lines = journal.path.read_text().splitlines()
    assert [json.loads(line)[CALL_ID] for line in lines][:1] == [held]
    # With nothing open, it is emptied.
    journal.done(held)
    for _ in range(40):
        call_id = journal.new_call_id()
        journal.admit(call_id, _admission(call_id, user="u" * 40))
        journal.done(call_id)
    assert journal.path.stat().st_size < 2_000
    journal.close(store)
    store.close()
    assert _journals(tmp_path) == []


def test_call_ids_are_unique_across_journals(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        first, second = IntentJournal.create(store.path), IntentJournal.create(store.path)
        ids = {journal.new_call_id() for journal in (first, second) for _ in range(1000)}
        assert len(ids) == 2000
        first.close(store)
        second.close(store)


def test_a_synchronous_full_store_keeps_the_committed_admission(tmp_path: Path) -> None:
    # An fsync per commit is a stronger promise than an un-synced journal line: keep it.
    from claudesec.config import AuditConfig, Config
    from claudesec.guard.pipeline import AuditPipeline

    audit = AuditConfig(store_path=str(tmp_path / "audit.db"), synchronous="full")
    pipeline = AuditPipeline.from_config(Config(audit=audit))
    try:
        assert getattr(pipeline.store, "journal", "none") is None
    finally:
        pipeline.close()
    assert not intents_dir(tmp_path / "audit.db").exists()  # never made for such a store


def test_a_writer_far_behind_does_not_make_every_completion_rewrite_the_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 2,000 calls admitted before any is recorded (a store stalled, then back): completing
    # them one by one must not rewrite the remaining entries each time (quadratic work).
    monkeypatch.setattr(intents, "_TRUNCATE_AT", 1_000)
    monkeypatch.setattr(intents, "_REWRITE_AT", 4_000)
    store = _store(tmp_path)
    journal = IntentJournal.create(store.path)
    ids = [journal.new_call_id() for _ in range(2000)]
    for call_id in ids:
        journal.admit(call_id, _admission(call_id))
    last = journal.path.stat().st_ino
    rewrites = 0
    for call_id in ids[:-1]:
        journal.done(call_id)
        # A rewrite makes the new file while the old one is still open: a different inode.
        inode = journal.path.stat().st_ino
        rewrites += inode != last
        last = inode
    assert 1 <= rewrites <= 8  # each rewrite keeps a quarter or less of the file
    left = [json.loads(line)[CALL_ID] for line in journal.path.read_text().splitlines()]
    assert ids[-1] in left  # the one still open survived every rewrite
    journal.close(store)
    store.close()


def test_without_flock_the_writer_commits_admissions_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Windows has no flock: no journal there, and no import scan either.
    from claudesec.audit.writer import journaled_writer

    monkeypatch.setattr(intents, "AVAILABLE", False)
    writer = journaled_writer(_store(tmp_path))
    try:
        assert writer.journal is None
        assert import_dead_journals(writer.store) == 0  # type: ignore[arg-type]
    finally:
        writer.close()
    assert not intents_dir(tmp_path / "audit.db").exists()
