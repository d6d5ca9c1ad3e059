"""The attacker's side of `logs verify`: every edit someone with write access to the store file
can make, against an auditor who holds an exported anchor and the signing key's public half
(`logs verify --anchor A --public-key K`). Each edit is a real SQLite statement on the file;
each must be found, and the first damaged record named."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from claudesec.audit import AuditStore
from claudesec.audit.checkpoint import Checkpoint
from claudesec.audit.verify import VerifyReport, verify_store
from claudesec.errors import CheckFailed

from .helpers import (
    BASE_NS,
    DAY_NS,
    append_forged,
    build,
    event,
    move,
    open_store,
    raw,
    recount_rollups,
    rehash_from,
    resign_checkpoints,
    swap,
)

N = 35  # checkpoints #1..#3 at records 10, 20, 30; records 31..35 are covered by the chain only


@dataclass(frozen=True)
class Auditor:
    """What the auditor keeps off the host: the last exported checkpoint and the public key."""

    anchor: Checkpoint
    public_key: bytes


def _auditor(path: Path) -> Auditor:
    with AuditStore.open(path, readonly=True) as store:
        last = store.last_checkpoint()
        key = store.public_key()
    assert last is not None and key is not None
    return Auditor(Checkpoint.from_export(json.loads(json.dumps(last.to_export()))), key)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "audit.db"
    build(path, N, checkpoint_every=10).close()
    return path


def audit(path: Path, auditor: Auditor | None, **kwargs: object) -> VerifyReport:
    options: dict[str, object] = {}
    if auditor is not None:
        options = {"anchor": auditor.anchor, "public_key": auditor.public_key}
    options.update(kwargs)
    with AuditStore.open(path, readonly=True) as store:
        return verify_store(store, **options)  # type: ignore[arg-type]


def first(report: VerifyReport) -> tuple[str, int | None]:
    assert not report.ok, "the tampering was not detected"
    problem = report.problems[0]
    return str(problem.kind), problem.seq


# --------------------------------------------------------------------------- the edits

Edit = Callable[[sqlite3.Connection], None]


def _sql(*statements: str) -> Edit:
    def edit(conn: sqlite3.Connection) -> None:
        for statement in statements:
            conn.execute(statement)

    return edit


def _swap(a: int, b: int) -> Edit:
    return lambda conn: swap(conn, a, b)


def _swap_contents(a: int, b: int) -> Edit:
    def edit(conn: sqlite3.Connection) -> None:
        body_a = conn.execute("SELECT body FROM events WHERE seq = ?", (a,)).fetchone()[0]
        body_b = conn.execute("SELECT body FROM events WHERE seq = ?", (b,)).fetchone()[0]
        conn.execute("UPDATE events SET body = ? WHERE seq = ?", (body_b, a))
        conn.execute("UPDATE events SET body = ? WHERE seq = ?", (body_a, b))

    return edit


def _renumbered_deletion(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM events WHERE seq BETWEEN 14 AND 16")
    move(conn, "seq > 16", -3)


def _rewrite_from_14(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE events SET body = replace(body, 'user2', 'user9') WHERE seq = 14")
    rehash_from(conn, 14)
    recount_rollups(conn)


def _insert_forgery(conn: sqlite3.Connection) -> None:
    move(conn, "seq >= 14", 1)
    body = conn.execute("SELECT body FROM events WHERE seq = 1").fetchone()[0]
    conn.execute(
        "INSERT INTO events (seq, prev_hash, rec_hash, body) VALUES (14, zeroblob(32), "
        "zeroblob(32), ?)",
        (body.replace("user1", "ghost"),),
    )


def _fake_prune(through: int, checkpoint: int) -> Edit:
    """Delete the oldest records and set the marker a real prune leaves."""

    def edit(conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM events WHERE seq <= ?", (through,))
        conn.execute(
            "INSERT OR REPLACE INTO meta VALUES ('pruned_through_checkpoint', ?)",
            (str(checkpoint),),
        )
        recount_rollups(conn)

    return edit


def _prune_body(through: int, checkpoint: int, deleted: int) -> str:
    from claudesec.audit.events import AuditEvent

    return AuditEvent(
        type="prune",
        time_ns=BASE_NS + 50 * DAY_NS,
        reason="retention",
        extra={
            "pruned_through_seq": through,
            "pruned_records": deleted,
            "anchor_checkpoint": checkpoint,
        },
    ).canonical_json()


def _fake_prune_with_event(conn: sqlite3.Connection) -> None:
    """The careful attacker also chains the prune event a real prune writes."""
    _fake_prune(20, 2)(conn)
    append_forged(conn, _prune_body(20, 2, 20))
    recount_rollups(conn)


def _fake_prune_resigned(conn: sqlite3.Connection) -> None:
    _fake_prune_with_event(conn)
    resign_checkpoints(conn)


def _resign_rewritten_history(conn: sqlite3.Connection) -> None:
    _rewrite_from_14(conn)
    resign_checkpoints(conn)


# name: (edit, the first problem: kind and record)
ATTACKS: dict[str, tuple[Edit, tuple[str, int | None]]] = {
    "delete-head": (_sql("DELETE FROM events WHERE seq <= 3"), ("deleted", 1)),
    "delete-middle": (_sql("DELETE FROM events WHERE seq = 14"), ("deleted", 14)),
    "delete-middle-renumbered": (_renumbered_deletion, ("deleted", 14)),
    "delete-tail-past-a-checkpoint": (_sql("DELETE FROM events WHERE seq > 25"), ("truncated", 26)),
    "delete-tail-and-its-checkpoint": (
        _sql("DELETE FROM events WHERE seq > 20", "DELETE FROM checkpoints WHERE number = 3"),
        ("truncated", 21),
    ),
    "delete-tail-and-every-checkpoint": (
        _sql("DELETE FROM events WHERE seq > 15", "DELETE FROM checkpoints"),
        ("truncated", 16),
    ),
    "empty-the-store": (
        _sql("DELETE FROM events", "DELETE FROM checkpoints", "DELETE FROM rollups"),
        ("truncated", 1),
    ),
    "drop-a-checkpoint": (_sql("DELETE FROM checkpoints WHERE number = 2"), ("deleted", None)),
    "drop-every-checkpoint": (_sql("DELETE FROM checkpoints"), ("deleted", None)),
    "swap-neighbours": (_swap(14, 15), ("reordered", 14)),
    "swap-apart": (_swap(14, 18), ("reordered", 14)),
    "swap-across-a-checkpoint": (_swap(19, 21), ("reordered", 19)),
    "swap-first-and-last": (_swap(1, 35), ("reordered", 1)),
    "swap-contents": (_swap_contents(14, 18), ("reordered", 14)),
    "modify": (
        _sql("UPDATE events SET body = replace(body, 'user2', 'user9') WHERE seq = 14"),
        ("modified", 14),
    ),
    "modify-and-rehash": (_rewrite_from_14, ("modified", 11)),
    "insert": (_insert_forgery, ("inserted", 14)),
    "rollups": (_sql("UPDATE rollups SET input_tokens = 0"), ("modified", None)),
    "prune-marker-over-kept-records": (
        _sql("INSERT INTO meta VALUES ('pruned_through_checkpoint', '2')"),
        ("modified", 20),
    ),
    "fake-prune-marker": (_fake_prune(20, 2), ("deleted", 1)),
    "fake-prune-with-a-chained-prune-event": (_fake_prune_with_event, ("deleted", 1)),
    "fake-prune-resigned-with-another-key": (_fake_prune_resigned, ("bad_signature", 10)),
    "rewrite-and-resign-with-another-key": (_resign_rewritten_history, ("bad_signature", 10)),
}


@pytest.mark.parametrize("name", list(ATTACKS))
def test_every_edit_is_found_and_located(db: Path, name: str) -> None:
    auditor = _auditor(db)
    assert audit(db, auditor).ok
    edit, expected = ATTACKS[name]
    with raw(db) as conn:
        edit(conn)
    assert first(audit(db, auditor)) == expected


def test_dropped_checkpoints_are_named_even_when_the_records_are_intact(db: Path) -> None:
    auditor = _auditor(db)
    with raw(db) as conn:
        conn.execute("DELETE FROM checkpoints WHERE number >= 2")
    report = audit(db, auditor)
    assert first(report) == ("deleted", None)
    assert report.problems[0].checkpoint == 2


def test_only_the_anchor_names_the_first_record_cut_with_its_checkpoints(db: Path) -> None:
    auditor = _auditor(db)
    with raw(db) as conn:
        conn.execute("DELETE FROM events WHERE seq > 20")
        conn.execute("DELETE FROM checkpoints WHERE number = 3")
        recount_rollups(conn)
    report = audit(db, None, anchor=auditor.anchor)
    assert first(report) == ("truncated", 21)
    assert report.problems[0].checkpoint == 3
    assert "21..30" in report.problems[0].message


def test_records_rewritten_under_a_dropped_checkpoint_disagree_with_the_anchor(db: Path) -> None:
    auditor = _auditor(db)
    with raw(db) as conn:
        conn.execute("DELETE FROM checkpoints WHERE number = 3")
        conn.execute("UPDATE events SET body = replace(body, 'user1', 'user7') WHERE seq = 28")
        rehash_from(conn, 28)
    report = audit(db, None, anchor=auditor.anchor)
    assert first(report)[0] in ("deleted", "modified")
    assert any(p.kind == "modified" and p.seq == 21 for p in report.problems)


def test_an_anchor_signed_by_another_key_than_the_trusted_one_is_refused(db: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from claudesec.audit.checkpoint import public_key_bytes

    auditor = _auditor(db)
    stranger = public_key_bytes(Ed25519PrivateKey.generate())
    report = audit(db, None, anchor=auditor.anchor, public_key=stranger)
    assert first(report) == ("bad_signature", None)
    assert "the anchor is signed by" in report.problems[0].message


# --------------------------------------------------------------------------- replaced stores


def _replace(path: Path, tmp_path: Path, *, checkpoint_every: int) -> None:
    """Put a store built elsewhere (another id, another key) where the genuine one was."""
    other = tmp_path / "elsewhere" / "audit.db"
    build(other, 12, checkpoint_every=checkpoint_every).close()
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    shutil.copyfile(other, path)


def test_a_replacement_store_signed_by_another_key_is_refused(db: Path, tmp_path: Path) -> None:
    auditor = _auditor(db)
    _replace(db, tmp_path, checkpoint_every=10)
    assert first(audit(db, auditor)) == ("replaced", None)
    assert first(audit(db, None, public_key=auditor.public_key)) == ("bad_signature", 10)


def test_a_replacement_store_nothing_signed_is_refused_given_the_public_key(
    db: Path, tmp_path: Path
) -> None:
    auditor = _auditor(db)
    _replace(db, tmp_path, checkpoint_every=0)
    report = audit(db, None, public_key=auditor.public_key)
    assert first(report) == ("unsigned", None)
    assert "no checkpoint signed by" in report.problems[0].message
    assert first(audit(db, auditor))[0] == "replaced"


def test_a_young_store_says_nothing_is_signed_yet_given_the_public_key(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    build(path, 5, checkpoint_every=10).close()
    with AuditStore.open(path, readonly=True) as store:
        key = store.public_key()
    assert audit(path, None).ok  # its own host has nothing to compare with yet
    report = audit(path, None, public_key=key)
    assert first(report) == ("unsigned", None)
    assert "nothing" in report.problems[0].message


def test_an_empty_store_with_a_public_key_is_ok(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    build(path, 0).close()
    with AuditStore.open(path, readonly=True) as store:
        key = store.public_key()
    assert audit(path, None, public_key=key).ok


# --------------------------------------------------------------------------- real prunes


def _aged(path: Path) -> AuditStore:
    """40 records: 1-25 a hundred days old, 26-40 recent; checkpoints every 10."""
    store = open_store(path, checkpoint_every=10)
    for i in range(1, 41):
        store.append(event(i, time_ns=BASE_NS + (0 if i <= 25 else 100) * DAY_NS + i))
    return store


def test_a_real_prune_verifies_against_the_anchor_and_key(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    with _aged(path) as store:
        auditor = _auditor(path)
        result = store.prune(older_than_ns=BASE_NS + 50 * DAY_NS)
    assert result.through_seq == 20
    report = audit(path, auditor)
    assert report.ok, report.problems
    assert (report.first_seq, report.pruned_through) == (21, 20)


def test_a_real_prune_does_not_cover_a_faked_one_after_it(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    with _aged(path) as store:
        auditor = _auditor(path)
        assert store.prune(older_than_ns=BASE_NS + 15).through_seq == 10
    with raw(path) as conn:
        _fake_prune(20, 2)(conn)
    assert first(audit(path, auditor)) == ("deleted", 11)


def test_deleting_the_prune_event_unproves_the_prune(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    with _aged(path) as store:
        auditor = _auditor(path)
        record = store.prune(older_than_ns=BASE_NS + 50 * DAY_NS).record
    assert record is not None
    with raw(path) as conn:
        conn.execute("DELETE FROM events WHERE seq = ?", (record.seq,))
        recount_rollups(conn)
    assert first(audit(path, auditor)) == ("deleted", 1)


def test_a_prune_event_edited_to_cover_more_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    with _aged(path) as store:
        auditor = _auditor(path)
        record = store.prune(older_than_ns=BASE_NS + 15).record  # through checkpoint #1
    assert record is not None
    with raw(path) as conn:
        conn.execute("DELETE FROM events WHERE seq <= 20")
        conn.execute(
            "UPDATE events SET body = replace(replace(body, '\"pruned_through_seq\":10', "
            "'\"pruned_through_seq\":20'), '\"anchor_checkpoint\":1', '\"anchor_checkpoint\":2') "
            "WHERE seq = ?",
            (record.seq,),
        )
        rehash_from(conn, record.seq)
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'pruned_through_checkpoint'")
        recount_rollups(conn)
    # The only prune event no longer verifies: nothing proves any prune at all.
    assert first(audit(path, auditor)) == ("deleted", 1)


def test_prune_refuses_to_launder_a_faked_prune(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    _aged(path).close()
    with raw(path) as conn:
        _fake_prune(20, 2)(conn)
    with open_store(path) as store, pytest.raises(CheckFailed, match="damaged"):
        store.prune(older_than_ns=BASE_NS + 50 * DAY_NS)
    with raw(path) as conn:
        assert conn.execute("SELECT min(seq), count(*) FROM events").fetchone() == (21, 20)
