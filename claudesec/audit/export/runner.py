"""Shipping the store to a sink: read after the cursor, batch, send, retry, dead-letter, advance.

Delivery guarantee: at least once, and exactly once for sinks with idempotent ids
(Elasticsearch ``_id``, the JSONL file that remembers its last ``seq``). The cursor moves only
after the sink acknowledged a batch and after the batch's rejected events are safely in the
dead-letter file, so killing the exporter at any instant loses nothing: the restart re-sends
at most the one batch that was in flight.

Memory stays bounded: one batch is read, encoded and sent at a time, each read in its own
short snapshot (a long-lived read transaction would pin the store's WAL and let it grow).
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from claudesec.audit.events import AuditEvent
from claudesec.audit.export.cursor import CursorStore
from claudesec.audit.export.interface import (
    Encoded,
    ExportItem,
    Rejection,
    Sink,
    SinkRetry,
    dumps,
)
from claudesec.audit.store import AuditStore
from claudesec.errors import ClaudesecError, ExitCode, ExternalServiceError

if TYPE_CHECKING:
    from claudesec.config import ExportConfig


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter (spreads many exporters that failed together)."""

    max_attempts: int = 8
    initial_s: float = 0.5
    max_s: float = 30.0

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        ceiling = min(self.max_s, self.initial_s * (2 ** max(0, attempt - 1)))
        return float(ceiling * rng())


@dataclass(slots=True)
class RunStats:
    """What one run did (mutable while it runs; reported at the end)."""

    shipped: int = 0
    dead_lettered: int = 0
    batches: int = 0
    retries: int = 0
    skipped_pruned: int = 0
    cursor: int = 0
    head: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        """4 (partial) once any event went to the dead-letter file: the sink does not hold
        everything the store does, and a monitor watching only the exit code must see it."""
        return ExitCode.PARTIAL if self.dead_lettered else ExitCode.OK


class DeadLetter:
    """An append-only 0600 JSONL file of events a sink refused for good, with its reason."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, sink: str, rejected: Sequence[tuple[Rejection, Encoded]]) -> None:
        if not rejected:
            return
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lines = []
        for rejection, encoded in rejected:
            try:
                payload: object = json.loads(encoded.payload)
            except ValueError:
                payload = encoded.payload.decode("utf-8", "replace")
            record = {
                "sink": sink,
                "seq": rejection.seq,
                "uid": encoded.item.uid,
                "reason": rejection.reason,
                "time_ns": time.time_ns(),
                "payload": payload,
            }
            # A sink's reason may quote a hostile reply: dumps() keeps it valid UTF-8.
            lines.append(dumps(record) + b"\n")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, b"".join(lines))
            # The cursor moves past these events next: they must be on disk first.
            os.fsync(fd)
        finally:
            os.close(fd)


class Exporter:
    """Ships one store to one sink under one cursor."""

    def __init__(
        self,
        store: AuditStore,
        sink: Sink,
        cursors: CursorStore,
        deadletter: DeadLetter,
        *,
        batch_size: int = 500,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        on_progress: Callable[[RunStats], None] | None = None,
        on_retry: Callable[[str, float], None] | None = None,
    ) -> None:
        self.store = store
        self.sink = sink
        self.cursors = cursors
        self.deadletter = deadletter
        self.batch_size = max(1, min(batch_size, sink.limits.max_events))
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = rng
        self._on_progress = on_progress
        self._on_retry = on_retry
        self.stats = RunStats()
        store_id = store.store_id()
        self.store_id = store_id.hex() if store_id else ""

    # ----------------------------------------------------------------- cursor

    def position(self) -> int:
        cursor = self.cursors.get(self.sink.name)
        if cursor is None:
            return 0
        if cursor.store_id != self.store_id:
            raise ExternalServiceError(
                f"the cursor of sink {self.sink.name!r} belongs to another audit store "
                f"({cursor.store_id[:8]}..., this one is {self.store_id[:8]}...)",
                hint="use --since to start this sink over on this store",
            )
        return cursor.seq

    def seek(self, since_ns: int) -> int:
        """Point the cursor just before the first event at or after ``since_ns``."""
        with self.store.snapshot() as conn:
            row = conn.execute(
                "SELECT min(seq) FROM events WHERE time_ns >= ?", (since_ns,)
            ).fetchone()
            if row[0] is None:
                head = conn.execute("SELECT max(seq) FROM events").fetchone()[0]
                seq = int(head or 0)
            else:
                seq = int(row[0]) - 1
        self.cursors.set(self.sink.name, self.store_id, seq)
        return seq

    # ----------------------------------------------------------------- running

    def run(
        self,
        *,
        follow: bool = False,
        poll_s: float = 1.0,
        stop: Callable[[], bool] | None = None,
    ) -> RunStats:
        """Ship until caught up (or, with ``follow``, until ``stop()`` says so)."""
        stats = RunStats(cursor=self.position())
        # Kept on the exporter so a follower stopped by a signal can still report its figures.
        self.stats = stats
        self._open(forever=follow, stop=stop)
        try:
            while stop is None or not stop():
                batch = self._read(stats.cursor)
                if not batch:
                    stats.head = stats.cursor
                    if not follow:
                        break
                    self._sleep(poll_s)
                    continue
                if batch[0].seq > stats.cursor + 1:
                    # Pruned before this sink got them: nothing to send, but say so.
                    stats.skipped_pruned += batch[0].seq - stats.cursor - 1
                for chunk in self._chunks(batch, stats):
                    self._deliver(chunk, stats, forever=follow, stop=stop)
                if self._on_progress is not None:
                    stats.head = self._head()
                    self._on_progress(stats)
        finally:
            self.sink.close()
        stats.head = max(stats.head, self._head()) if not follow else stats.head
        return stats

    def _open(self, *, forever: bool, stop: Callable[[], bool] | None) -> None:
        """The sink's ``open()`` under the same retry rule as a batch: a hung or throttled
        endpoint while creating a log stream is a retry, then exit 3, never a traceback."""
        attempt = 0
        while True:
            try:
                self.sink.open()
                return
            except SinkRetry as retry:
                attempt += 1
                self._backoff(retry, attempt, forever=forever, stop=stop)

    def _backoff(
        self,
        retry: SinkRetry,
        attempt: int,
        *,
        forever: bool,
        stop: Callable[[], bool] | None,
    ) -> None:
        """Wait before attempt ``attempt + 1``, or give up (exit 3) once attempts run out."""
        if attempt >= self.retry.max_attempts and not forever:
            self.cursors.note_error(self.sink.name, self.store_id, retry.message)
            raise ExternalServiceError(
                f"sink {self.sink.name!r} still failing after {attempt} attempts: {retry.message}",
                hint="nothing was lost: the next run resumes from the cursor",
            ) from None
        if stop is not None and stop():
            raise KeyboardInterrupt from None
        delay = self.retry.delay(min(attempt, self.retry.max_attempts), self._rng)
        if retry.retry_after_s is not None:
            delay = max(delay, min(retry.retry_after_s, self.retry.max_s))
        if self._on_retry is not None:
            self._on_retry(retry.message, delay)
        self._sleep(delay)

    def _head(self) -> int:
        return self.store.head().seq

    def _read(self, after: int) -> list[ExportItem]:
        with self.store.snapshot() as conn:
            if not self.store.initialised(conn):
                return []
            rows = conn.execute(
                "SELECT seq, rec_hash, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, self.batch_size),
            ).fetchall()
        return [
            ExportItem(int(seq), bytes(rec).hex(), AuditEvent.from_json(body), self.store_id)
            for seq, rec, body in rows
        ]

    def _chunks(self, batch: list[ExportItem], stats: RunStats) -> Iterator[list[Encoded]]:
        """Split ``batch`` so each request stays under the sink's byte limit."""
        limit = self.sink.limits.max_bytes
        chunk: list[Encoded] = []
        size = 0
        for item in batch:
            encoded = Encoded(item, self.sink.encode(item))
            if len(encoded.payload) > limit:
                if chunk:
                    yield chunk
                    chunk, size = [], 0
                rejection = Rejection(item.seq, f"event is larger than the sink's {limit} bytes")
                self._settle([], [(rejection, encoded)], item.seq, stats)
                continue
            if chunk and size + len(encoded.payload) > limit:
                yield chunk
                chunk, size = [], 0
            chunk.append(encoded)
            size += len(encoded.payload) + 1
        if chunk:
            yield chunk

    def _deliver(
        self,
        chunk: list[Encoded],
        stats: RunStats,
        *,
        forever: bool,
        stop: Callable[[], bool] | None,
    ) -> None:
        pending = chunk
        rejected: list[tuple[Rejection, Encoded]] = []
        by_seq = {encoded.item.seq: encoded for encoded in chunk}
        attempt = 0
        while True:
            try:
                refused = self.sink.send(pending)
            except SinkRetry as retry:
                rejected.extend((r, by_seq[r.seq]) for r in retry.rejected if r.seq in by_seq)
                if retry.pending is not None:
                    keep = set(retry.pending)
                    pending = [e for e in pending if e.item.seq in keep]
                    if not pending:
                        break
                attempt += 1
                stats.retries += 1
                self._backoff(retry, attempt, forever=forever, stop=stop)
                continue
            rejected.extend((r, by_seq[r.seq]) for r in refused if r.seq in by_seq)
            break
        delivered = [e for e in chunk if e.item.seq not in {r.seq for r, _ in rejected}]
        self._settle(delivered, rejected, chunk[-1].item.seq, stats)

    def _settle(
        self,
        delivered: Sequence[Encoded],
        rejected: Sequence[tuple[Rejection, Encoded]],
        through: int,
        stats: RunStats,
    ) -> None:
        self.deadletter.write(self.sink.name, rejected)
        self.cursors.advance(
            self.sink.name,
            self.store_id,
            through,
            shipped=len(delivered),
            dead_lettered=len(rejected),
        )
        stats.cursor = through
        stats.shipped += len(delivered)
        stats.dead_lettered += len(rejected)
        stats.batches += 1


def build_exporter(
    store: AuditStore,
    export: ExportConfig,
    name: str,
    cursors: CursorStore,
    *,
    on_progress: Callable[[RunStats], None] | None = None,
    on_retry: Callable[[str, float], None] | None = None,
) -> Exporter:
    """The exporter for configured sink ``name``, with the configured batching and retries."""
    from claudesec.audit.export import build_sink, sink_config, state_dir

    config = sink_config(export, name)
    sink = build_sink(name, config)
    return Exporter(
        store,
        sink,
        cursors,
        DeadLetter(state_dir(export) / f"{name}.deadletter.jsonl"),
        batch_size=config.batch_size or sink.default_batch or export.batch_size,
        retry=RetryPolicy(export.max_attempts, export.backoff_initial_s, export.backoff_max_s),
        on_progress=on_progress,
        on_retry=on_retry,
    )


@dataclass(frozen=True, slots=True)
class SinkRun:
    """One sink's part of a shipping run: its stats, or the one-line error that stopped it."""

    name: str
    stats: RunStats | None = None
    error: str = ""


@dataclass(frozen=True, slots=True)
class ShipReport:
    """Every sink's run; the exit code the whole run means."""

    runs: tuple[SinkRun, ...]
    interrupted: bool = False

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(run.name for run in self.runs if run.error)

    @property
    def exit_code(self) -> ExitCode:
        """0 when every sink shipped everything; 3 when no sink could ship; 4 (partial) when
        some sinks failed or any event went to a dead-letter file instead of its sink."""
        failed = self.failed
        if failed:
            return ExitCode.EXTERNAL if len(failed) == len(self.runs) else ExitCode.PARTIAL
        if any(run.stats is not None and run.stats.exit_code for run in self.runs):
            return ExitCode.PARTIAL
        return ExitCode.OK


def ship(
    store: AuditStore,
    export: ExportConfig,
    names: Sequence[str],
    cursors: CursorStore,
    *,
    since_ns: int | None = None,
    follow: bool = False,
    stop: Callable[[], bool] | None = None,
    on_start: Callable[[str], None] | None = None,
    on_progress: Callable[[str], Callable[[RunStats], None] | None] | None = None,
    on_retry: Callable[[str, float], None] | None = None,
    on_done: Callable[[SinkRun], None] | None = None,
) -> ShipReport:
    """Ship ``store`` to each sink in ``names`` in turn, each from its own cursor.

    With one sink its error propagates as raised (its own exit code); with several, a sink that
    fails is reported and the others still run: the report's exit code says partial (4) or
    failed (3). Ctrl-C stops the run with what was shipped kept (cursors are durable).
    """
    runs: list[SinkRun] = []
    for name in names:
        try:
            exporter = build_exporter(
                store,
                export,
                name,
                cursors,
                on_progress=on_progress(name) if on_progress else None,
                on_retry=on_retry,
            )
            if since_ns is not None:
                exporter.seek(since_ns)
            if on_start is not None:
                on_start(name)
            try:
                stats = exporter.run(follow=follow, poll_s=export.poll_s, stop=stop)
            except KeyboardInterrupt:
                # What was shipped is kept (the cursor is durable); what was dead-lettered
                # before the interrupt still makes the run partial.
                runs.append(SinkRun(name, stats=exporter.stats))
                if on_done is not None:
                    on_done(runs[-1])
                return ShipReport(tuple(runs), interrupted=True)
        except ClaudesecError as exc:
            if len(names) == 1:
                raise
            run = SinkRun(name, error=exc.user_message())
        else:
            run = SinkRun(name, stats=stats)
        runs.append(run)
        if on_done is not None:
            on_done(run)
    return ShipReport(tuple(runs))
