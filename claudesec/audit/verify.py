"""``logs verify``: walk the hash chain and the signed checkpoints, name the first damage.

The walk is a single ordered scan hashing each record once (a few seconds per million
records). Only when it meets a record that does not fit does it look around that record to
classify the damage:

* **modified** - the record's content no longer matches its hash, or its hash was recomputed
  but the next record was chained to the original, or it disagrees with a signed checkpoint;
* **deleted** - a gap in ``seq``, or later records renumbered to close one;
* **inserted** - a record that is not part of the original chain sits before the original;
* **reordered** - the original record for this position sits elsewhere;
* **truncated** - the store ends before a checkpoint (or an exported anchor) says it should;
* **bad_signature** - a checkpoint's signature fails, or it was signed by a key other than
  the trusted one (``--public-key``, the anchor's key, or the store's own);
* **replaced** - the store is not the one the anchor was exported from.

Without an exported anchor, a tail cut together with its checkpoints, or a history re-signed
with a key the attacker controls, cannot be told from a genuine store; the report says how
many records are covered only by the chain.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from claudesec.audit.checkpoint import Checkpoint, checkpoint_genesis
from claudesec.audit.store import (
    _CP_SELECT_ALL,
    ROLLUP_COUNTERS_SQL,
    ROLLUP_KEY_SQL,
    AuditStore,
    DamagedStore,
    _checkpoint_from_row,
    genesis_hash,
    record_hash,
)

_RECORD_DOMAIN = b"claudesec.audit.record.v1\x00"
_WINDOW = 256  # rows examined around a bad record to classify the damage
_RENUMBER_SEARCH = 100_000  # how far a renumbered record may have moved


class Damage(StrEnum):
    MODIFIED = "modified"
    DELETED = "deleted"
    INSERTED = "inserted"
    REORDERED = "reordered"
    TRUNCATED = "truncated"
    BAD_SIGNATURE = "bad_signature"
    REPLACED = "replaced"


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding: its kind, the first bad record (or checkpoint), and a sentence."""

    kind: Damage
    message: str
    seq: int | None = None
    checkpoint: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "seq": self.seq,
            "checkpoint": self.checkpoint,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class VerifyReport:
    path: str
    records: int
    first_seq: int
    last_seq: int
    checkpoints: int
    last_checkpoint: Checkpoint | None
    pruned_through: int
    public_key: bytes | None
    anchor: Checkpoint | None
    problems: tuple[Problem, ...] = field(default=())
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def unanchored(self) -> int:
        """Records after the last checkpoint: protected by the chain alone."""
        covered = self.last_checkpoint.seq if self.last_checkpoint else 0
        return max(0, self.last_seq - max(covered, self.pruned_through))

    def to_dict(self) -> dict[str, Any]:
        from claudesec.audit.secrets import public_key_fingerprint

        return {
            "ok": self.ok,
            "path": self.path,
            "records": self.records,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "checkpoints": self.checkpoints,
            "last_checkpoint": self.last_checkpoint.number if self.last_checkpoint else None,
            "last_checkpoint_seq": self.last_checkpoint.seq if self.last_checkpoint else None,
            "pruned_through_seq": self.pruned_through,
            "unanchored_records": self.unanchored,
            "public_key": public_key_fingerprint(self.public_key) if self.public_key else None,
            "anchor_checkpoint": self.anchor.number if self.anchor else None,
            "problems": [p.to_dict() for p in self.problems],
            "elapsed_s": round(self.elapsed_s, 3),
        }


def verify_store(
    store: AuditStore,
    *,
    anchor: Checkpoint | None = None,
    public_key: bytes | None = None,
    local_public_key: bytes | None = None,
    check_rollups: bool = True,
) -> VerifyReport:
    """Check everything in one consistent snapshot of ``store``.

    ``anchor``: an exported checkpoint kept off the host. ``public_key``: the key the auditor
    trusts. ``local_public_key``: this host's signing key, when known, compared with the key
    recorded in the store.
    """
    started = time.perf_counter()
    try:
        return _verify_snapshot(
            store,
            anchor=anchor,
            public_key=public_key,
            local_public_key=local_public_key,
            check_rollups=check_rollups,
            started=started,
        )
    except DamagedStore as exc:
        # A file SQLite can no longer read is the most thorough tampering of all.
        problem = Problem(Damage.MODIFIED, f"{exc.message}: the file itself was damaged")
        return VerifyReport(
            str(store.path),
            0,
            0,
            0,
            0,
            None,
            0,
            None,
            anchor,
            (problem,),
            time.perf_counter() - started,
        )


def _verify_snapshot(
    store: AuditStore,
    *,
    anchor: Checkpoint | None,
    public_key: bytes | None,
    local_public_key: bytes | None,
    check_rollups: bool,
    started: float,
) -> VerifyReport:
    with store.snapshot() as conn:
        if not store.initialised(conn):
            problems: list[Problem] = []
            if anchor is not None:
                problems.append(
                    Problem(
                        Damage.TRUNCATED,
                        f"the store is empty but the anchor covers records up to {anchor.seq}",
                        seq=1,
                        checkpoint=anchor.number,
                    )
                )
            return VerifyReport(
                str(store.path),
                0,
                0,
                0,
                0,
                None,
                0,
                None,
                anchor,
                tuple(problems),
                time.perf_counter() - started,
            )
        report = _verify(
            conn,
            store,
            anchor=anchor,
            public_key=public_key,
            local_public_key=local_public_key,
            check_rollups=check_rollups,
        )
    return _with_elapsed(report, time.perf_counter() - started)


def _with_elapsed(report: VerifyReport, elapsed: float) -> VerifyReport:
    return VerifyReport(
        report.path,
        report.records,
        report.first_seq,
        report.last_seq,
        report.checkpoints,
        report.last_checkpoint,
        report.pruned_through,
        report.public_key,
        report.anchor,
        report.problems,
        elapsed,
    )


def _verify(
    conn: sqlite3.Connection,
    store: AuditStore,
    *,
    anchor: Checkpoint | None,
    public_key: bytes | None,
    local_public_key: bytes | None,
    check_rollups: bool,
) -> VerifyReport:
    store_id = _meta_bytes(conn, "store_id")
    problems: list[Problem] = []
    if store_id is None:
        problems.append(Problem(Damage.MODIFIED, "the store's id is missing from its metadata"))
        return VerifyReport(str(store.path), 0, 0, 0, 0, None, 0, None, anchor, tuple(problems))
    stored_key = _meta_bytes(conn, "public_key")
    checkpoints = [
        _checkpoint_from_row(store_id, row) for row in conn.execute(_CP_SELECT_ALL).fetchall()
    ]

    # ---- which key is trusted, and does the anchor belong here
    trusted = public_key or (anchor.public_key if anchor else None) or stored_key
    if anchor is not None and anchor.store_id != store_id:
        problems.append(
            Problem(
                Damage.REPLACED,
                f"the store id {store_id.hex()} is not the anchor's ({anchor.store_id.hex()}): "
                "this is a different (possibly substituted) audit store",
                checkpoint=anchor.number,
            )
        )
    if local_public_key is not None and stored_key is not None and local_public_key != stored_key:
        problems.append(
            Problem(
                Damage.BAD_SIGNATURE,
                "the public key recorded in the store is not this host's signing key: "
                "the store's key was replaced",
            )
        )
    if checkpoints and stored_key is None and public_key is None and anchor is None:
        problems.append(
            Problem(Damage.MODIFIED, "the store has checkpoints but its public key is missing")
        )
        trusted = checkpoints[0].public_key

    cp_problem = _check_checkpoints(checkpoints, store_id, trusted)
    if cp_problem is not None:
        problems.append(cp_problem)

    if anchor is not None and anchor.store_id == store_id:
        anchor_problem = _check_anchor(anchor, checkpoints)
        if anchor_problem is not None:
            problems.append(anchor_problem)

    # ---- the records
    start, prev, pruned_problem = _start(conn, store_id, checkpoints)
    if pruned_problem is not None:
        problems.append(pruned_problem)
    cp_by_seq: dict[int, Checkpoint] = {}
    for checkpoint in checkpoints:
        if checkpoint.seq >= start:
            cp_by_seq.setdefault(checkpoint.seq, checkpoint)
    walk = _walk(conn, start, prev, cp_by_seq=cp_by_seq, checkpoints=checkpoints)
    last_seq = walk.last_seq
    first_row = conn.execute("SELECT min(seq), count(*) FROM events").fetchone()
    records = int(first_row[1])
    first_seq = int(first_row[0]) if first_row[0] is not None else 0
    if walk.problem is not None:
        problems.append(walk.problem)
    else:
        highest = max((c for c in checkpoints), key=lambda c: c.seq, default=None)
        if highest is not None and highest.seq > last_seq:
            problems.append(_truncated(last_seq, highest.seq, f"checkpoint #{highest.number}"))
        if (
            anchor is not None
            and anchor.seq > last_seq
            and not any(p.kind is Damage.TRUNCATED for p in problems)
        ):
            problems.append(_truncated(last_seq, anchor.seq, "the anchor"))
        if check_rollups and not problems:
            rollup_problem = _check_rollups(conn)
            if rollup_problem is not None:
                problems.append(rollup_problem)

    return VerifyReport(
        path=str(store.path),
        records=records,
        first_seq=first_seq,
        last_seq=last_seq,
        checkpoints=len(checkpoints),
        last_checkpoint=checkpoints[-1] if checkpoints else None,
        pruned_through=start - 1,
        public_key=trusted,
        anchor=anchor,
        problems=tuple(problems),
    )


def _meta_bytes(conn: sqlite3.Connection, key: str) -> bytes | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    if row is None:
        return None
    try:
        return bytes.fromhex(row[0])
    except ValueError:
        return b""


def _truncated(last_seq: int, expected: int, by: str) -> Problem:
    return Problem(
        Damage.TRUNCATED,
        f"the log ends at record {last_seq} but {by} covers records up to {expected}: "
        f"records {last_seq + 1}..{expected} were cut off",
        seq=last_seq + 1,
    )


# --------------------------------------------------------------------------- checkpoints


def _check_checkpoints(
    checkpoints: list[Checkpoint], store_id: bytes, trusted: bytes | None
) -> Problem | None:
    from claudesec.audit.secrets import public_key_fingerprint

    expected_prev = checkpoint_genesis(store_id)
    previous_seq = 0
    for index, checkpoint in enumerate(checkpoints, start=1):
        number = checkpoint.number
        if number != index:
            kind = Damage.DELETED if number > index else Damage.INSERTED
            return Problem(
                kind,
                f"checkpoint #{index} is missing (the next one is #{number})"
                if number > index
                else f"checkpoint #{number} appears out of sequence",
                checkpoint=index,
            )
        if trusted is not None and checkpoint.public_key != trusted:
            return Problem(
                Damage.BAD_SIGNATURE,
                f"checkpoint #{number} is signed by {public_key_fingerprint(checkpoint.public_key)}"
                f", not the trusted key {public_key_fingerprint(trusted)}",
                seq=checkpoint.seq,
                checkpoint=number,
            )
        if not checkpoint.signature_valid(trusted):
            return Problem(
                Damage.BAD_SIGNATURE,
                f"checkpoint #{number} (record {checkpoint.seq}) has a bad signature",
                seq=checkpoint.seq,
                checkpoint=number,
            )
        if checkpoint.prev_hash != expected_prev:
            return Problem(
                Damage.MODIFIED,
                f"checkpoint #{number} does not chain to checkpoint #{number - 1}",
                checkpoint=number,
            )
        if checkpoint.seq < previous_seq:
            return Problem(
                Damage.REORDERED,
                f"checkpoint #{number} covers record {checkpoint.seq}, before its predecessor",
                checkpoint=number,
            )
        expected_prev = checkpoint.hash
        previous_seq = checkpoint.seq
    return None


def _check_anchor(anchor: Checkpoint, checkpoints: list[Checkpoint]) -> Problem | None:
    if anchor.number > len(checkpoints):
        have = f"#{len(checkpoints)}" if checkpoints else "none"
        return Problem(
            Damage.TRUNCATED,
            f"the anchor is checkpoint #{anchor.number} (record {anchor.seq}) but the store's "
            f"last checkpoint is {have}: the log was cut back",
            seq=anchor.seq,
            checkpoint=anchor.number,
        )
    mine = checkpoints[anchor.number - 1]
    if mine.number == anchor.number and mine.hash != anchor.hash:
        return Problem(
            Damage.MODIFIED,
            f"checkpoint #{anchor.number} differs from the exported anchor: the history up to "
            f"record {anchor.seq} was rewritten",
            seq=anchor.seq,
            checkpoint=anchor.number,
        )
    return None


# --------------------------------------------------------------------------- records


def _start(
    conn: sqlite3.Connection, store_id: bytes, checkpoints: list[Checkpoint]
) -> tuple[int, bytes, Problem | None]:
    """The first seq to walk and the hash it must chain to (after a prune: the anchor)."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'pruned_through_checkpoint'").fetchone()
    if row is None:
        return 1, genesis_hash(store_id), None
    number = int(row[0])
    anchor = next((c for c in checkpoints if c.number == number), None)
    if anchor is None:
        return (
            1,
            genesis_hash(store_id),
            Problem(
                Damage.DELETED,
                f"checkpoint #{number}, the anchor of the last prune, is missing",
                checkpoint=number,
            ),
        )
    leftover = conn.execute("SELECT max(seq) FROM events WHERE seq <= ?", (anchor.seq,)).fetchone()[
        0
    ]
    if leftover is not None:
        return (
            anchor.seq + 1,
            anchor.rec_hash,
            Problem(
                Damage.MODIFIED,
                f"record {leftover} is still present although the log was pruned through "
                f"record {anchor.seq}: the prune marker was tampered with",
                seq=int(leftover),
            ),
        )
    return anchor.seq + 1, anchor.rec_hash, None


@dataclass(frozen=True, slots=True)
class _Walk:
    last_seq: int
    problem: Problem | None


def _walk(
    conn: sqlite3.Connection,
    start: int,
    prev: bytes,
    *,
    cp_by_seq: dict[int, Checkpoint],
    checkpoints: list[Checkpoint],
    until: int | None = None,
) -> _Walk:
    sha256 = hashlib.sha256
    domain = _RECORD_DOMAIN
    expected = start
    sql = "SELECT seq, prev_hash, rec_hash, CAST(body AS BLOB) FROM events WHERE seq >= ?"
    params: tuple[int, ...] = (start,)
    if until is not None:
        sql += " AND seq <= ?"
        params = (start, until)
    cursor = conn.execute(sql + " ORDER BY seq", params)
    cursor.arraysize = 4096
    while True:
        rows = cursor.fetchmany()
        if not rows:
            break
        for seq, p, h, body in rows:
            if (
                seq != expected
                or p != prev
                or sha256(domain + p + seq.to_bytes(8, "big") + body).digest() != h
            ):
                return _Walk(expected - 1, _diagnose(conn, start, expected, prev, seq))
            if cp_by_seq and seq in cp_by_seq:
                checkpoint = cp_by_seq[seq]
                if checkpoint.rec_hash != h:
                    return _Walk(expected - 1, _rewritten(checkpoint, checkpoints, start))
            prev = h
            expected += 1
    return _Walk(expected - 1, None)


def _rewritten(checkpoint: Checkpoint, checkpoints: list[Checkpoint], start: int) -> Problem:
    earlier = [c.seq for c in checkpoints if c.seq < checkpoint.seq and c.seq >= start - 1]
    since = (max(earlier) if earlier else start - 1) + 1
    return Problem(
        Damage.MODIFIED,
        f"record {checkpoint.seq} does not match signed checkpoint #{checkpoint.number}: "
        f"records {since}..{checkpoint.seq} were rewritten with recomputed hashes",
        seq=since,
        checkpoint=checkpoint.number,
    )


_Row = tuple[bytes, bytes, bytes]  # prev_hash, rec_hash, body


def _rows(conn: sqlite3.Connection, low: int, high: int) -> dict[int, _Row]:
    return {
        int(seq): (bytes(p), bytes(h), bytes(b))
        for seq, p, h, b in conn.execute(
            "SELECT seq, prev_hash, rec_hash, CAST(body AS BLOB) FROM events "
            "WHERE seq BETWEEN ? AND ?",
            (low, high),
        )
    }


def _fits(row: _Row, seq: int) -> bool:
    """Whether ``row`` hashes correctly as record ``seq`` with the prev_hash it carries."""
    return record_hash(row[0], seq, row[2]) == row[1]


def _diagnose(conn: sqlite3.Connection, start: int, k: int, prev: bytes, found: int) -> Problem:
    """Classify the damage at expected record ``k`` (``found`` is the seq actually there)."""
    if found != k:
        missing = f"record {k} is" if found == k + 1 else f"records {k}..{found - 1} are"
        return Problem(Damage.DELETED, f"{missing} missing (deleted)", seq=k)
    window = _rows(conn, k, k + _WINDOW)
    row = window[k]
    self_ok = _fits(row, k)
    link_ok = row[0] == prev
    following = window.get(k + 1)
    original_next = following is not None and following[0] == prev and _fits(following, k)

    if link_ok and self_ok:  # pragma: no cover - the walk only calls us on a mismatch
        return Problem(Damage.MODIFIED, f"record {k} is damaged", seq=k)

    if original_next:
        # The record that belongs at k sits at k+1: something was put in front of it.
        elsewhere = _fits_elsewhere(row, k)
        if elsewhere is not None:
            return Problem(
                Damage.REORDERED,
                f"record {k} is out of order: the original record {k} is at {k + 1}, and the "
                f"record at {k} belongs at {elsewhere}",
                seq=k,
            )
        return Problem(
            Damage.INSERTED,
            f"record {k} was inserted: it is not part of the chain, and the original record "
            f"{k} now sits at {k + 1}",
            seq=k,
        )

    if self_ok and not link_ok:
        for seq, other in window.items():
            if seq > k and other[1] == row[0]:
                return Problem(
                    Damage.REORDERED,
                    f"record {k} is out of order: it was chained after record {seq}",
                    seq=k,
                )
        if k - 1 >= start:
            return Problem(
                Damage.MODIFIED,
                f"record {k - 1} was modified: its hash was recomputed, but record {k} is "
                "chained to the original",
                seq=k - 1,
            )
        return Problem(
            Damage.MODIFIED,
            f"record {k} does not chain to the start of the log",
            seq=k,
        )

    if link_ok:  # the content or the stored hash was edited in place
        for seq, other in window.items():
            if seq != k and record_hash(prev, k, other[2]) == row[1]:
                return Problem(
                    Damage.REORDERED,
                    f"record {k} is out of order: its content was swapped with record {seq}",
                    seq=k,
                )
        return Problem(
            Damage.MODIFIED,
            f"record {k} was modified: its content does not match its hash",
            seq=k,
        )

    # Neither its content nor its link fits: the row moved here from another position.
    if k - 1 >= start and _fits(row, k - 1):
        return Problem(
            Damage.INSERTED,
            f"record {k - 1} was inserted: the original record {k - 1} was pushed to {k}",
            seq=k - 1,
        )
    moved = _fits_elsewhere(row, k)
    if moved is not None and moved > k:
        gap = moved - k
        what = "record" if gap == 1 else f"{gap} records"
        return Problem(
            Damage.DELETED,
            f"{what} deleted at {k}: later records were renumbered to close the gap "
            f"(the record at {k} is the original {moved})",
            seq=k,
        )
    if moved is not None:
        return Problem(
            Damage.REORDERED,
            f"record {k} is out of order: it belongs at {moved}",
            seq=k,
        )
    return Problem(Damage.MODIFIED, f"record {k} was modified: it does not fit the chain", seq=k)


def _fits_elsewhere(row: _Row, k: int) -> int | None:
    """The seq this row was originally written at, if within reach."""
    prev, digest, body = row
    base = _RECORD_DOMAIN + prev
    for distance in range(1, _RENUMBER_SEARCH):
        for seq in (k + distance, k - distance):
            if seq > 0 and hashlib.sha256(base + seq.to_bytes(8, "big") + body).digest() == digest:
                return seq
    return None


def check_range(conn: sqlite3.Connection, start: int, prev: bytes, until: int) -> str | None:
    """Walk records ``start..until`` (used by prune before it deletes them)."""
    walk = _walk(conn, start, prev, cp_by_seq={}, checkpoints=[], until=until)
    if walk.problem is not None:
        return f"{walk.problem.kind}: {walk.problem.message}"
    if walk.last_seq < until:
        return f"records {walk.last_seq + 1}..{until} are missing"
    return None


# --------------------------------------------------------------------------- rollups


def _check_rollups(conn: sqlite3.Connection) -> Problem | None:
    """The summary tables must equal a recount of the records they summarise."""
    counted = {
        tuple(row[:4]): tuple(row[4:])
        for row in conn.execute(
            f"SELECT {ROLLUP_KEY_SQL}, {ROLLUP_COUNTERS_SQL} FROM events GROUP BY 1, 2, 3, 4"  # noqa: S608
        )
    }
    stored = {
        tuple(row[:4]): tuple(row[4:])
        for row in conn.execute(
            "SELECT day, user, role, model, events, calls, denials, dlp_events, input_tokens, "
            "output_tokens FROM rollups"
        )
    }
    if counted == stored:
        return None
    for key in sorted(set(counted) | set(stored), key=lambda k: tuple(str(p) for p in k)):
        if counted.get(key) != stored.get(key):
            day, user, role, model = key
            return Problem(
                Damage.MODIFIED,
                f"the summary rollups disagree with the records for day {_day(int(day))}, "
                f"user {user!r}, role {role!r}, model {model!r}",
            )
    return None  # pragma: no cover


def _day(day: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%d")


def verify_missing_store(path: str, anchor: Checkpoint | None) -> VerifyReport:
    """The verdict on a store that does not exist: nothing recorded yet is fine, unless an
    anchor proves records existed, in which case the whole log was removed (truncated)."""
    report = VerifyReport(path, 0, 0, 0, 0, None, 0, None, anchor)
    if anchor is None:
        return report
    problem = Problem(
        Damage.TRUNCATED,
        f"the store does not exist but the anchor covers records up to {anchor.seq}",
        seq=1,
        checkpoint=anchor.number,
    )
    return VerifyReport(path, 0, 0, 0, 0, None, 0, None, anchor, (problem,))
