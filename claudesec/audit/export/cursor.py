"""Durable per-sink cursors: the last ``seq`` each sink acknowledged.

Kept in a sidecar SQLite file (``export/cursors.db``), not in the audit store, because:

* the exporter then needs only read access to the store: it can run as another user, and a
  bug in it can never write into the evidence;
* store writers never wait on the exporter's lock (one cursor update per batch);
* the chained store stays exactly what ``logs verify`` checks.

Each cursor row also remembers the store's id, so a cursor is never applied to a different
store (a restored or replaced file) by mistake. Updates are single-row transactions with
``synchronous=FULL``: a cursor that went backwards after a power loss would re-send a batch,
which is a duplicate for sinks without idempotent ids.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from claudesec.errors import StoreError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cursors (
    sink TEXT PRIMARY KEY,
    store_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    shipped INTEGER NOT NULL DEFAULT 0,
    dead_lettered INTEGER NOT NULL DEFAULT 0,
    updated_ns INTEGER NOT NULL,
    last_error TEXT NOT NULL DEFAULT ''
)
"""


@dataclass(frozen=True, slots=True)
class Cursor:
    sink: str
    store_id: str
    seq: int
    shipped: int
    dead_lettered: int
    updated_ns: int
    last_error: str


class CursorStore:
    """The cursor file; one instance per process is enough."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not path.exists():
                from claudesec.paths import create_private_file

                create_private_file(path)
            self._conn = sqlite3.connect(path, timeout=10, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the export cursor file {path}: {exc}") from exc

    def get(self, sink: str) -> Cursor | None:
        row = self._conn.execute(
            "SELECT sink, store_id, seq, shipped, dead_lettered, updated_ns, last_error "
            "FROM cursors WHERE sink = ?",
            (sink,),
        ).fetchone()
        return None if row is None else Cursor(*row)

    def all(self) -> list[Cursor]:
        rows = self._conn.execute(
            "SELECT sink, store_id, seq, shipped, dead_lettered, updated_ns, last_error "
            "FROM cursors ORDER BY sink"
        ).fetchall()
        return [Cursor(*row) for row in rows]

    def advance(
        self, sink: str, store_id: str, seq: int, *, shipped: int = 0, dead_lettered: int = 0
    ) -> None:
        """Record that ``sink`` holds everything up to ``seq`` (one atomic transaction)."""
        try:
            self._conn.execute(
                """
                INSERT INTO cursors (sink, store_id, seq, shipped, dead_lettered, updated_ns)
                VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (sink) DO UPDATE SET
                    store_id = excluded.store_id, seq = excluded.seq,
                    shipped = shipped + excluded.shipped,
                    dead_lettered = dead_lettered + excluded.dead_lettered,
                    updated_ns = excluded.updated_ns, last_error = ''
                """,
                (sink, store_id, seq, shipped, dead_lettered, time.time_ns()),
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write the export cursor file {self.path}: {exc}") from exc

    def set(self, sink: str, store_id: str, seq: int) -> None:
        """Move a cursor anywhere (``--since``): forwards skips, backwards re-sends."""
        self._conn.execute(
            """
            INSERT INTO cursors (sink, store_id, seq, updated_ns) VALUES (?, ?, ?, ?)
            ON CONFLICT (sink) DO UPDATE SET store_id = excluded.store_id, seq = excluded.seq,
                updated_ns = excluded.updated_ns
            """,
            (sink, store_id, seq, time.time_ns()),
        )

    def note_error(self, sink: str, store_id: str, message: str) -> None:
        """Remember why the last run stopped (shown by ``logs export status``)."""
        self._conn.execute(
            """
            INSERT INTO cursors (sink, store_id, seq, updated_ns, last_error)
            VALUES (?, ?, 0, ?, ?)
            ON CONFLICT (sink) DO UPDATE SET last_error = excluded.last_error
            """,
            (sink, store_id, time.time_ns(), message[:500]),
        )

    def close(self) -> None:
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
