"""The audit trail: a tamper-evident local store of every Claude call, denial and admin action.

This package is imported by writers that must start fast (the CLI, key rotation, drills), so
it only re-exports the store and the schema. The audited client (``claudesec.guard.client``,
which needs ``anthropic``) is never imported from here.

Writers use::

    from claudesec.audit import AuditEvent, AuditStore, EventType, prompt_hash

    with AuditStore.open_default() as store:
        store.append(AuditEvent(type=EventType.CALL, user="alice", model="claude-haiku-4-5",
                                prompt_hash=prompt_hash(prompt_text)))
"""

from __future__ import annotations

from claudesec.audit.events import AuditEvent, Decision, EventType
from claudesec.audit.secrets import prompt_hash
from claudesec.audit.store import AuditStore, StoredEvent, StoredRecord

__all__ = [
    "AuditEvent",
    "AuditStore",
    "Decision",
    "EventType",
    "StoredEvent",
    "StoredRecord",
    "prompt_hash",
]
