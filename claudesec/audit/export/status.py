"""How far behind each sink is: ``logs export status``."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from claudesec.audit.export.cursor import CursorStore
from claudesec.audit.store import AuditStore
from claudesec.config import SinkConfig


@dataclass(frozen=True, slots=True)
class SinkStatus:
    sink: str
    type: str
    cursor: int
    head: int
    lag_events: int
    lag_s: float | None  # age of the oldest event not yet shipped (None when caught up)
    shipped: int
    dead_lettered: int
    last_error: str
    updated_ns: int
    foreign_cursor: bool  # the cursor belongs to another store

    def to_dict(self) -> dict[str, object]:
        return {
            "sink": self.sink,
            "type": self.type,
            "cursor": self.cursor,
            "head": self.head,
            "lag_events": self.lag_events,
            "lag_s": self.lag_s,
            "shipped": self.shipped,
            "dead_lettered": self.dead_lettered,
            "last_error": self.last_error,
            "updated_ns": self.updated_ns,
            "foreign_cursor": self.foreign_cursor,
        }


def export_status(
    store: AuditStore | None,
    cursors: CursorStore,
    sinks: Mapping[str, SinkConfig],
    *,
    now_ns: int | None = None,
) -> list[SinkStatus]:
    """One row per configured sink (and per orphan cursor), with its lag behind the store."""
    now = time.time_ns() if now_ns is None else now_ns
    store_id = ""
    head = 0
    if store is not None:
        raw_id = store.store_id()
        store_id = raw_id.hex() if raw_id else ""
        head = store.head().seq
    known = {c.sink: c for c in cursors.all()}
    rows: list[SinkStatus] = []
    for name in sorted(set(sinks) | set(known)):
        cursor = known.get(name)
        seq = cursor.seq if cursor is not None else 0
        foreign = cursor is not None and bool(store_id) and cursor.store_id != store_id
        lag_events = max(0, head - seq) if not foreign else head
        lag_s: float | None = None
        if lag_events and store is not None:
            with store.snapshot() as conn:
                row = conn.execute(
                    "SELECT time_ns FROM events WHERE seq > ? ORDER BY seq LIMIT 1",
                    (0 if foreign else seq,),
                ).fetchone()
            if row is not None:
                lag_s = max(0.0, (now - int(row[0])) / 1e9)
        config = sinks.get(name)
        rows.append(
            SinkStatus(
                sink=name,
                type=config.type if config is not None else "(not configured)",
                cursor=seq,
                head=head,
                lag_events=lag_events,
                lag_s=lag_s,
                shipped=cursor.shipped if cursor else 0,
                dead_lettered=cursor.dead_lettered if cursor else 0,
                last_error=cursor.last_error if cursor else "",
                updated_ns=cursor.updated_ns if cursor else 0,
                foreign_cursor=foreign,
            )
        )
    return rows
