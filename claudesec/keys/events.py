"""Where key operations report what they did: an :class:`AuditSink`.

Every rotation step, pool change, revoke and rollback calls ``sink.record(event_type,
**fields)``. The default writes to the local audit store (``claudesec.audit.store``) as a
``key_rotation`` event with the fields under ``extra``; :class:`NullSink` drops events and
:class:`MemorySink` keeps them (tests, dry runs).

Fields carry key ids and hints only. As a last line of defence any string value that looks
like a credential is replaced by its hint before it is recorded.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from claudesec.redact import looks_like_secret, redact

if TYPE_CHECKING:
    from claudesec.audit.store import AuditStore
    from claudesec.config import AuditConfig

EVENT_TYPE = "key_rotation"


class AuditSink(Protocol):
    def record(self, event_type: str, **fields: Any) -> None: ...


def safe_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` with every credential-looking string replaced by its hint."""
    clean: dict[str, Any] = {}
    for name, raw in fields.items():
        value: Any = raw
        if isinstance(raw, str) and looks_like_secret(raw):
            value = redact(raw)
        elif isinstance(raw, (list, tuple)):
            value = [redact(v) if isinstance(v, str) and looks_like_secret(v) else v for v in raw]
        if value is not None:
            clean[name] = value
    return clean


class NullSink:
    def record(self, event_type: str, **fields: Any) -> None:
        return None


@dataclass
class MemorySink:
    """Keeps events in a list (thread-safe)."""

    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, event_type: str, **fields: Any) -> None:
        with self._lock:
            self.events.append((event_type, safe_fields(fields)))

    def steps(self) -> list[str]:
        return [str(f.get("step", t)) for t, f in self.events]


class AuditStoreSink:
    """Writes each event to the audit store as one hash-chained record.

    A failed write raises (``StoreError``, exit 3): a key operation that cannot be audited
    stops where it is, and the next run resumes it.
    """

    def __init__(self, store: AuditStore) -> None:
        self.store = store

    def record(self, event_type: str, **fields: Any) -> None:
        from claudesec.audit.events import AuditEvent, Decision

        clean = safe_fields(fields)
        step = str(clean.pop("step", event_type))
        outcome = str(clean.get("outcome", ""))
        self.store.append(
            AuditEvent(
                type=EVENT_TYPE,
                reason=step,
                decision=Decision.ERROR if outcome == "failed" else "",
                extra={"key_event": event_type, **clean},
            )
        )

    def close(self) -> None:
        self.store.close()


class LazySink:
    """An :class:`AuditStoreSink` opened at the first event: read-mostly commands (``keys
    status``) record only when they change something, and must not create the store
    otherwise."""

    def __init__(self, audit: AuditConfig) -> None:
        self.audit = audit
        self._sink: AuditStoreSink | None = None

    def record(self, event_type: str, **fields: Any) -> None:
        if self._sink is None:
            from claudesec.audit.store import AuditStore

            self._sink = AuditStoreSink(AuditStore.from_config(self.audit))
        self._sink.record(event_type, **fields)

    def close(self) -> None:
        if self._sink is not None:
            self._sink.close()


def open_sink(audit: AuditConfig, *, lazy: bool = False) -> AuditSink:
    """The audit store the configuration names, or :class:`NullSink` if it is unavailable."""
    try:
        from claudesec.audit.store import AuditStore
    except ImportError:  # an installation without the audit package
        return NullSink()
    if lazy:
        return LazySink(audit)
    return AuditStoreSink(AuditStore.from_config(audit))
