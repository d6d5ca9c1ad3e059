"""The intent journal: an audited client's admissions, durable before anything is sent, without
a SQLite commit on the calling thread.

Write ahead (issue 14, item 9) means an admitted call's record survives the process being
killed before any byte goes upstream. A commit to the store does that, but it is the largest
single cost of an audited call (SQLite's lock protocol and WAL frames, ~0.25 ms of CPU). This
journal gives the same guarantee for one ``write()``: each admission is appended as one line
of canonical JSON to a file only this process writes (``O_APPEND``), which is in the kernel's
page cache once ``write()`` returns, exactly as durable as a commit under the store's
``synchronous = "normal"`` (a kill, an OOM kill or a crash cannot lose it; a power loss can).

The call's outcome is then one record in the store (``call``, with the same ``call_id``),
written by the client's background writer. Once it is committed the journal entry is done;
a journal whose entries are all done is truncated, so it stays a few kilobytes.

After a crash the journal of the dead process holds the calls admitted but never recorded:
the next process that opens the store for writing (:func:`import_dead_journals`, called by
:meth:`AuditStore.open`) appends each as an ``admission`` record that no ``call`` completes,
which ``logs query --incomplete`` and ``logs verify`` list, and deletes the journal. Until
then :func:`pending_admissions` lets read-only tools count them. A journal belongs to a live
process while that process holds an exclusive ``flock`` on it (released by the kernel when the
process dies, however it dies), so nothing is imported from under a running client.

Layout: ``<store>.intents/<pid>-<random>.jsonl``, directory 0700, files 0600.
"""

from __future__ import annotations

import itertools
import logging
import os
import secrets
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from claudesec.audit.events import AuditEvent, EventType, InvalidEvent, canonical_dumps
from claudesec.errors import ClaudesecError

if TYPE_CHECKING:
    import sqlite3
    from contextlib import AbstractContextManager

try:
    import fcntl
except ImportError:  # Windows: no flock, so no journal; clients commit the admission instead
    AVAILABLE = False
else:
    AVAILABLE = True


class StoreLike(Protocol):
    """What the journal needs of :class:`claudesec.audit.store.AuditStore` (which imports this
    module when it opens, so this one names the store only by its shape)."""

    @property
    def path(self) -> Path: ...

    def snapshot(self) -> AbstractContextManager[sqlite3.Connection]: ...

    def initialised(self, conn: sqlite3.Connection) -> bool: ...

    def append_many(self, events: Iterable[AuditEvent]) -> Any: ...


__all__ = [
    "CALL_ID",
    "IntentJournal",
    "import_dead_journals",
    "intents_dir",
    "pending_admissions",
]

log = logging.getLogger("claudesec.audit")

# The extra field that ties a journaled admission to the call record that completes it.
CALL_ID = "call_id"
_SUFFIX = ".jsonl"
# A journal whose entries are all done is truncated once it holds this much; one with an
# entry still open (a stream a script never finished reading) is rewritten with only its open
# entries once it holds eight times as much, and four times what is still open.
_TRUNCATE_AT = 64 * 1024
_REWRITE_AT = 8 * _TRUNCATE_AT


def intents_dir(store_path: Path) -> Path:
    """Where the journals of the store at ``store_path`` live."""
    return store_path.with_name(store_path.name + ".intents")


class IntentJournal:
    """One process's journal of admissions not yet completed in the store. Thread-safe."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd
        self._lock = threading.Lock()
        self._open: dict[str, bytes] = {}  # call_id -> its line, until its call is recorded
        self._open_bytes = 0
        self._size = 0
        self._ids = itertools.count(1)
        self._prefix = f"{os.getpid():x}.{secrets.token_hex(4)}."
        self._closed = False

    @classmethod
    def create(cls, store_path: Path) -> IntentJournal:
        """A new journal beside the store at ``store_path``, locked to this process."""
        directory = intents_dir(store_path)
        directory.mkdir(mode=0o700, exist_ok=True)
        path = directory / f"{os.getpid()}-{secrets.token_hex(6)}{_SUFFIX}"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        fd = os.open(path, flags, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        return cls(path, fd)

    def new_call_id(self) -> str:
        """An id unique across processes: this journal's prefix and a counter."""
        return self._prefix + format(next(self._ids), "x")

    def admit(self, call_id: str, event: AuditEvent) -> None:
        """Make ``event`` (an admission carrying ``call_id``) durable; raises OSError when the
        journal cannot be written (the call must then be refused, as for a failed commit)."""
        line = (canonical_dumps(event.to_dict()) + "\n").encode("utf-8")
        with self._lock:
            if self._closed:
                raise OSError("the intent journal is closed")
            written = os.write(self._fd, line)
            if written != len(line):
                # A short write (disk full): the torn line is skipped on import, and the next
                # line starts on a fresh one.
                os.write(self._fd, b"\n")
                raise OSError(f"the intent journal is full ({written} of {len(line)} bytes)")
            self._size += written
            self._open[call_id] = line
            self._open_bytes += written

    def done(self, call_id: str) -> None:
        """``call_id``'s call record is committed: its entry is no longer needed."""
        with self._lock:
            line = self._open.pop(call_id, None)
            if line is None or self._closed:
                return
            self._open_bytes -= len(line)
            if not self._open:
                if self._size >= _TRUNCATE_AT:
                    os.ftruncate(self._fd, 0)
                    self._size = 0
            # Mostly done entries: rewrite. (A writer far behind keeps many open: rewriting
            # them on every completion would cost quadratic time, so wait for the file to be
            # four times what is still open.)
            elif self._size >= max(_REWRITE_AT, 4 * self._open_bytes):
                self._rewrite()

    def _rewrite(self) -> None:
        # Called with the lock held. Truncate, then re-append the open entries: a crash in
        # between loses them from the file, so write them first to a new file and rename it
        # over this one (the rename is atomic; our lock moves with the new file's fd).
        kept = b"".join(self._open.values())
        fresh = self.path.with_name(self.path.name + ".new")
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC
        fd = os.open(fresh, flags, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.write(fd, kept) != len(kept):
                raise OSError("short write while rewriting the intent journal")
            os.replace(fresh, self.path)
        except OSError:
            os.close(fd)
            fresh.unlink(missing_ok=True)
            return  # keep appending to the long file; nothing is lost
        os.close(self._fd)
        self._fd = fd
        self._size = len(kept)

    def close(self, store: StoreLike | None) -> None:
        """Stop journaling. Entries still open (calls admitted and never finished) go into
        ``store`` as admissions without an outcome; the file is then deleted. Without a store,
        or when that write fails, the file stays for the next writer to import."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            remaining = [AuditEvent.from_json(line) for line in self._open.values()]
            if remaining and store is not None:
                try:
                    store.append_many(remaining)
                    remaining = []
                except (ClaudesecError, OSError) as exc:  # the journal keeps them for later
                    log.error(
                        "claudesec: %d admission(s) left in %s: %s", len(remaining), self.path, exc
                    )
            if not remaining:
                self.path.unlink(missing_ok=True)
            os.close(self._fd)

    def forget_after_fork(self) -> None:
        """In a forked child: drop this copy without touching the file (the parent owns it);
        closing the inherited descriptor lets the lock go when the parent dies."""
        with self._lock:
            if not self._closed:
                self._closed = True
                os.close(self._fd)


@dataclass(frozen=True)
class _DeadJournal:
    path: Path
    fd: int  # holds the lock: the journal cannot be claimed twice


def _dead_journals(store_path: Path) -> Iterator[_DeadJournal]:
    """Journals whose process is gone, each locked by us until the caller closes its fd."""
    if not AVAILABLE:
        return
    directory = intents_dir(store_path)
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return
    for name in names:
        if not name.endswith(_SUFFIX):
            continue
        path = directory / name
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # Claimed by another importer that deleted it after we opened it: not ours.
            if os.fstat(fd).st_ino != os.stat(path).st_ino:
                raise FileNotFoundError(path)
        except OSError:
            os.close(fd)
            continue  # a live process's journal, or already imported
        yield _DeadJournal(path, fd)


def _read_events(fd: int) -> list[AuditEvent]:
    with os.fdopen(os.dup(fd), "rb") as handle:
        data = handle.read()
    events: list[AuditEvent] = []
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            event = AuditEvent.from_json(line)
        except (ValueError, InvalidEvent):
            continue  # a torn last line: its write failed, so its call was refused
        if event.type == EventType.ADMISSION and isinstance(event.extra.get(CALL_ID), str):
            events.append(event)
    return events


_RECORDED = (
    "SELECT 1 FROM events WHERE json_extract(body, '$.call_id') = ? "
    "AND json_extract(body, '$.call_id') IS NOT NULL LIMIT 1"
)


def _uncompleted(store: StoreLike, events: list[AuditEvent]) -> list[AuditEvent]:
    """``events`` whose call_id no record in ``store`` carries yet (call or admission)."""
    if not events:
        return []
    ids = {str(event.extra[CALL_ID]) for event in events}
    found: set[str] = set()
    with store.snapshot() as conn:
        if store.initialised(conn):
            # By the events_call_id index (a store too old to have it is scanned).
            for call_id in ids:
                row = conn.execute(_RECORDED, (call_id,)).fetchone()
                if row is not None:
                    found.add(call_id)
    unique: dict[str, AuditEvent] = {}
    for event in events:
        unique.setdefault(str(event.extra[CALL_ID]), event)
    return [event for call_id, event in unique.items() if call_id not in found]


def import_dead_journals(store: StoreLike) -> int:
    """Append the uncompleted admissions of every dead process's journal to ``store`` (as
    ``admission`` records no call completes) and delete those journals; returns how many."""
    imported = 0
    for journal in _dead_journals(store.path):
        try:
            events = _uncompleted(store, _read_events(journal.fd))
            if events:
                store.append_many(sorted(events, key=lambda event: event.time_ns))
                imported += len(events)
                log.warning(
                    "claudesec: %d call(s) admitted by a process that stopped before recording "
                    "them were imported as incomplete from %s",
                    len(events),
                    journal.path.name,
                )
            journal.path.unlink(missing_ok=True)
        finally:
            os.close(journal.fd)
    return imported


def pending_admissions(store: StoreLike) -> list[AuditEvent]:
    """The admissions in dead processes' journals that the store does not hold yet (for
    read-only tools: the next writer imports them)."""
    pending: list[AuditEvent] = []
    for journal in _dead_journals(store.path):
        try:
            pending.extend(_read_events(journal.fd))
        finally:
            os.close(journal.fd)
    return _uncompleted(store, pending)
