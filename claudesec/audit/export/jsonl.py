"""JSON Lines to a file or stdout: the simplest sink, and the one to feed any log shipper.

A file is exactly-once: each run first finds the last complete line (dropping a half-written
one left by a kill) and its ``seq``, and skips events already there; every batch is fsynced
before it counts as acknowledged.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from claudesec.audit.export.interface import (
    BatchLimits,
    Encoded,
    Rejection,
    Render,
    Sink,
    SinkUnavailable,
)
from claudesec.config import SinkConfig

_TAIL_BYTES = 1 << 20


class JsonlSink(Sink):
    kind = "jsonl"
    idempotent = True
    limits = BatchLimits(max_events=5000, max_bytes=16_000_000)

    def __init__(self, name: str, path: str, render: Render) -> None:
        super().__init__(name, render)
        self.path = None if path in ("", "-") else Path(path)
        self._fd: int | None = None
        self._last_seq = 0

    def open(self) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._last_seq = self._recover(self._fd)
        except OSError as exc:
            raise SinkUnavailable(f"cannot open {self.path}: {exc.strerror or exc}") from exc

    def _recover(self, fd: int) -> int:
        size = os.fstat(fd).st_size
        start = max(0, size - _TAIL_BYTES)
        tail = os.pread(fd, size - start, start)
        end = tail.rfind(b"\n")
        complete = start + end + 1 if end >= 0 else start
        if complete < size:
            # A kill in the middle of a write left half a line: it was never acknowledged.
            os.ftruncate(fd, complete)
        if end < 0:
            return 0
        previous = tail.rfind(b"\n", 0, end)
        try:
            return line_seq(json.loads(tail[previous + 1 : end]))
        except ValueError:
            return 0

    def send(self, batch: Sequence[Encoded]) -> Sequence[Rejection]:
        fresh = [e for e in batch if e.item.seq > self._last_seq]
        if not fresh:
            return []
        data = b"".join(e.payload + b"\n" for e in fresh)
        if self._fd is None:
            buffer = getattr(sys.stdout, "buffer", None)
            if buffer is not None:
                buffer.write(data)
                buffer.flush()
            else:
                sys.stdout.write(data.decode("utf-8"))
                sys.stdout.flush()
        else:
            try:
                os.lseek(self._fd, 0, os.SEEK_END)
                view = memoryview(data)
                while view:
                    written = os.write(self._fd, view)
                    view = view[written:]
                os.fsync(self._fd)
            except OSError as exc:
                raise SinkUnavailable(f"cannot write {self.path}: {exc.strerror or exc}") from exc
        self._last_seq = fresh[-1].item.seq
        return []

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def line_seq(doc: Any) -> int:
    """The store ``seq`` of an exported line, whatever its shape (OCSF, ECS or raw)."""
    if isinstance(doc, dict):
        for holder, key in ((doc.get("metadata"), "sequence"), (doc.get("event"), "sequence")):
            if isinstance(holder, dict) and isinstance(holder.get(key), int):
                return int(holder[key])
        if isinstance(doc.get("seq"), int):
            return int(doc["seq"])
    return 0


def from_config(name: str, config: SinkConfig) -> JsonlSink:
    from claudesec.audit.export import renderer
    from claudesec.paths import home_dir

    path = config.path or "-"
    if path != "-":
        candidate = Path(path).expanduser()
        path = str(candidate if candidate.is_absolute() else home_dir() / candidate)
    return JsonlSink(name, path, renderer(config))
