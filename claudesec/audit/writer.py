"""Audit records written by one background thread, so a server's event loop never waits on
SQLite; and group commit for the records a call must not go ahead without.

An append to the store is a transaction (tens of microseconds, milliseconds when a signed
checkpoint or a WAL checkpoint falls due); on an event loop that time is added to every
request in flight. :class:`BackgroundWriter` takes records into a bounded queue and one thread
writes them in batches (one transaction per batch, which also raises throughput).

Fail closed, without losing records:

* a batch the store refuses stays at the head of the queue and is retried every
  ``retry_s``; meanwhile :attr:`BackgroundWriter.problem` says why, and a fail-closed
  :class:`~claudesec.guard.pipeline.AuditPipeline` refuses new calls (the refusals are queued
  too, and written once the store recovers);
* when the queue is full, :meth:`BackgroundWriter.append` raises :class:`StoreError`: the
  pipeline then withholds the result of the call being recorded and refuses new ones;
* :meth:`BackgroundWriter.close` writes what is queued before it returns (a store still
  failing at that point is logged with the number of records lost).

Write ahead: :meth:`BackgroundWriter.submit` queues a record and returns a future resolved
with its ``seq`` once the transaction holding it has committed (in the WAL, so it survives
the process being killed). A queue holding such a record is written at once, without the
linger, and every record that arrived meanwhile shares the transaction: concurrent calls pay
one commit between them, not one each. A submitted record the store refuses fails its future
at once (the call it admits is refused) instead of waiting for a retry.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import Future
from typing import TYPE_CHECKING, Protocol

from claudesec.errors import ClaudesecError, StoreError

if TYPE_CHECKING:
    from claudesec.audit.events import AuditEvent
    from claudesec.audit.intents import IntentJournal
    from claudesec.audit.store import AuditStore, StoredRecord

log = logging.getLogger("claudesec.audit")

DEFAULT_MAX_PENDING = 10_000
DEFAULT_BATCH = 512
# How long the first queued record waits for others to share its transaction. Each wake-up
# of the writer competes with the event loop for the GIL, and one transaction per record costs
# several times what a record inside a batch does; a few milliseconds of delay in the store
# buys both back.
DEFAULT_LINGER_S = 0.01


class BatchStore(Protocol):
    """What the writer needs of a store (:class:`claudesec.audit.store.AuditStore`)."""

    def append_many(self, events: Iterable[AuditEvent]) -> Sequence[StoredRecord]: ...

    def close(self) -> None: ...


class BackgroundWriter:
    """A record sink for :class:`~claudesec.guard.pipeline.AuditPipeline` that never blocks
    its caller on the store. Thread-safe; start it with the constructor, stop with
    :meth:`close`."""

    def __init__(
        self,
        store: BatchStore,
        *,
        max_pending: int = DEFAULT_MAX_PENDING,
        batch: int = DEFAULT_BATCH,
        linger_s: float = DEFAULT_LINGER_S,
        retry_s: float = 1.0,
        owns_store: bool = True,
        journal: IntentJournal | None = None,
    ) -> None:
        if max_pending < 1 or batch < 1:
            raise ValueError("max_pending and batch must be >= 1")
        self.store = store
        self.max_pending = max_pending
        self._batch = batch
        self._linger_s = linger_s
        self._retry_s = retry_s
        self._owns_store = owns_store
        # Admissions made durable in an intent journal: each entry is done once the call
        # record carrying its call_id commits (see claudesec.audit.intents).
        self.journal = journal
        self._pending: deque[tuple[AuditEvent, Future[StoredRecord] | None]] = deque()
        self._waiting = 0  # submitted records in the queue: no lingering while there are any
        self._in_flight = 0
        self._cond = threading.Condition()
        self._failure = ""
        self._closing = False
        self._closed = False
        self._flushing = 0  # callers waiting in flush(): no lingering for them
        self._forked = False  # this copy lives in a child process (see _after_fork)
        self.written = 0
        self._thread = threading.Thread(
            target=self._run, name="claudesec-audit-writer", daemon=True
        )
        self._thread.start()
        _LIVE.add(self)

    # ----------------------------------------------------------------- the caller's side

    def append(self, event: AuditEvent) -> None:
        """Queue ``event``; raises :class:`StoreError` when the queue is full or closed."""
        with self._cond:
            self._check_room()
            self._pending.append((event, None))
            if len(self._pending) == 1 or len(self._pending) >= self._batch:
                self._cond.notify()  # the writer lingers on the first, hurries on a full batch

    def submit(self, event: AuditEvent) -> Future[StoredRecord]:
        """Queue ``event`` for the next transaction; the future gets its record once committed
        (or the :class:`StoreError` that kept it out). Raises at once when the queue is full."""
        future: Future[StoredRecord] = Future()
        with self._cond:
            self._check_room()
            self._pending.append((event, future))
            self._waiting += 1
            self._cond.notify()
        return future

    def append_now(self, event: AuditEvent) -> StoredRecord | None:
        """Commit ``event``, with whatever is queued before it, on the caller's thread when
        the writer thread is not in a transaction; else None: then :meth:`submit` it.

        A lone call gains nothing from the hand-off but its cost, two thread wake-ups, which
        were most of its write-ahead time; under load the writer thread is mid-commit and
        the call joins the next group. Holding the lock keeps the chain in arrival order.
        Raises :class:`StoreError` when the commit fails (queued records stay queued).
        """
        with self._cond:
            if self._forked:
                raise StoreError(_FORKED)
            if self._in_flight or self._closing or self._failure:
                return None
            if len(self._pending) >= self._batch:
                return None
            batch = [*self._pending, (event, None)]
            self._pending.clear()
            self._waiting = 0
            try:
                records = self.store.append_many([item[0] for item in batch])
            except (ClaudesecError, OSError) as exc:
                text = exc.message if isinstance(exc, ClaudesecError) else type(exc).__name__
                earlier = batch[:-1]
                _fail(earlier, StoreError(f"the audit record could not be written: {text}"))
                self._pending.extendleft(reversed([i for i in earlier if i[1] is None]))
                self._failure = text  # until the writer thread's next commit succeeds
                self._cond.notify_all()  # the writer thread retries what stays queued
                raise
            for (_, future), record in zip(batch, records, strict=True):
                if future is not None:
                    future.set_result(record)
            self._journal_done(batch)
            self.written += len(batch)
            self._cond.notify_all()  # flush() waiters
            return records[-1]

    def append_durable(self, event: AuditEvent, timeout: float | None = None) -> StoredRecord:
        """:meth:`submit` and wait for the commit (for callers that may block)."""
        return self.submit(event).result(timeout)

    def _check_room(self) -> None:
        # Called with the lock held.
        if self._forked:
            raise StoreError(_FORKED)
        if self._closing:
            raise StoreError("the audit writer is closed")
        if len(self._pending) + self._in_flight >= self.max_pending:
            raise StoreError(
                f"the audit queue is full ({self.max_pending} records waiting"
                + (f"; the store failed: {self._failure})" if self._failure else ")")
            )

    @property
    def problem(self) -> str:
        """Why new calls should be refused now; "" while records are being written."""
        with self._cond:
            if self._forked:
                return _FORKED
            if self._closing:
                return "the audit writer is closed"
            if self._failure:
                return f"the audit store failed: {self._failure}"
            if len(self._pending) + self._in_flight >= self.max_pending:
                return f"the audit queue is full ({self.max_pending} records waiting)"
            return ""

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._pending) + self._in_flight

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is written; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                return self._wait_empty(deadline)
            finally:
                self._flushing -= 1

    def _wait_empty(self, deadline: float | None) -> bool:
        # Called with the lock held.
        while self._pending or self._in_flight:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            self._cond.wait(left)
        return True

    def _after_fork(self) -> None:
        """In a child process: the writer thread did not come along, and the store's SQLite
        connection must not be used across a fork. Refuse loudly rather than hang or
        corrupt; the parent's queue is the parent's to write."""
        self._cond = threading.Condition()
        self._pending.clear()
        self._in_flight = 0
        self._forked = True
        self._closed = True
        if self.journal is not None:
            self.journal.forget_after_fork()

    def close(self, timeout: float | None = 30.0) -> None:
        """Write what is queued, stop the thread, close the store (if owned). Idempotent."""
        with self._cond:
            if self._closed:
                return
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        with self._cond:
            self._closed = True
            lost = len(self._pending) + self._in_flight
        if lost:
            log.error("claudesec: %d audit record(s) could not be written before shutdown", lost)
        if self.journal is not None:
            # Calls admitted and never finished become admissions without an outcome; with
            # records still queued (a failing store) the journal stays for the next writer.
            from claudesec.audit.store import AuditStore

            store = self.store if isinstance(self.store, AuditStore) and not lost else None
            self.journal.close(store)
        if self._owns_store and not self._thread.is_alive():
            self.store.close()

    # ----------------------------------------------------------------- the writer thread

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending:
                    return  # closing, and nothing left
                deadline = time.monotonic() + self._linger_s
                while (
                    len(self._pending) < self._batch
                    and not self._closing
                    and not self._flushing
                    and not self._waiting
                ):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                batch = [
                    self._pending.popleft() for _ in range(min(self._batch, len(self._pending)))
                ]
                self._waiting -= sum(1 for _, future in batch if future is not None)
                self._in_flight = len(batch)
                closing = self._closing
            failure = self._write(batch)
            with self._cond:
                if failure:
                    # Back to the head of the queue, in order: the chain keeps arrival order.
                    # Submitted records are not: their calls were refused (futures failed).
                    self._pending.extendleft(reversed([i for i in batch if i[1] is None]))
                    self._failure = failure
                else:
                    self.written += len(batch)
                    self._failure = ""
                self._in_flight = 0
                self._cond.notify_all()
                if failure and closing:
                    return  # one last try was made; close() reports what is lost
                # Appends notify too: wait out the whole pause, not just until the next one.
                deadline = time.monotonic() + self._retry_s
                while failure and not self._closing:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)

    def _write(self, batch: list[tuple[AuditEvent, Future[StoredRecord] | None]]) -> str:
        try:
            records = self.store.append_many([event for event, _ in batch])
        except (ClaudesecError, OSError) as exc:
            text = exc.message if isinstance(exc, ClaudesecError) else type(exc).__name__
            log.error("claudesec audit store write failed (will retry): %s", text)
            _fail(batch, StoreError(f"the audit record could not be written: {text}"))
            return text
        except Exception:  # a bug, not an outage: retrying would wedge every later record
            log.exception("claudesec: %d audit record(s) dropped: unexpected error", len(batch))
            _fail(batch, StoreError("the audit record could not be written: unexpected error"))
            return ""
        for (_, future), record in zip(batch, records, strict=True):
            if future is not None:
                future.set_result(record)
        self._journal_done(batch)
        return ""

    def _journal_done(self, batch: list[tuple[AuditEvent, Future[StoredRecord] | None]]) -> None:
        if self.journal is None:
            return
        from claudesec.audit.events import EventType
        from claudesec.audit.intents import CALL_ID

        for event, _ in batch:
            call_id = event.extra.get(CALL_ID)
            if call_id is not None and event.type != EventType.ADMISSION:
                try:
                    self.journal.done(str(call_id))
                except OSError as exc:  # the entry stays: at worst listed incomplete later
                    log.warning("claudesec: intent journal not trimmed: %s", exc)


def journaled_writer(store: AuditStore) -> BackgroundWriter:
    """A writer that owns ``store``, with an intent journal for write-ahead admissions.

    A store with ``synchronous = "full"`` (an fsync per commit) gets none: the journal is not
    fsynced, so admissions keep being committed there (see :mod:`claudesec.audit.intents`);
    nor does a platform without ``flock`` (Windows).
    Raises :class:`StoreError` (and closes the store) when the journal cannot be created.
    """
    from claudesec.audit.intents import AVAILABLE, IntentJournal

    journal = None
    if store.synchronous == "normal" and AVAILABLE:
        try:
            journal = IntentJournal.create(store.path)
        except OSError as exc:
            store.close()
            raise StoreError(
                f"cannot create the intent journal beside {store.path}: {exc.strerror or exc}",
                hint="the audit store's directory must be writable by this process",
            ) from None
    return BackgroundWriter(store, owns_store=True, journal=journal)


_FORKED = (
    "the audit writer was created in another process (before a fork): build the audited "
    "client or proxy in each worker process"
)
_LIVE: weakref.WeakSet[BackgroundWriter] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for writer in list(_LIVE):
        writer._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _fail(batch: list[tuple[AuditEvent, Future[StoredRecord] | None]], exc: StoreError) -> None:
    for _, future in batch:
        if future is not None:
            future.set_exception(exc)
