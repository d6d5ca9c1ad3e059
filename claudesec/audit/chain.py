"""The hash chain's common ground: how a record is hashed, the SQL that reads the chain and its
checkpoint rows, the ordered walk over the records, and what proves a prune.

The store (which writes the chain) and verify (which checks it) both build on this module and
never on each other. Nothing here trusts a value that a signature does not cover: the meta
table's prune marker is at most a hint of where to look, and a prune counts only when its
chained prune event carries a signature by the trusted key over the checkpoint it kept.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from claudesec.audit.checkpoint import Checkpoint, prune_signature_valid
from claudesec.errors import StoreError

RECORD_DOMAIN = b"claudesec.audit.record.v1\x00"
GENESIS_DOMAIN = b"claudesec.audit.genesis.v1\x00"

# The counters each event adds to its rollup row, as SQL over the events table: used to
# recount (verify) and to subtract (prune), so both agree with what append adds.
ROLLUP_KEY_SQL = "time_ns / 86400000000000, user, role, model"
ROLLUP_COUNTERS_SQL = (
    "count(*), sum(type = 'call'), sum(decision = 'deny' OR type = 'denial'), sum(dlp), "
    "sum(input_tokens), sum(output_tokens)"
)
_CP_COLUMNS = "number, seq, rec_hash, prev_hash, time_ns, public_key, signature"
CP_SELECT_ALL = f"SELECT {_CP_COLUMNS} FROM checkpoints ORDER BY number"  # noqa: S608
CP_SELECT_LAST = f"SELECT {_CP_COLUMNS} FROM checkpoints ORDER BY number DESC LIMIT 1"  # noqa: S608
CP_INSERT = f"INSERT INTO checkpoints ({_CP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"  # noqa: S608

# Meta keys a prune leaves. Neither is evidence: the marker is checked against the records,
# and the event's seq only saves verify a scan for the prune event it must find anyway.
PRUNE_MARKER = "pruned_through_checkpoint"
PRUNE_EVENT_HINT = "prune_event_seq"

_ROW_SQL = "SELECT seq, prev_hash, rec_hash, CAST(body AS BLOB) FROM events WHERE seq >= ?"


class DamagedStore(StoreError):
    """The file is not a readable SQLite database any more (``verify`` reports it as damage)."""


def record_hash(prev_hash: bytes, seq: int, body: bytes) -> bytes:
    """The chain hash of one record."""
    return hashlib.sha256(RECORD_DOMAIN + prev_hash + seq.to_bytes(8, "big") + body).digest()


def genesis_hash(store_id: bytes) -> bytes:
    """The ``prev_hash`` of record 1."""
    return hashlib.sha256(GENESIS_DOMAIN + store_id).digest()


# --------------------------------------------------------------------------- reading rows


def has_schema(conn: sqlite3.Connection) -> bool:
    """Whether the tables exist (a read-only open of a never-written file has none)."""
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ).fetchone()
    return row is not None


def read_meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def checkpoint_from_row(store_id: bytes, row: Sequence[Any]) -> Checkpoint:
    """A row of ``CP_SELECT_*`` -> :class:`Checkpoint` (the store id is not stored per row)."""
    return Checkpoint(
        store_id=store_id,
        number=int(row[0]),
        seq=int(row[1]),
        rec_hash=bytes(row[2]),
        prev_hash=bytes(row[3]),
        time_ns=int(row[4]),
        public_key=bytes(row[5]),
        signature=bytes(row[6]),
    )


def read_checkpoints(conn: sqlite3.Connection, store_id: bytes) -> list[Checkpoint]:
    """Every checkpoint row, in number order (as stored: signatures not checked here)."""
    return [checkpoint_from_row(store_id, row) for row in conn.execute(CP_SELECT_ALL)]


# --------------------------------------------------------------------------- the walk


@dataclass(frozen=True, slots=True)
class Walk:
    """Where an ordered walk over the records stopped.

    ``last_seq``/``prev_hash``: the last record that fit and its hash. ``found``: the seq of
    the row that sat where ``last_seq + 1`` was expected and did not fit. ``contradicts``: the
    signed checkpoint that record ``last_seq + 1`` disagrees with. Both None: a clean end.
    """

    last_seq: int
    prev_hash: bytes
    found: int | None = None
    contradicts: Checkpoint | None = None

    @property
    def clean(self) -> bool:
        return self.found is None and self.contradicts is None


def walk(
    conn: sqlite3.Connection,
    start: int,
    prev: bytes,
    *,
    signed: Mapping[int, Checkpoint],
    until: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Walk:
    """Hash records ``start..`` (to ``until``) in order, each once, until one does not fit:
    a gap, a wrong link, a wrong hash, or a hash a signed checkpoint (``signed``: by seq)
    contradicts. The hot loop of ``logs verify``: keep it free of calls per row
    (``on_progress`` hears the last seq checked once per batch of rows)."""
    sha256 = hashlib.sha256
    domain = RECORD_DOMAIN
    expected = start
    sql, params = _ROW_SQL, [start]
    if until is not None:
        sql, params = sql + " AND seq <= ?", [start, until]
    cursor = conn.execute(sql + " ORDER BY seq", params)
    cursor.arraysize = 4096
    while rows := cursor.fetchmany():
        for seq, p, h, body in rows:
            if (
                seq != expected
                or p != prev
                or sha256(domain + p + seq.to_bytes(8, "big") + body).digest() != h
            ):
                return Walk(expected - 1, prev, found=seq)
            if signed and seq in signed and signed[seq].rec_hash != h:
                return Walk(expected - 1, prev, contradicts=signed[seq])
            prev = h
            expected += 1
        if on_progress is not None:
            on_progress(expected - 1)
    return Walk(expected - 1, prev)


# --------------------------------------------------------------------------- prunes


@dataclass(frozen=True, slots=True)
class ChainStart:
    """Where the kept chain starts, as far as signatures prove it.

    ``seq``/``prev_hash``: the first record the chain must hold and the hash it chains to;
    ``anchor``/``prune_seq``: the kept checkpoint and the signed prune event that prove a prune
    through ``seq - 1`` (None: no prune proven, the chain starts at genesis); ``first_present``:
    the lowest seq actually in the table (None: no records).
    """

    seq: int
    prev_hash: bytes
    anchor: Checkpoint | None
    prune_seq: int | None
    first_present: int | None

    @property
    def pruned_through(self) -> int:
        return self.seq - 1

    @property
    def unexplained_gap(self) -> bool:
        """Records are missing before the first kept one and no signed prune explains it."""
        return self.first_present is not None and self.first_present > self.seq


def chain_start(
    conn: sqlite3.Connection,
    store_id: bytes,
    checkpoints: Sequence[Checkpoint],
    public_key: bytes | None,
) -> ChainStart:
    """The start of the chain: genesis, or the latest prune that ``public_key`` signed.

    A prune through record ``n`` is proven by a prune event, still in the table, whose body
    names checkpoint ``n``'s number, seq and hash and carries the trusted key's signature over
    them, the store id and the event's own seq. Records missing before the first kept one with
    no such proof are deletions, whatever the meta table says.
    """
    row = conn.execute("SELECT min(seq) FROM events").fetchone()
    first = None if row[0] is None else int(row[0])
    genesis = ChainStart(1, genesis_hash(store_id), None, None, first)
    if first is None or first <= 1 or public_key is None:
        return genesis
    by_number = {c.number: c for c in checkpoints}
    best: tuple[Checkpoint, int] | None = None
    for seq, body in _prune_events(conn, first):
        anchor = _proven_anchor(body, seq, store_id, by_number, public_key)
        if anchor is None or anchor.seq >= first:
            continue
        if best is None or anchor.seq > best[0].seq:
            best = (anchor, seq)
        if anchor.seq == first - 1:
            break
    if best is None:
        return genesis
    anchor, prune_seq = best
    return ChainStart(anchor.seq + 1, anchor.rec_hash, anchor, prune_seq, first)


def _prune_events(conn: sqlite3.Connection, first: int) -> Iterator[tuple[int, bytes]]:
    """The prune events at or after ``first``: the one the meta hint names first, then the
    rest newest first, scanned only if the caller asks for more (an honest store's hint ends
    the search in one row read)."""
    hinted: int | None = None
    hint = read_meta(conn, PRUNE_EVENT_HINT)
    if hint is not None and hint.isdigit() and int(hint) >= first:
        row = conn.execute(
            "SELECT seq, CAST(body AS BLOB) FROM events WHERE seq = ?", (int(hint),)
        ).fetchone()
        if row is not None:
            hinted = int(row[0])
            yield hinted, bytes(row[1])
    rows = conn.execute(
        "SELECT seq, CAST(body AS BLOB) FROM events WHERE seq >= ? AND type = 'prune' "
        "ORDER BY seq DESC",
        (first,),
    ).fetchall()
    for seq, body in rows:
        if seq != hinted:
            yield int(seq), bytes(body)


def _proven_anchor(
    body: bytes,
    seq: int,
    store_id: bytes,
    by_number: Mapping[int, Checkpoint],
    public_key: bytes,
) -> Checkpoint | None:
    """The checkpoint a prune event proves it kept, if its signature holds."""
    try:
        data = json.loads(body)
        number = int(data["anchor_checkpoint"])
        through = int(data["pruned_through_seq"])
        anchor_hash = bytes.fromhex(data["anchor_checkpoint_hash"])
        signature = bytes.fromhex(data["prune_signature"])
    except (ValueError, KeyError, TypeError):
        return None
    if data.get("type") != "prune":
        return None
    anchor = by_number.get(number)
    if anchor is None or anchor.seq != through or anchor.hash != anchor_hash:
        return None
    if not prune_signature_valid(
        public_key, signature, store_id=store_id, event_seq=seq, anchor=anchor
    ):
        return None
    return anchor
