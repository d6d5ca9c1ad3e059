"""Every kind of tampering is detected and located (the tests edit the SQLite file directly)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from claudesec.audit import AuditStore
from claudesec.audit.chain import record_hash
from claudesec.audit.checkpoint import Checkpoint
from claudesec.audit.verify import VerifyReport, verify_store

from .helpers import build, move, raw, recount_rollups, rehash_from, resign_checkpoints

N = 30  # checkpoints at 10, 20, 30


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "audit.db"
    build(path, N, checkpoint_every=10).close()
    return path


def check(path: Path, **kwargs: object) -> VerifyReport:
    with AuditStore.open(path, readonly=True) as store:
        return verify_store(store, **kwargs)  # type: ignore[arg-type]


def first(report: VerifyReport) -> tuple[str, int | None]:
    assert not report.ok, "tampering was not detected"
    problem = report.problems[0]
    return str(problem.kind), problem.seq


def export(path: Path) -> Checkpoint:
    with AuditStore.open(path, readonly=True) as store:
        last = store.last_checkpoint()
    assert last is not None
    return Checkpoint.from_export(last.to_export())


# --------------------------------------------------------------------------- clean stores


def test_a_clean_store_verifies(db: Path) -> None:
    report = check(db)
    assert report.ok
    assert (report.records, report.first_seq, report.last_seq, report.checkpoints) == (30, 1, 30, 3)


def test_progress_hears_the_last_record_checked(db: Path) -> None:
    heard: list[int] = []
    assert check(db, on_progress=heard.append).ok
    assert heard and heard[-1] == N
    assert heard == sorted(heard)


def test_an_empty_fresh_store_verifies(tmp_path: Path) -> None:
    build(tmp_path / "audit.db", 0).close()
    report = check(tmp_path / "audit.db")
    assert report.ok
    assert report.records == 0


def test_a_clean_store_matches_its_exported_anchor(db: Path) -> None:
    anchor = export(db)
    report = check(db, anchor=anchor)
    assert report.ok
    assert report.anchor == anchor


# --------------------------------------------------------------------------- records


def test_modified_record_is_named(db: Path) -> None:
    with raw(db) as conn:
        conn.execute("UPDATE events SET body = replace(body, 'user2', 'user9') WHERE seq = 14")
    assert first(check(db)) == ("modified", 14)


def test_modified_record_with_recomputed_hash_is_named(db: Path) -> None:
    with raw(db) as conn:
        conn.execute(
            "UPDATE events SET body = replace(body, '\"allow\"', '\"deny\"') WHERE seq = 14"
        )
        body, prev = conn.execute("SELECT body, prev_hash FROM events WHERE seq = 14").fetchone()
        conn.execute(
            "UPDATE events SET rec_hash = ? WHERE seq = 14", (record_hash(prev, 14, body.encode()),)
        )
    assert first(check(db)) == ("modified", 14)


def test_rewritten_history_is_caught_by_the_signed_checkpoint(db: Path) -> None:
    with raw(db) as conn:
        conn.execute("UPDATE events SET body = replace(body, 'user2', 'user9') WHERE seq = 14")
        rehash_from(conn, 14)
        recount_rollups(conn)
    report = check(db)
    assert first(report) == ("modified", 11)
    assert report.problems[0].checkpoint == 2


def test_deleted_record_is_named(db: Path) -> None:
    with raw(db) as conn:
        conn.execute("DELETE FROM events WHERE seq = 14")
    assert first(check(db)) == ("deleted", 14)


def test_deleted_first_record_is_named(db: Path) -> None:
    with raw(db) as conn:
        conn.execute("DELETE FROM events WHERE seq = 1")
    assert first(check(db)) == ("deleted", 1)


def test_deleted_records_with_renumbering_are_named(db: Path) -> None:
    with raw(db) as conn:
        conn.execute("DELETE FROM events WHERE seq BETWEEN 14 AND 16")
        move(conn, "seq > 16", -3)
    report = check(db)
    assert first(report) == ("deleted", 14)
    assert "3 records" in report.problems[0].message


def _forge(conn: sqlite3.Connection, seq: int, *, valid: bool) -> None:
    body = conn.execute("SELECT body FROM events WHERE seq = 1").fetchone()[0]
    body = body.replace("user1", "ghost")
    prev = conn.execute("SELECT rec_hash FROM events WHERE seq = ?", (seq - 1,)).fetchone()[0]
    digest = record_hash(prev, seq, body.encode()) if valid else b"\0" * 32
    conn.execute(
        "INSERT INTO events (seq, prev_hash, rec_hash, body) VALUES (?, ?, ?, ?)",
        (seq, prev if valid else b"\0" * 32, digest, body),
    )


@pytest.mark.parametrize("valid", [True, False], ids=["chained-forgery", "garbage-forgery"])
def test_inserted_record_is_named(db: Path, valid: bool) -> None:
    with raw(db) as conn:
        move(conn, "seq >= 14", 1)
        _forge(conn, 14, valid=valid)
    assert first(check(db)) == ("inserted", 14)


def test_appended_forgery_after_a_gap_is_a_deletion(db: Path) -> None:
    with raw(db) as conn:
        _forge(conn, 31, valid=True)
        conn.execute("UPDATE events SET seq = 33 WHERE seq = 31")
    assert first(check(db)) == ("deleted", 31)


def test_reordered_records_are_named(db: Path) -> None:
    with raw(db) as conn:
        conn.execute("UPDATE events SET seq = -1 WHERE seq = 14")
        conn.execute("UPDATE events SET seq = 14 WHERE seq = 15")
        conn.execute("UPDATE events SET seq = 15 WHERE seq = -1")
    assert first(check(db)) == ("reordered", 14)


def test_swapped_contents_are_named_as_reordered(db: Path) -> None:
    with raw(db) as conn:
        b14 = conn.execute("SELECT body FROM events WHERE seq = 14").fetchone()[0]
        b15 = conn.execute("SELECT body FROM events WHERE seq = 15").fetchone()[0]
        conn.execute("UPDATE events SET body = ? WHERE seq = 14", (b15,))
        conn.execute("UPDATE events SET body = ? WHERE seq = 15", (b14,))
    assert first(check(db)) == ("reordered", 14)


# --------------------------------------------------------------------------- truncation


def test_tail_cut_after_a_checkpoint_is_truncation(db: Path) -> None:
    with raw(db) as conn:
        conn.execute("DELETE FROM events WHERE seq > 25")
        recount_rollups(conn)
    report = check(db)
    assert first(report) == ("truncated", 26)
    assert "26..30" in report.problems[0].message


def test_tail_and_checkpoints_cut_together_need_the_exported_anchor(db: Path) -> None:
    anchor = export(db)
    with raw(db) as conn:
        conn.execute("DELETE FROM events WHERE seq > 20")
        conn.execute("DELETE FROM checkpoints WHERE number = 3")
        recount_rollups(conn)
    assert check(db).ok  # the honest limit: nothing on the host can tell
    report = check(db, anchor=anchor)
    assert first(report)[0] == "truncated"
    assert report.problems[0].checkpoint == 3


def test_an_emptied_store_is_truncated_against_its_anchor(db: Path) -> None:
    anchor = export(db)
    with raw(db) as conn:
        conn.execute("DELETE FROM events")
        conn.execute("DELETE FROM checkpoints")
        conn.execute("DELETE FROM rollups")
    assert first(check(db, anchor=anchor))[0] == "truncated"


# --------------------------------------------------------------------------- checkpoints


def test_bad_checkpoint_signature_is_named(db: Path) -> None:
    with raw(db) as conn:
        conn.execute("UPDATE checkpoints SET signature = zeroblob(64) WHERE number = 2")
    report = check(db)
    assert first(report) == ("bad_signature", 20)
    assert report.problems[0].checkpoint == 2


def test_edited_checkpoint_fields_break_its_signature(db: Path) -> None:
    with raw(db) as conn:
        conn.execute("UPDATE checkpoints SET seq = 19 WHERE number = 2")
    assert first(check(db))[0] == "bad_signature"


def test_deleted_checkpoint_is_named(db: Path) -> None:
    with raw(db) as conn:
        conn.execute("DELETE FROM checkpoints WHERE number = 2")
    report = check(db)
    assert first(report)[0] == "deleted"
    assert report.problems[0].checkpoint == 2


def _resign_with_attacker_key(conn: sqlite3.Connection) -> bytes:
    """Rewrite history, then re-sign every checkpoint with a key the attacker made."""
    conn.execute("UPDATE events SET body = replace(body, 'user2', 'user9') WHERE seq = 14")
    rehash_from(conn, 14)
    recount_rollups(conn)
    return resign_checkpoints(conn)


def test_a_replaced_signing_key_is_caught_by_the_anchor(db: Path) -> None:
    with AuditStore.open(db, readonly=True) as store:
        first_cp = store.checkpoints()[0]
        genuine_key = store.public_key()
    anchor = Checkpoint.from_export(first_cp.to_export())
    with raw(db) as conn:
        _resign_with_attacker_key(conn)
    assert check(db).ok  # self-consistent forgery: only an outside anchor or key can tell
    assert first(check(db, anchor=anchor))[0] == "bad_signature"
    assert first(check(db, public_key=genuine_key))[0] == "bad_signature"
    assert first(check(db, local_public_key=genuine_key))[0] == "bad_signature"


def test_an_anchor_from_another_store_means_the_store_was_replaced(
    db: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other" / "audit.db"
    build(other, 10).close()
    assert first(check(db, anchor=export(other)))[0] == "replaced"


def test_a_forged_anchor_file_is_refused(db: Path) -> None:
    from claudesec.errors import UsageError

    data = export(db).to_export()
    data["seq"] = 5
    with pytest.raises(UsageError, match="signature"):
        Checkpoint.from_export(data)


# --------------------------------------------------------------------------- side tables


def test_tampered_rollups_are_reported(db: Path) -> None:
    with raw(db) as conn:
        conn.execute("UPDATE rollups SET input_tokens = 0")
    report = check(db)
    assert first(report)[0] == "modified"
    assert "rollups" in report.problems[0].message
    assert check(db, check_rollups=False).ok


def test_a_forged_prune_marker_is_reported(db: Path) -> None:
    with raw(db) as conn:
        conn.execute("INSERT INTO meta VALUES ('pruned_through_checkpoint', '2')")
    assert first(check(db)) == ("modified", 20)
