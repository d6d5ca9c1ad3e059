"""``logs verify``: walk the hash chain and the signed checkpoints, name the first damage.

The walk is a single ordered scan hashing each record once (a few seconds per million
records). Only when it meets a record that does not fit does it look around that record to
classify the damage:

* **modified** - the record's content no longer matches its hash, or its hash was recomputed
  but the next record was chained to the original, or it disagrees with a signed checkpoint;
* **deleted** - a gap in ``seq``, or later records renumbered to close one, or records missing
  before the first kept one that no signed prune removed; or checkpoints missing;
* **inserted** - a record that is not part of the original chain sits before the original;
* **reordered** - the original record for this position sits elsewhere;
* **truncated** - the store ends before a checkpoint (or an exported anchor) says it should;
* **bad_signature** - a checkpoint's signature fails, or it was signed by a key other than
  the trusted one (``--public-key``, the anchor's key, or the store's own);
* **replaced** - the store is not the one the anchor was exported from;
* **unsigned** - a public key was given, but no checkpoint signs any of the store's records.

Only signatures are trusted: the meta table's prune marker and the checkpoint rows are claims
to check. A prune counts only when its chained prune event carries the trusted key's signature
over the checkpoint it kept (:func:`claudesec.audit.chain.chain_start`). Without an exported
anchor, a tail cut together with its checkpoints, or a history re-signed with a key the
attacker controls, cannot be told from a genuine store; the report says how many records are
covered only by the chain.

The steps of :func:`_verify`, in order: read what the store claims (:func:`_read_claims`),
decide which key to trust (:func:`_trusted_key`), check the checkpoint chain and the anchor,
find where the kept chain starts (a signed prune, or genesis) and any unexplained gap before
it, walk the records, check the end against checkpoints and anchor, check that something is
signed at all, and recount the rollups.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from claudesec.audit.chain import (
    PRUNE_MARKER,
    RECORD_DOMAIN,
    ROLLUP_COUNTERS_SQL,
    ROLLUP_KEY_SQL,
    ChainStart,
    DamagedStore,
    Walk,
    chain_start,
    has_schema,
    read_checkpoints,
    read_meta,
    record_hash,
    walk,
)
from claudesec.audit.checkpoint import Checkpoint, checkpoint_genesis

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
    UNSIGNED = "unsigned"


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding: its kind, the first bad record (or checkpoint), and a sentence."""

    kind: Damage
    message: str
    seq: int | None = None
    checkpoint: int | None = None

    @property
    def headline(self) -> str:
        """How a report line starts: an unsigned store is unproven, not proven tampered."""
        return "NOT SIGNED" if self.kind is Damage.UNSIGNED else "TAMPERED"

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


class AuditLog(Protocol):
    """What verify needs of an audit store: its path and a consistent read view of it."""

    @property
    def path(self) -> Path: ...

    def snapshot(self) -> AbstractContextManager[sqlite3.Connection]: ...


def verify_store(
    store: AuditLog,
    *,
    anchor: Checkpoint | None = None,
    public_key: bytes | None = None,
    local_public_key: bytes | None = None,
    check_rollups: bool = True,
    on_progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Check everything in one consistent snapshot of ``store``.

    ``anchor``: an exported checkpoint kept off the host. ``public_key``: the key the auditor
    trusts. ``local_public_key``: this host's signing key, when known, compared with the key
    recorded in the store. ``on_progress``: told the last record checked, now and then.
    """
    started = time.perf_counter()
    path = str(store.path)
    try:
        with store.snapshot() as conn:
            if not has_schema(conn):
                report = _never_written(path, anchor)
            else:
                report = _verify(
                    conn,
                    path,
                    anchor=anchor,
                    public_key=public_key,
                    local_public_key=local_public_key,
                    check_rollups=check_rollups,
                    on_progress=on_progress,
                )
    except DamagedStore as exc:
        # A file SQLite can no longer read is the most thorough tampering of all.
        problem = Problem(Damage.MODIFIED, f"{exc.message}: the file itself was damaged")
        report = _empty_report(path, anchor, (problem,))
    return replace(report, elapsed_s=time.perf_counter() - started)


def _empty_report(
    path: str, anchor: Checkpoint | None, problems: tuple[Problem, ...] = ()
) -> VerifyReport:
    return VerifyReport(path, 0, 0, 0, 0, None, 0, None, anchor, problems)


def _never_written(path: str, anchor: Checkpoint | None, *, how: str = "is empty") -> VerifyReport:
    """No store, or a file with no tables: fine, unless an anchor says records were written."""
    if anchor is None:
        return _empty_report(path, None)
    problem = Problem(
        Damage.TRUNCATED,
        f"the store {how} but the anchor covers records up to {anchor.seq}",
        seq=1,
        checkpoint=anchor.number,
    )
    return _empty_report(path, anchor, (problem,))


# --------------------------------------------------------------------------- the steps


@dataclass(frozen=True, slots=True)
class _Claims:
    """What the store says about itself. None of it is trusted until a signature covers it."""

    store_id: bytes
    public_key: bytes | None
    checkpoints: list[Checkpoint]
    records: int
    first_seq: int


def _verify(
    conn: sqlite3.Connection,
    path: str,
    *,
    anchor: Checkpoint | None,
    public_key: bytes | None,
    local_public_key: bytes | None,
    check_rollups: bool,
    on_progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    claims = _read_claims(conn)
    if claims is None:
        problem = Problem(Damage.MODIFIED, "the store's id is missing from its metadata")
        return _empty_report(path, anchor, (problem,))
    # A stranger's anchor says nothing about these records (the mismatch itself is reported).
    anchor_here = anchor if anchor is None or anchor.store_id == claims.store_id else None
    problems: list[Problem] = []
    trusted = _trusted_key(claims, anchor, public_key, local_public_key, problems)
    _add(problems, _check_checkpoints(claims.checkpoints, claims.store_id, trusted))
    _add(problems, _check_anchor(anchor_here, claims.checkpoints))
    start = chain_start(conn, claims.store_id, claims.checkpoints, trusted)
    _add(problems, _check_prune_marker(conn, claims.checkpoints))
    _add(problems, _unproven_gap(conn, start))
    walk_start, walk_prev = _walk_origin(conn, start)
    end = walk(
        conn,
        walk_start,
        walk_prev,
        signed=_signed_positions(claims.checkpoints, anchor_here, walk_start),
        on_progress=on_progress,
    )
    _add(problems, _walk_problem(conn, end, walk_start, claims.checkpoints))
    _add(problems, _check_end(end, claims.checkpoints, anchor_here))
    _add(problems, _check_signed(claims, public_key))
    if check_rollups and not problems:
        _add(problems, _check_rollups(conn))
    return VerifyReport(
        path=path,
        records=claims.records,
        first_seq=claims.first_seq,
        last_seq=end.last_seq,
        checkpoints=len(claims.checkpoints),
        last_checkpoint=claims.checkpoints[-1] if claims.checkpoints else None,
        pruned_through=start.pruned_through,
        public_key=trusted,
        anchor=anchor,
        problems=tuple(problems),
    )


def _add(problems: list[Problem], problem: Problem | None) -> None:
    if problem is not None:
        problems.append(problem)


def _read_claims(conn: sqlite3.Connection) -> _Claims | None:
    store_id = _meta_bytes(conn, "store_id")
    if store_id is None:
        return None
    first, count = conn.execute("SELECT min(seq), count(*) FROM events").fetchone()
    return _Claims(
        store_id=store_id,
        public_key=_meta_bytes(conn, "public_key"),
        checkpoints=read_checkpoints(conn, store_id),
        records=int(count),
        first_seq=int(first) if first is not None else 0,
    )


def _meta_bytes(conn: sqlite3.Connection, key: str) -> bytes | None:
    value = read_meta(conn, key)
    if value is None:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return b""


def _trusted_key(
    claims: _Claims,
    anchor: Checkpoint | None,
    public_key: bytes | None,
    local_public_key: bytes | None,
    problems: list[Problem],
) -> bytes | None:
    """The key signatures must verify under: the auditor's, else the anchor's, else the
    store's own (which proves only self-consistency). Adds what is wrong with the choice."""
    trusted = public_key or (anchor.public_key if anchor else None) or claims.public_key
    if anchor is not None and anchor.store_id != claims.store_id:
        problems.append(
            Problem(
                Damage.REPLACED,
                f"the store id {claims.store_id.hex()} is not the anchor's "
                f"({anchor.store_id.hex()}): this is a different (possibly substituted) audit "
                "store",
                checkpoint=anchor.number,
            )
        )
    if anchor is not None and public_key is not None and anchor.public_key != public_key:
        from claudesec.audit.secrets import public_key_fingerprint

        problems.append(
            Problem(
                Damage.BAD_SIGNATURE,
                f"the anchor is signed by {public_key_fingerprint(anchor.public_key)}, not the "
                f"trusted key {public_key_fingerprint(public_key)}",
                checkpoint=anchor.number,
            )
        )
    stored = claims.public_key
    if local_public_key is not None and stored is not None and local_public_key != stored:
        problems.append(
            Problem(
                Damage.BAD_SIGNATURE,
                "the public key recorded in the store is not this host's signing key: "
                "the store's key was replaced",
            )
        )
    if claims.checkpoints and stored is None and public_key is None and anchor is None:
        problems.append(
            Problem(Damage.MODIFIED, "the store has checkpoints but its public key is missing")
        )
        trusted = claims.checkpoints[0].public_key
    return trusted


def _truncated(
    last_seq: int, expected: int, by: str, *, checkpoint: int | None = None, also: str = ""
) -> Problem:
    ends = f"ends at record {last_seq}" if last_seq else "has no records"
    return Problem(
        Damage.TRUNCATED,
        f"the log {ends} but {by} covers records up to {expected}: "
        f"records {last_seq + 1}..{expected} were cut off{also}",
        seq=last_seq + 1,
        checkpoint=checkpoint,
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


def _check_anchor(anchor: Checkpoint | None, checkpoints: list[Checkpoint]) -> Problem | None:
    """The store's copy of the anchor's checkpoint must be the anchor. (A store that lacks it
    is judged at the end, once the walk knows where the records stop.)"""
    if anchor is None:
        return None
    mine = next((c for c in checkpoints if c.number == anchor.number), None)
    if mine is not None and mine.hash != anchor.hash:
        return Problem(
            Damage.MODIFIED,
            f"checkpoint #{anchor.number} differs from the exported anchor: the history up to "
            f"record {anchor.seq} was rewritten",
            seq=anchor.seq,
            checkpoint=anchor.number,
        )
    return None


# --------------------------------------------------------------------------- prunes


def _check_prune_marker(conn: sqlite3.Connection, checkpoints: list[Checkpoint]) -> Problem | None:
    """The meta marker a prune leaves proves nothing, but it must not contradict the records."""
    value = read_meta(conn, PRUNE_MARKER)
    if value is None:
        return None
    number = int(value) if value.isdigit() else -1
    anchor = next((c for c in checkpoints if c.number == number), None)
    if anchor is None:
        return Problem(
            Damage.DELETED,
            f"checkpoint #{value}, the anchor of the last prune, is missing",
            checkpoint=number if number >= 0 else None,
        )
    leftover = conn.execute("SELECT max(seq) FROM events WHERE seq <= ?", (anchor.seq,)).fetchone()
    if leftover[0] is not None:
        return Problem(
            Damage.MODIFIED,
            f"record {leftover[0]} is still present although the log was pruned through "
            f"record {anchor.seq}: the prune marker was tampered with",
            seq=int(leftover[0]),
        )
    return None


def _unproven_gap(conn: sqlite3.Connection, start: ChainStart) -> Problem | None:
    """Records missing before the first kept one that no signed prune removed: deleted."""
    if not start.unexplained_gap or start.first_present is None:
        return None
    last = start.first_present - 1
    missing = f"record {last} is" if last == start.seq else f"records {start.seq}..{last} are"
    if start.anchor is not None:
        why = f"after the signed prune through record {start.pruned_through}"
    elif read_meta(conn, PRUNE_MARKER) is not None:
        why = (
            "the prune marker claims a prune, but no prune event signed by the trusted key "
            "proves it"
        )
    else:
        why = "no signed prune removed them"
    return Problem(Damage.DELETED, f"{missing} missing (deleted): {why}", seq=start.seq)


# --------------------------------------------------------------------------- records


def _walk_origin(conn: sqlite3.Connection, start: ChainStart) -> tuple[int, bytes]:
    """Where the walk begins: the proven start, or past a gap already reported, the first
    kept record (so damage further on is still located)."""
    if not start.unexplained_gap or start.first_present is None:
        return start.seq, start.prev_hash
    row = conn.execute(
        "SELECT prev_hash FROM events WHERE seq = ?", (start.first_present,)
    ).fetchone()
    return start.first_present, bytes(row[0])


def _signed_positions(
    checkpoints: list[Checkpoint], anchor: Checkpoint | None, walk_start: int
) -> dict[int, Checkpoint]:
    """The record hashes signatures vouch for, by seq; the off-host anchor wins."""
    signed: dict[int, Checkpoint] = {}
    for checkpoint in checkpoints:
        if checkpoint.seq >= walk_start:
            signed.setdefault(checkpoint.seq, checkpoint)
    if anchor is not None and anchor.seq >= walk_start:
        signed[anchor.seq] = anchor
    return signed


def _walk_problem(
    conn: sqlite3.Connection, end: Walk, walk_start: int, checkpoints: list[Checkpoint]
) -> Problem | None:
    if end.contradicts is not None:
        return _rewritten(end.contradicts, checkpoints, walk_start)
    if end.found is not None:
        return _diagnose(conn, walk_start, end.last_seq + 1, end.prev_hash, end.found)
    return None


def _check_end(
    end: Walk, checkpoints: list[Checkpoint], anchor: Checkpoint | None
) -> Problem | None:
    """Does the log reach as far as its checkpoints and the anchor say it did?"""
    if anchor is not None and all(c.number != anchor.number for c in checkpoints):
        last = max((c.number for c in checkpoints), default=0)
        gone = (
            f"checkpoints #{last + 1}..#{anchor.number}"
            if last + 1 < anchor.number
            else f"checkpoint #{anchor.number}"
        )
        if end.clean and end.last_seq < anchor.seq:
            # The walk stopped at the last record left: the first one cut is the next.
            return _truncated(
                end.last_seq,
                anchor.seq,
                f"the anchor (checkpoint #{anchor.number})",
                checkpoint=anchor.number,
                also=f", together with {gone}",
            )
        return Problem(
            Damage.DELETED,
            f"{gone} {'are' if gone.startswith('checkpoints') else 'is'} missing: the exported "
            f"anchor is checkpoint #{anchor.number} (record {anchor.seq})",
            checkpoint=min(last + 1, anchor.number),
        )
    if not end.clean:
        return None
    highest = max(checkpoints, key=lambda c: c.seq, default=None)
    if highest is not None and highest.seq > end.last_seq:
        return _truncated(end.last_seq, highest.seq, f"checkpoint #{highest.number}")
    if anchor is not None and anchor.seq > end.last_seq:
        return _truncated(end.last_seq, anchor.seq, "the anchor", checkpoint=anchor.number)
    return None


def _check_signed(claims: _Claims, public_key: bytes | None) -> Problem | None:
    """Given the auditor's key, records that no checkpoint signs prove nothing about where
    they came from: a replacement store looks exactly like this."""
    if public_key is None or claims.records == 0 or claims.checkpoints:
        return None
    from claudesec.audit.secrets import public_key_fingerprint

    return Problem(
        Damage.UNSIGNED,
        f"nothing in this store is signed yet: its {claims.records} records have no checkpoint "
        f"signed by {public_key_fingerprint(public_key)}, so they may not come from that key's "
        "writer at all (run `claudesec logs checkpoint` where the store is written)",
    )


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
    original = _original_elsewhere(conn, window, k, prev, moved)
    if moved is not None and original is not None:
        # Renumbering after a deletion leaves no original record k anywhere; here it still is.
        return Problem(
            Damage.REORDERED,
            f"record {k} is out of order: it belongs at {moved}, and the original record {k} "
            f"sits at {original}",
            seq=k,
        )
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


def _original_elsewhere(
    conn: sqlite3.Connection, window: dict[int, _Row], k: int, prev: bytes, moved: int | None
) -> int | None:
    """Where the original record ``k`` (chained to ``prev``, hashed as ``k``) now sits, if it
    is still in the table after ``k``: first where the record at ``k`` came from, then nearby."""
    candidates = dict(window)
    if moved is not None and moved > k and moved not in candidates:
        candidates.update(_rows(conn, moved, moved))
    order = sorted(candidates, key=lambda seq: (seq != moved, seq))
    for seq in order:
        other = candidates[seq]
        if seq > k and other[0] == prev and _fits(other, k):
            return seq
    return None


def _fits_elsewhere(row: _Row, k: int) -> int | None:
    """The seq this row was originally written at, if within reach."""
    prev, digest, body = row
    base = RECORD_DOMAIN + prev
    for distance in range(1, _RENUMBER_SEARCH):
        for seq in (k + distance, k - distance):
            if seq > 0 and hashlib.sha256(base + seq.to_bytes(8, "big") + body).digest() == digest:
                return seq
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
    return _never_written(path, anchor, how="does not exist")
