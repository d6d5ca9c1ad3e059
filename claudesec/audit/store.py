"""The tamper-evident audit store: SQLite in WAL mode, one hash-chained record per event.

Chain: ``rec_hash = SHA-256(domain || prev_hash || seq || canonical JSON)``, where ``seq`` is a
contiguous 64-bit counter starting at 1 and the first ``prev_hash`` is derived from a random
store id (records cannot be transplanted between stores). Each row also keeps the
``prev_hash`` it was chained to, which costs 32 bytes and lets ``verify`` tell a modified
record from a deleted, inserted or reordered one.

Durability: WAL with ``synchronous=NORMAL``. A commit appends the transaction to the WAL file
with ``write()`` before ``append()`` returns, so the record is in the kernel's page cache and
survives the writer being killed (``kill -9``, OOM killer, crash). Only a power loss or kernel
crash can lose the last transactions (never corrupt the file); ``audit.synchronous = "full"``
closes that gap with an fsync per commit.

Concurrency: every append is one ``BEGIN IMMEDIATE`` transaction that reads the chain head and
writes the next record, so any number of threads and processes can append and the chain stays
contiguous. A writer that cannot get the lock within ``busy_timeout_ms`` gets a
:class:`~claudesec.errors.StoreError` (exit 3), never a hang. Within a process, one
:class:`AuditStore` may be shared by threads (a lock serialises its connection).

Summaries: a ``rollups`` table keyed by (UTC day, user, role, model), with counters for events,
calls, denials, DLP hits and tokens, is updated in the same transaction as each event, so
``logs summary`` never scans the events.

Chain head: each store keeps the head its own last append committed, tagged with SQLite's
``PRAGMA data_version``, which moves whenever another connection (any process) commits. Every
append reads ``data_version`` inside its ``BEGIN IMMEDIATE`` transaction, where no other writer
can commit, and re-reads the head from the table when it moved; so the head is always the
table's, at the cost of one pragma instead of a B-tree read.

Prune: records up to a signed checkpoint are deleted and a prune event, signed over that
checkpoint, is chained at the head in the same transaction; the hashing, SQL and prune proof
shared with ``verify`` live in :mod:`claudesec.audit.chain`.

Errors (disk full, read-only file, lock timeout, damaged file) roll the transaction back and
raise :class:`~claudesec.errors.StoreError`; a failed or foreign write drops the kept head, so
a failed append never leaves a gap or a fork.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, NoReturn, Self, TypeVar

from claudesec.audit.chain import (
    CP_INSERT,
    CP_SELECT_ALL,
    CP_SELECT_LAST,
    PRUNE_EVENT_HINT,
    PRUNE_MARKER,
    ROLLUP_COUNTERS_SQL,
    ROLLUP_KEY_SQL,
    ChainStart,
    DamagedStore,
    chain_start,
    checkpoint_from_row,
    genesis_hash,
    has_schema,
    read_checkpoints,
    read_meta,
    record_hash,
    walk,
)
from claudesec.audit.checkpoint import Checkpoint, checkpoint_genesis, sign_checkpoint, sign_prune
from claudesec.audit.events import AuditEvent, EventType, canonical_dumps
from claudesec.errors import StoreError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from claudesec.audit.secrets import AuditKeys
    from claudesec.config import AuditConfig

SCHEMA_VERSION = 1
DEFAULT_FILENAME = "audit.db"
NS_PER_DAY = 86_400 * 1_000_000_000
# The chain's hashing, SQL and errors live in claudesec.audit.chain (shared with verify); these
# names stay importable from here.
__all__ = [
    "DEFAULT_FILENAME",
    "NS_PER_DAY",
    "ROLLUP_COUNTERS_SQL",
    "ROLLUP_KEY_SQL",
    "SCHEMA_VERSION",
    "AuditStore",
    "DamagedStore",
    "PruneResult",
    "StoredEvent",
    "StoredRecord",
    "default_store_path",
    "genesis_hash",
    "record_hash",
    "stored_event",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    prev_hash BLOB NOT NULL,
    rec_hash BLOB NOT NULL,
    body TEXT NOT NULL,
    -- Derived from the hashed body, never stored separately: a column cannot disagree
    -- with the record the chain covers.
    time_ns INTEGER GENERATED ALWAYS AS (json_extract(body, '$.time_ns')) VIRTUAL,
    type TEXT GENERATED ALWAYS AS (json_extract(body, '$.type')) VIRTUAL,
    user TEXT GENERATED ALWAYS AS (ifnull(json_extract(body, '$.user'), '')) VIRTUAL,
    role TEXT GENERATED ALWAYS AS (ifnull(json_extract(body, '$.role'), '')) VIRTUAL,
    model TEXT GENERATED ALWAYS AS (ifnull(json_extract(body, '$.model'), '')) VIRTUAL,
    decision TEXT GENERATED ALWAYS AS (ifnull(json_extract(body, '$.decision'), '')) VIRTUAL,
    input_tokens INTEGER GENERATED ALWAYS AS
        (ifnull(json_extract(body, '$.input_tokens'), 0)) VIRTUAL,
    output_tokens INTEGER GENERATED ALWAYS AS
        (ifnull(json_extract(body, '$.output_tokens'), 0)) VIRTUAL,
    dlp INTEGER GENERATED ALWAYS AS
        (json_extract(body, '$.dlp_kinds') IS NOT NULL
         OR json_extract(body, '$.type') = 'dlp_hit') VIRTUAL
);
CREATE INDEX IF NOT EXISTS events_time ON events (time_ns);
-- The call records that complete a write-ahead admission, by the admission's seq: finds the
-- admissions never completed (`logs query --incomplete`) without a scan per admission.
CREATE INDEX IF NOT EXISTS events_admission ON events (json_extract(body, '$.admission_seq'))
    WHERE json_extract(body, '$.admission_seq') IS NOT NULL;
-- Records by the call id an audited client's intent journal gave their admission: an import
-- after a crash skips the calls already recorded, whatever the clock did meanwhile.
CREATE INDEX IF NOT EXISTS events_call_id ON events (json_extract(body, '$.call_id'))
    WHERE json_extract(body, '$.call_id') IS NOT NULL;
CREATE TABLE IF NOT EXISTS checkpoints (
    number INTEGER PRIMARY KEY,
    seq INTEGER NOT NULL,
    rec_hash BLOB NOT NULL,
    prev_hash BLOB NOT NULL,
    time_ns INTEGER NOT NULL,
    public_key BLOB NOT NULL,
    signature BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS rollups (
    day INTEGER NOT NULL,
    user TEXT NOT NULL,
    role TEXT NOT NULL,
    model TEXT NOT NULL,
    events INTEGER NOT NULL,
    calls INTEGER NOT NULL,
    denials INTEGER NOT NULL,
    dlp_events INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    PRIMARY KEY (day, user, role, model)
) WITHOUT ROWID;
"""

_INSERT_EVENT = "INSERT INTO events (seq, prev_hash, rec_hash, body) VALUES (?, ?, ?, ?)"
_UPSERT_ROLLUP = """
INSERT INTO rollups (day, user, role, model, events, calls, denials, dlp_events, input_tokens,
                     output_tokens)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (day, user, role, model) DO UPDATE SET
    events = events + excluded.events,
    calls = calls + excluded.calls,
    denials = denials + excluded.denials,
    dlp_events = dlp_events + excluded.dlp_events,
    input_tokens = input_tokens + excluded.input_tokens,
    output_tokens = output_tokens + excluded.output_tokens
"""
# One statement for the chain head and the last checkpoint's seq: a round trip saved per append.
_HEAD_AND_CHECKPOINT = """
SELECT (SELECT seq FROM events ORDER BY seq DESC LIMIT 1),
       (SELECT rec_hash FROM events ORDER BY seq DESC LIMIT 1),
       (SELECT seq FROM checkpoints ORDER BY number DESC LIMIT 1)
"""
# Same connection's own commits leave it unchanged; any other connection's commit moves it.
_DATA_VERSION = "PRAGMA data_version"

RollupKey = tuple[int, str, str, str]
_Head = tuple[int, int, bytes, int]
_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """What an append returns: the record's position and chain hash (hex)."""

    seq: int
    rec_hash: str


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A record read back from the store."""

    seq: int
    rec_hash: str
    event: AuditEvent


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What ``prune`` removed, and the checkpoint that anchors the remaining chain."""

    deleted: int
    through_seq: int
    anchor: Checkpoint | None
    record: StoredRecord | None


@dataclass(frozen=True, slots=True)
class _Prepared:
    body: str
    encoded: bytes
    rollup: RollupKey
    counters: tuple[int, int, int, int, int, int]


def default_store_path(audit: AuditConfig) -> Path:
    """``audit.store_path`` (relative paths are under CLAUDESEC_HOME) or ``audit.db`` there."""
    from claudesec.paths import ensure_home, home_dir

    if audit.store_path:
        path = Path(audit.store_path).expanduser()
        return path if path.is_absolute() else home_dir() / path
    return ensure_home() / DEFAULT_FILENAME


class AuditStore:
    """An open audit store. Use :meth:`open`, :meth:`from_config` or :meth:`open_default`."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        *,
        readonly: bool,
        checkpoint_every: int,
        busy_timeout_ms: int,
        signer: Ed25519PrivateKey | None,
        host: str,
        app: str,
        synchronous: Literal["normal", "full"] = "normal",
    ) -> None:
        self._conn = conn
        self.path = path
        self.readonly = readonly
        self.synchronous: Literal["normal", "full"] = synchronous
        self.checkpoint_every = checkpoint_every
        self.busy_timeout_ms = busy_timeout_ms
        self._signer = signer
        self._signer_public: bytes | None = None
        self.host = host
        self.app = app
        self._lock = threading.RLock()
        self._store_id: bytes | None = None
        self._closed = False
        # (data_version, head seq, head rec_hash, last checkpoint seq) as of our last commit.
        self._head_cache: _Head | None = None
        self._pending_head: _Head | None = None
        self._open_head: _Head | None = None  # the kept head, while a transaction checks it

    # ----------------------------------------------------------------- opening

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        readonly: bool = False,
        checkpoint_every: int = 1000,
        busy_timeout_ms: int = 5000,
        synchronous: Literal["normal", "full"] = "normal",
        keys: AuditKeys | None = None,
        host: str | None = None,
        app: str = "",
    ) -> AuditStore:
        """Open (creating if needed, 0600) the store at ``path``.

        ``keys`` provides the checkpoint signing key; without it (and ``checkpoint_every > 0``)
        the file-backed keys in the store's directory are used. ``checkpoint_every=0`` writes no
        automatic checkpoints (``checkpoint()`` still works when ``keys`` is given).
        ``host``/``app`` fill in events that leave those fields empty (``host`` defaults to
        this machine's name).
        """
        db = Path(path)
        if readonly:
            conn = cls._connect_readonly(db, busy_timeout_ms)
        else:
            conn = cls._connect_writable(db, busy_timeout_ms, synchronous)
        signer = None
        try:
            if not readonly and (checkpoint_every > 0 or keys is not None):
                if keys is None:
                    from claudesec.audit.secrets import AuditKeys

                    keys = AuditKeys(db.parent)
                signer = keys.signing_key()
        except BaseException:
            conn.close()
            raise
        store = cls(
            conn,
            db,
            readonly=readonly,
            checkpoint_every=max(0, checkpoint_every),
            busy_timeout_ms=busy_timeout_ms,
            signer=signer,
            host=socket.gethostname() if host is None else host,
            app=app,
            synchronous=synchronous,
        )
        try:
            if not readonly:
                store._initialise()
                # Calls a killed audited client admitted but never recorded: in the chain
                # now, as admissions no call completes (see claudesec.audit.intents).
                from claudesec.audit.intents import import_dead_journals

                import_dead_journals(store)
        except BaseException:
            conn.close()
            raise
        return store

    @classmethod
    def from_config(cls, audit: AuditConfig, *, readonly: bool = False) -> AuditStore:
        """Open the store the configuration names, with its keys and settings."""
        from claudesec.audit.secrets import AuditKeys

        keys = None if readonly else AuditKeys.from_config(audit)
        return cls.open(
            default_store_path(audit),
            readonly=readonly,
            checkpoint_every=audit.checkpoint_every,
            busy_timeout_ms=audit.busy_timeout_ms,
            synchronous=audit.synchronous,
            keys=keys,
            app=audit.app,
        )

    @classmethod
    def open_default(cls, *, readonly: bool = False) -> AuditStore:
        """Open the store of the configuration found from the current directory."""
        from claudesec.config import load_config

        return cls.from_config(load_config().config.audit, readonly=readonly)

    @staticmethod
    def _connect_writable(
        db: Path, busy_timeout_ms: int, synchronous: Literal["normal", "full"]
    ) -> sqlite3.Connection:
        try:
            db.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not db.exists():
                # SQLite gives the -wal and -shm files the database file's mode, so creating
                # it 0600 first keeps all three private.
                from claudesec.paths import create_private_file

                create_private_file(db)
        except OSError as exc:
            raise StoreError(
                f"cannot create the audit store {db}: {exc.strerror or exc}",
                hint="check that its directory exists and is writable",
            ) from exc
        try:
            conn = sqlite3.connect(
                db,
                timeout=busy_timeout_ms / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise _store_error(exc, db, "open", busy_timeout_ms) from exc
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(
                    f"the audit store {db} cannot use WAL mode (got {mode})",
                    hint="put it on a local file system",
                )
            conn.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
        except sqlite3.Error as exc:
            conn.close()
            raise _store_error(exc, db, "open", busy_timeout_ms) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def _connect_readonly(db: Path, busy_timeout_ms: int) -> sqlite3.Connection:
        if not db.exists():
            raise StoreError(
                f"no audit store at {db}",
                hint="nothing has been recorded yet, or audit.store_path points elsewhere",
            )
        uri = db.absolute().as_uri() + "?mode=ro"
        try:
            conn = sqlite3.connect(
                uri,
                uri=True,
                timeout=busy_timeout_ms / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise _store_error(exc, db, "open", busy_timeout_ms) from exc
        return conn

    def _initialise(self) -> None:
        with self._write() as conn:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            row = conn.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()
            if row is None:
                conn.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [
                        ("store_id", uuid.uuid4().hex),
                        ("schema_version", str(SCHEMA_VERSION)),
                        ("created_ns", str(time.time_ns())),
                    ],
                )
            else:
                version = conn.execute(
                    "SELECT value FROM meta WHERE key = 'schema_version'"
                ).fetchone()
                if version is not None and int(version[0]) > SCHEMA_VERSION:
                    raise StoreError(
                        f"the audit store {self.path} was written by a newer claudesec "
                        f"(schema {version[0]})",
                        hint="upgrade claudesec",
                    )
            if self._signer is not None:
                self._check_signer(conn)

    def _check_signer(self, conn: sqlite3.Connection) -> None:
        from claudesec.audit.checkpoint import public_key_bytes
        from claudesec.audit.secrets import public_key_fingerprint

        assert self._signer is not None
        mine = public_key_bytes(self._signer)
        self._signer_public = mine
        row = conn.execute("SELECT value FROM meta WHERE key = 'public_key'").fetchone()
        if row is None:
            conn.execute("INSERT INTO meta (key, value) VALUES ('public_key', ?)", (mine.hex(),))
        elif row[0] != mine.hex():
            raise StoreError(
                f"the checkpoint signing key ({public_key_fingerprint(mine)}) is not the key "
                f"this audit store is signed with "
                f"({public_key_fingerprint(bytes.fromhex(row[0]))})",
                hint="restore the original key, or point audit.store_path at the right store",
            )

    # ----------------------------------------------------------------- lifecycle

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ----------------------------------------------------------------- writing

    def append(self, event: AuditEvent) -> StoredRecord:
        """Record one event durably; returns its ``seq`` and chain hash once committed."""
        # The hot path of every audited call: no lists or rollup dict.
        return self._append_txn(self._append_one, self._prepare(event))

    def append_many(self, events: Iterable[AuditEvent]) -> list[StoredRecord]:
        """Record several events in one transaction (all or none): the cheap bulk path."""
        prepared = [self._prepare(event) for event in events]
        if not prepared:
            return []
        return self._append_txn(self._append_locked, prepared)

    def _append_txn(self, write: Callable[[sqlite3.Connection, _T], _R], items: _T) -> _R:
        """One append transaction that may use, and then keeps, the chain head."""
        if self.readonly:
            self._refuse_readonly()
        with self._lock:
            self._ensure_open()
            conn = self._conn
            self._begin(conn)
            try:
                result = write(conn, items)
                conn.execute("COMMIT")
            except BaseException as exc:
                self._abort(conn, exc)
            # Only a committed head may be kept.
            self._head_cache = self._pending_head
            return result

    def checkpoint(self) -> Checkpoint:
        """Sign the current chain head now (or return the last checkpoint if it is current)."""
        if self._signer is None:
            self._require_signer()
        with self._write() as conn:
            last = self._last_checkpoint(conn)
            head_seq, head_hash = self._head(conn)
            if last is not None and last.seq == head_seq:
                return last
            return self._write_checkpoint(conn, head_seq, head_hash, last)

    def prune(self, *, older_than_ns: int) -> PruneResult:
        """Remove records older than ``older_than_ns`` (epoch ns), up to the newest checkpoint
        that only covers such records, and record the prune as a signed event.

        The chain up to that checkpoint is verified first: prune never deletes evidence of
        tampering, and never builds on records missing without a signed prune to explain them
        (it would launder a faked prune). The prune event carries the signing key's signature
        over the kept checkpoint, which is what proves the prune to ``logs verify``. Rollups
        lose the pruned records too, so summaries match what is kept.
        """
        if self._signer is None:
            self._require_signer()
        assert self._signer is not None
        with self._write() as conn:
            store_id = self._get_store_id(conn)
            checkpoints = read_checkpoints(conn, store_id)
            start = chain_start(conn, store_id, checkpoints, self._signer_public)
            head_seq, head_hash = self._head(conn)
            row = conn.execute(
                "SELECT min(seq) FROM events WHERE time_ns >= ?", (older_than_ns,)
            ).fetchone()
            first_kept = row[0] if row[0] is not None else head_seq + 1
            anchor = next(
                (c for c in reversed(checkpoints) if start.pruned_through < c.seq < first_kept),
                None,
            )
            if anchor is None:
                return PruneResult(0, start.pruned_through, None, None)
            self._check_prunable(conn, start, anchor)
            deleted = self._delete_through(conn, anchor.seq)
            seq = head_seq + 1
            conn.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [(PRUNE_MARKER, str(anchor.number)), (PRUNE_EVENT_HINT, str(seq))],
            )
            event = AuditEvent(
                type=EventType.PRUNE,
                reason=f"retention: records older than {_iso(older_than_ns)}",
                extra={
                    "pruned_through_seq": anchor.seq,
                    "pruned_records": deleted,
                    "anchor_checkpoint": anchor.number,
                    "anchor_checkpoint_hash": anchor.hash.hex(),
                    "prune_signature": sign_prune(
                        self._signer, store_id=store_id, event_seq=seq, anchor=anchor
                    ).hex(),
                },
            )
            # The head as it was before the delete (which may have emptied the table): the
            # prune event chains to it, at the seq its signature names.
            version = conn.execute(_DATA_VERSION).fetchone()[0]
            self._open_head = (version, head_seq, head_hash, checkpoints[-1].seq)
            [record] = self._append_locked(conn, [self._prepare(event)])
            return PruneResult(deleted, anchor.seq, anchor, record)

    def pruned_through(self) -> int:
        """The last record a signed prune removed (0 if none is proven)."""
        with self.snapshot() as conn:
            if not self.initialised(conn):
                return 0
            store_id = self._get_store_id(conn)
            checkpoints = read_checkpoints(conn, store_id)
            key = self._signer_public
            if key is None:
                stored = read_meta(conn, "public_key")
                key = None if stored is None else bytes.fromhex(stored)
            return chain_start(conn, store_id, checkpoints, key).pruned_through

    def _check_prunable(
        self, conn: sqlite3.Connection, start: ChainStart, anchor: Checkpoint
    ) -> None:
        """Refuse (exit 1) unless records ``start..anchor`` are all there, chained, and end at
        the hash the anchor signed with this store's key."""
        problem = None
        if start.unexplained_gap and start.first_present is not None:
            problem = (
                f"records {start.seq}..{start.first_present - 1} are missing and no signed "
                "prune removed them"
            )
        elif not anchor.signature_valid(self._signer_public):
            problem = f"checkpoint #{anchor.number} is not signed by this store's key"
        else:
            end = walk(
                conn, start.seq, start.prev_hash, signed={anchor.seq: anchor}, until=anchor.seq
            )
            if end.contradicts is not None:
                problem = f"record {anchor.seq} does not match checkpoint #{anchor.number}"
            elif end.found is not None:
                problem = f"record {end.last_seq + 1} does not fit the hash chain"
            elif end.last_seq < anchor.seq:
                problem = f"records {end.last_seq + 1}..{anchor.seq} are missing"
        if problem is not None:
            from claudesec.errors import CheckFailed

            raise CheckFailed(
                f"refusing to prune a damaged audit log: {problem}",
                hint="run `claudesec logs verify` and keep the evidence",
            )

    @staticmethod
    def _delete_through(conn: sqlite3.Connection, through_seq: int) -> int:
        """Delete records ``..through_seq`` and take them out of the rollups; the count."""
        conn.execute(
            f"""
            WITH gone (day, user, role, model, n, calls, denials, dlp, tin, tout) AS (
                SELECT {ROLLUP_KEY_SQL}, {ROLLUP_COUNTERS_SQL}
                FROM events WHERE seq <= ? GROUP BY 1, 2, 3, 4
            )
            UPDATE rollups SET events = rollups.events - gone.n,
                calls = rollups.calls - gone.calls,
                denials = rollups.denials - gone.denials,
                dlp_events = rollups.dlp_events - gone.dlp,
                input_tokens = rollups.input_tokens - gone.tin,
                output_tokens = rollups.output_tokens - gone.tout
            FROM gone
            WHERE rollups.day = gone.day AND rollups.user = gone.user
              AND rollups.role = gone.role AND rollups.model = gone.model
            """,  # noqa: S608 - constant SQL fragments only
            (through_seq,),
        )
        conn.execute("DELETE FROM rollups WHERE events <= 0")
        return int(conn.execute("DELETE FROM events WHERE seq <= ?", (through_seq,)).rowcount)

    # ----------------------------------------------------------------- reading

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A consistent read view: every query inside sees the same state of the store."""
        with self._lock:
            self._ensure_open()
            try:
                self._conn.execute("BEGIN")
            except sqlite3.Error as exc:
                raise _store_error(exc, self.path, "read", self.busy_timeout_ms) from exc
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise _store_error(exc, self.path, "read", self.busy_timeout_ms) from exc
            finally:
                # A failed read must not leave the transaction open (it would pin the WAL).
                try:
                    self._conn.execute("COMMIT")
                except sqlite3.Error:
                    with suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")

    def initialised(self, conn: sqlite3.Connection) -> bool:
        """Whether the schema exists (a read-only open of a never-written file has none)."""
        return has_schema(conn)

    def store_id(self) -> bytes | None:
        with self.snapshot() as conn:
            if not self.initialised(conn):
                return None
            return self._get_store_id(conn)

    def head(self) -> StoredRecord:
        """The last record's seq and hash (seq 0 and the genesis hash for an empty store)."""
        with self.snapshot() as conn:
            if not self.initialised(conn):
                return StoredRecord(0, "")
            seq, rec_hash = self._head(conn)
            return StoredRecord(seq, rec_hash.hex())

    def get(self, seq: int) -> StoredEvent | None:
        with self.snapshot() as conn:
            if not self.initialised(conn):
                return None
            row = conn.execute(
                "SELECT seq, rec_hash, body FROM events WHERE seq = ?", (seq,)
            ).fetchone()
        return None if row is None else stored_event(row)

    def checkpoints(self) -> list[Checkpoint]:
        with self.snapshot() as conn:
            if not self.initialised(conn):
                return []
            store_id = self._get_store_id(conn)
            rows = conn.execute(CP_SELECT_ALL).fetchall()
        return [checkpoint_from_row(store_id, row) for row in rows]

    def last_checkpoint(self) -> Checkpoint | None:
        with self.snapshot() as conn:
            if not self.initialised(conn):
                return None
            return self._last_checkpoint(conn)

    def public_key(self) -> bytes | None:
        """The signing key's public half recorded in the store (None before any key)."""
        if self._signer_public is not None:
            return self._signer_public
        with self.snapshot() as conn:
            if not self.initialised(conn):
                return None
            row = conn.execute("SELECT value FROM meta WHERE key = 'public_key'").fetchone()
        return None if row is None else bytes.fromhex(row[0])

    # ----------------------------------------------------------------- internals

    def _ensure_open(self) -> None:
        if self._closed:
            raise StoreError(f"the audit store {self.path} is closed")

    def _require_signer(self) -> None:
        raise StoreError(
            "this audit store was opened without a signing key",
            hint="open it writable with checkpoint_every > 0, or from the configuration",
        )

    def _refuse_readonly(self) -> NoReturn:
        raise StoreError(f"the audit store {self.path} was opened read-only")

    def _begin(self, conn: sqlite3.Connection) -> None:
        # Whatever this transaction does (prune, checkpoint, a failing append), the kept head
        # is only trusted again once an append commits and sets it.
        self._head_cache, head = None, self._head_cache
        self._pending_head = None
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _store_error(exc, self.path, "write", self.busy_timeout_ms) from exc
        self._open_head = head

    def _abort(self, conn: sqlite3.Connection, exc: BaseException) -> NoReturn:
        self._pending_head = None
        # SQLite may have rolled back already (e.g. after SQLITE_FULL).
        with suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise _store_error(exc, self.path, "write", self.busy_timeout_ms) from exc
        raise exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        if self.readonly:
            self._refuse_readonly()
        with self._lock:
            self._ensure_open()
            conn = self._conn
            self._begin(conn)
            # Statements run here may change the head without moving data_version (it ignores
            # this connection's own commits): appends inside re-read the head.
            self._open_head = None
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                self._abort(conn, exc)

    def _prepare(self, event: AuditEvent) -> _Prepared:
        if not isinstance(event, AuditEvent):
            raise TypeError(f"expected an AuditEvent, got {type(event).__name__}")
        data = event.to_dict()
        if self.host and not event.host:
            data["host"] = self.host
        if self.app and not event.app:
            data["app"] = self.app
        body = canonical_dumps(data)
        kind = event.type
        return _Prepared(
            body=body,
            encoded=body.encode("utf-8"),
            rollup=(event.time_ns // NS_PER_DAY, event.user, event.role, event.model),
            counters=(
                1,
                kind == EventType.CALL,
                event.decision == "deny" or kind == EventType.DENIAL,
                bool(event.dlp_kinds) or kind == EventType.DLP_HIT,
                event.input_tokens,
                event.output_tokens,
            ),
        )

    def _chain_head(self, conn: sqlite3.Connection) -> _Head:
        """The head inside the current write transaction: the kept one if no other
        connection has committed since it was kept, else read from the tables."""
        version: int = conn.execute(_DATA_VERSION).fetchone()[0]
        kept = self._open_head
        if kept is not None and kept[0] == version:
            return kept
        seq, rec_hash, checkpoint_seq = self._head_and_checkpoint(conn)
        return version, seq, rec_hash, checkpoint_seq

    def _append_one(self, conn: sqlite3.Connection, item: _Prepared) -> StoredRecord:
        version, seq, prev, last_checkpoint_seq = self._chain_head(conn)
        seq += 1
        digest = record_hash(prev, seq, item.encoded)
        conn.execute(_INSERT_EVENT, (seq, prev, digest, item.body))
        conn.execute(_UPSERT_ROLLUP, item.rollup + item.counters)
        every = self.checkpoint_every if self._signer is not None else 0
        if every and seq - last_checkpoint_seq >= every:
            self._write_checkpoint(conn, seq, digest, self._last_checkpoint(conn))
            last_checkpoint_seq = seq
        self._pending_head = (version, seq, digest, last_checkpoint_seq)
        return StoredRecord(seq, digest.hex())

    def _append_locked(
        self, conn: sqlite3.Connection, prepared: Sequence[_Prepared]
    ) -> list[StoredRecord]:
        version, seq, prev, last_checkpoint_seq = self._chain_head(conn)
        rows: list[tuple[int, bytes, bytes, str]] = []
        records: list[StoredRecord] = []
        rollups: dict[RollupKey, list[int]] = {}
        every = self.checkpoint_every if self._signer is not None else 0
        due: list[tuple[int, bytes]] = []  # (seq, rec_hash) to sign, one per `every` records
        for item in prepared:
            seq += 1
            digest = record_hash(prev, seq, item.encoded)
            rows.append((seq, prev, digest, item.body))
            records.append(StoredRecord(seq, digest.hex()))
            prev = digest
            if every and seq - last_checkpoint_seq >= every:
                due.append((seq, digest))
                last_checkpoint_seq = seq
            acc = rollups.get(item.rollup)
            if acc is None:
                rollups[item.rollup] = list(item.counters)
            else:
                for index, value in enumerate(item.counters):
                    acc[index] += value
        if len(rows) == 1:
            conn.execute(_INSERT_EVENT, rows[0])
            [(key, acc)] = rollups.items()
            conn.execute(_UPSERT_ROLLUP, (*key, *acc))
        else:
            conn.executemany(_INSERT_EVENT, rows)
            conn.executemany(_UPSERT_ROLLUP, [(*key, *acc) for key, acc in rollups.items()])
        if due:
            last = self._last_checkpoint(conn)
            for checkpoint_seq, checkpoint_hash in due:
                last = self._write_checkpoint(conn, checkpoint_seq, checkpoint_hash, last)
        self._pending_head = (version, seq, prev, last_checkpoint_seq)
        return records

    def _head_and_checkpoint(self, conn: sqlite3.Connection) -> tuple[int, bytes, int]:
        seq, rec_hash, checkpoint_seq = conn.execute(_HEAD_AND_CHECKPOINT).fetchone()
        if seq is None:
            seq, rec_hash = self._chain_start(conn, self._get_store_id(conn))
        return int(seq), bytes(rec_hash), int(checkpoint_seq or 0)

    def _write_checkpoint(
        self,
        conn: sqlite3.Connection,
        seq: int,
        rec_hash: bytes,
        last: Checkpoint | None,
    ) -> Checkpoint:
        if self._signer is None:
            self._require_signer()
        assert self._signer is not None
        store_id = self._get_store_id(conn)
        checkpoint = sign_checkpoint(
            self._signer,
            store_id=store_id,
            number=1 if last is None else last.number + 1,
            seq=seq,
            rec_hash=rec_hash,
            prev_hash=checkpoint_genesis(store_id) if last is None else last.hash,
            time_ns=time.time_ns(),
        )
        conn.execute(
            CP_INSERT,
            (
                checkpoint.number,
                checkpoint.seq,
                checkpoint.rec_hash,
                checkpoint.prev_hash,
                checkpoint.time_ns,
                checkpoint.public_key,
                checkpoint.signature,
            ),
        )
        return checkpoint

    def _get_store_id(self, conn: sqlite3.Connection) -> bytes:
        if self._store_id is None:
            row = conn.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()
            if row is None:
                raise StoreError(
                    f"{self.path} is not a claudesec audit store (no store id)",
                    hint="run `claudesec logs verify`",
                )
            self._store_id = bytes.fromhex(row[0])
        return self._store_id

    def _chain_start(self, conn: sqlite3.Connection, store_id: bytes) -> tuple[int, bytes]:
        """``(seq, hash)`` the first record of an empty table chains to: genesis. (A prune
        always leaves its own event behind, so only a new store has no records.)"""
        return 0, genesis_hash(store_id)

    def _head(self, conn: sqlite3.Connection) -> tuple[int, bytes]:
        row = conn.execute("SELECT seq, rec_hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        if row is not None:
            return int(row[0]), bytes(row[1])
        return self._chain_start(conn, self._get_store_id(conn))

    def _last_checkpoint(self, conn: sqlite3.Connection) -> Checkpoint | None:
        row = conn.execute(CP_SELECT_LAST).fetchone()
        return None if row is None else checkpoint_from_row(self._get_store_id(conn), row)


def stored_event(row: Sequence[Any]) -> StoredEvent:
    """``(seq, rec_hash, body)`` -> :class:`StoredEvent`."""
    return StoredEvent(int(row[0]), bytes(row[1]).hex(), AuditEvent.from_json(row[2]))


def _iso(time_ns: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(time_ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _store_error(exc: sqlite3.Error, path: Path, action: str, busy_timeout_ms: int) -> StoreError:
    """One clear line for each way SQLite can fail; never a traceback."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        return StoreError(
            f"the audit store {path} is locked by another process "
            f"(waited {busy_timeout_ms / 1000:g} s)",
            hint="retry, or raise audit.busy_timeout_ms",
        )
    if name.startswith("SQLITE_FULL") or "full" in text:
        return StoreError(
            f"cannot {action} the audit store {path}: the disk is full",
            hint="free space; nothing was recorded by the failed write",
        )
    if name.startswith("SQLITE_READONLY") or "readonly" in text:
        return StoreError(
            f"cannot {action} the audit store {path}: it is read-only",
            hint="check the permissions of the file and its directory",
        )
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        return StoreError(
            f"cannot open the audit store {path}",
            hint="check that it exists and that its directory is writable",
        )
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in text:
        return DamagedStore(
            f"the audit store {path} is damaged or not a SQLite database",
            hint="keep a copy as evidence and run `claudesec logs verify`",
        )
    if name.startswith("SQLITE_IOERR"):
        return StoreError(f"cannot {action} the audit store {path}: I/O error ({text})")
    return StoreError(f"cannot {action} the audit store {path}: {text}")
