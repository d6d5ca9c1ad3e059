"""Building real audit stores for the tests, and editing them behind the store's back."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from claudesec.audit import AuditEvent, AuditStore
from claudesec.audit.chain import ROLLUP_COUNTERS_SQL, ROLLUP_KEY_SQL, genesis_hash, record_hash
from claudesec.audit.checkpoint import checkpoint_genesis, public_key_bytes, sign_checkpoint
from claudesec.audit.secrets import AuditKeys

DAY_NS = 86_400 * 1_000_000_000
BASE_NS = 1_780_000_000 * 1_000_000_000  # a fixed day in 2026, so tests do not depend on now


def open_store(path: Path, *, checkpoint_every: int = 10, **kwargs: object) -> AuditStore:
    return AuditStore.open(
        path,
        checkpoint_every=checkpoint_every,
        keys=AuditKeys(path.parent),
        **kwargs,  # type: ignore[arg-type]
    )


def event(i: int, *, time_ns: int | None = None, **fields: object) -> AuditEvent:
    """A varied, deterministic call event."""
    values: dict[str, object] = {
        "type": "call",
        "time_ns": BASE_NS + i * 1_000_000 if time_ns is None else time_ns,
        "user": f"user{i % 3}",
        "role": "analyst" if i % 2 else "engineer",
        "model": "claude-haiku-4-5" if i % 2 else "claude-sonnet-4-5",
        "input_tokens": 100 + i,
        "output_tokens": 10 + i,
        "latency_ms": 12.5,
        "decision": "allow",
        "request_id": f"req_{i}",
    }
    values.update(fields)
    return AuditEvent(**values)  # type: ignore[arg-type]


def build(path: Path, n: int, *, checkpoint_every: int = 10) -> AuditStore:
    """A store at ``path`` with ``n`` events (returned open)."""
    store = open_store(path, checkpoint_every=checkpoint_every)
    for i in range(1, n + 1):
        store.append(event(i))
    return store


@contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection to the file, as an attacker with write access would use."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


# --------------------------------------------------------------------------- what attackers do


def rehash_from(conn: sqlite3.Connection, start: int) -> None:
    """What a careful attacker does after editing: recompute every later hash."""
    row = conn.execute("SELECT rec_hash FROM events WHERE seq = ?", (start - 1,)).fetchone()
    prev = row[0] if row is not None else _genesis(conn)
    rows = conn.execute(
        "SELECT seq, body FROM events WHERE seq >= ? ORDER BY seq", (start,)
    ).fetchall()
    for seq, body in rows:
        digest = record_hash(prev, seq, body.encode())
        conn.execute(
            "UPDATE events SET prev_hash = ?, rec_hash = ? WHERE seq = ?", (prev, digest, seq)
        )
        prev = digest


def _genesis(conn: sqlite3.Connection) -> bytes:
    return genesis_hash(store_id_of(conn))


def store_id_of(conn: sqlite3.Connection) -> bytes:
    return bytes.fromhex(
        conn.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()[0]
    )


def recount_rollups(conn: sqlite3.Connection) -> None:
    """An attacker who also fixes the summary tables."""
    conn.execute("DELETE FROM rollups")
    conn.execute(
        f"INSERT INTO rollups SELECT {ROLLUP_KEY_SQL}, {ROLLUP_COUNTERS_SQL} "  # noqa: S608
        "FROM events GROUP BY 1, 2, 3, 4"
    )


def move(conn: sqlite3.Connection, where: str, delta: int) -> None:
    """Renumber rows without tripping the primary key mid-update."""
    conn.execute(f"UPDATE events SET seq = -(seq + ?) WHERE {where}", (delta,))  # noqa: S608
    conn.execute("UPDATE events SET seq = -seq WHERE seq < 0")


def swap(conn: sqlite3.Connection, a: int, b: int) -> None:
    """Exchange the positions of records ``a`` and ``b`` (rows kept intact)."""
    conn.execute("UPDATE events SET seq = -1 WHERE seq = ?", (a,))
    conn.execute("UPDATE events SET seq = ? WHERE seq = ?", (a, b))
    conn.execute("UPDATE events SET seq = ? WHERE seq = -1", (b,))


def append_forged(conn: sqlite3.Connection, body: str) -> int:
    """Chain a record of the attacker's making onto the end of the log (no key needed)."""
    seq, prev = conn.execute(
        "SELECT seq, rec_hash FROM events ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    seq += 1
    conn.execute(
        "INSERT INTO events (seq, prev_hash, rec_hash, body) VALUES (?, ?, ?, ?)",
        (seq, prev, record_hash(prev, seq, body.encode()), body),
    )
    return int(seq)


def resign_checkpoints(conn: sqlite3.Connection) -> bytes:
    """Re-sign every checkpoint over the records as they now are, with a key the attacker
    made, and record that key as the store's; returns its public half."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    store_id = store_id_of(conn)
    prev = checkpoint_genesis(store_id)
    rows = conn.execute("SELECT number, seq, time_ns FROM checkpoints ORDER BY number").fetchall()
    for number, seq, time_ns in rows:
        found = conn.execute("SELECT rec_hash FROM events WHERE seq = ?", (seq,)).fetchone()
        rec = found[0] if found is not None else b"\0" * 32
        cp = sign_checkpoint(
            key,
            store_id=store_id,
            number=number,
            seq=seq,
            rec_hash=rec,
            prev_hash=prev,
            time_ns=time_ns,
        )
        conn.execute(
            "UPDATE checkpoints SET rec_hash = ?, prev_hash = ?, public_key = ?, signature = ? "
            "WHERE number = ?",
            (cp.rec_hash, cp.prev_hash, cp.public_key, cp.signature, number),
        )
        prev = cp.hash
    public = public_key_bytes(key)
    conn.execute("UPDATE meta SET value = ? WHERE key = 'public_key'", (public.hex(),))
    return public
