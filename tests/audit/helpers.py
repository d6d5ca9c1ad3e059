"""Building real audit stores for the tests, and editing them behind the store's back."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from claudesec.audit import AuditEvent, AuditStore
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
