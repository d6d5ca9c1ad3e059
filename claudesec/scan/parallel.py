"""Share a scan between forked processes (Linux), with next to no coordination cost.

The work is cut into numbered chunks. Every chunk number is written into a pipe up front;
each process (the parent included, so no core waits on the others) reads four bytes at a time
to claim the next chunk until the pipe is empty. Reads that small from a pipe are atomic, so
no chunk is claimed twice, and fast processes simply claim more: that balances a tree whose
big files cluster in one corner. Each child sends its result back pickled through its own
pipe, once, at the end.

Measured on a 47,000-file tree this replaced a ``multiprocessing.Pool`` whose task and result
plumbing cost the parent ~0.35 s of CPU and the workers ~0.15 s more than the scan itself.
:func:`run` is the same without the index pipe, for work claimed from another shared source (a
directory listing that is still growing, :mod:`claudesec.scan.sources.listing`).
"""

from __future__ import annotations

import gc
import os
import pickle
import signal
import threading
from collections.abc import Callable
from typing import TypeVar, cast

R = TypeVar("R")

# Chunk numbers are 4-byte integers; the pipe must hold all of them before anyone reads, and a
# Linux pipe holds 64 KiB by default.
_INDEX_BYTES = 4
MAX_CHUNKS = 65536 // _INDEX_BYTES - 1

Claim = Callable[[], "int | None"]


class WorkerFailed(RuntimeError):
    """A forked worker died or raised: its share of the scan is missing."""


def can_fork() -> bool:
    return hasattr(os, "fork") and os.uname().sysname == "Linux"


def share(
    chunks: int,
    jobs: int,
    work: Callable[[Claim], R],
    on_claimed: Callable[[int], None] | None = None,
) -> list[R]:
    """Run ``work(claim)`` in ``jobs`` processes; ``claim()`` gives the next chunk or None.

    Returns every process's result (the parent's first). ``chunks`` must not exceed
    :data:`MAX_CHUNKS`. ``work`` runs in forked children, so it may use anything the parent
    built (a compiled engine) without pickling it; its result must pickle. ``on_claimed``,
    when given, is called a few times a second with how many chunks have been claimed so
    far: the bytes left in the shared pipe say it, so the workers report nothing.
    """
    if chunks > MAX_CHUNKS:
        raise ValueError(f"at most {MAX_CHUNKS} chunks, got {chunks}")
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, b"".join(i.to_bytes(_INDEX_BYTES, "little") for i in range(chunks)))
    finally:
        os.close(write_end)

    def claim() -> int | None:
        raw = os.read(read_end, _INDEX_BYTES)
        return int.from_bytes(raw, "little") if len(raw) == _INDEX_BYTES else None

    def started() -> Callable[[], None] | None:
        if on_claimed is None:
            return None
        return Ticker(lambda: on_claimed(chunks - unread(read_end) // _INDEX_BYTES)).stop

    try:
        return run(min(jobs, chunks), lambda: work(claim), started)
    finally:
        os.close(read_end)


def run(
    processes: int,
    work: Callable[[], R],
    started: Callable[[], Callable[[], None] | None] | None = None,
) -> list[R]:
    """Run ``work()`` in this process and ``processes - 1`` forked children, the parent's
    result first; ``work`` takes its share from some source all of them read (a pipe).

    ``started``, when given, is called in the parent once the children are forked (a thread
    may be started then, never before a fork) and may return what stops it afterwards.
    """
    # Objects alive now are only read by the children: keep the collector from walking (and
    # so copying) every page of them in each child.
    gc.freeze()
    children: list[tuple[int, int]] = []
    try:
        for _ in range(max(0, processes - 1)):
            result_read, result_write = os.pipe()
            try:
                pid = os.fork()
            except OSError:
                # No process to spare (a container's pid limit): the work is claimed, not
                # assigned, so the processes already running take all of it.
                os.close(result_read)
                os.close(result_write)
                break
            if pid == 0:  # pragma: no cover - runs in the child; its result is what is tested
                os.close(result_read)
                _child(work, result_write)
            os.close(result_write)
            children.append((pid, result_read))
        stop = started() if started is not None else None
        try:
            results = [work()]
        finally:
            if stop is not None:
                stop()
        while children:
            pid, fd = children.pop(0)
            results.append(cast(R, _collect(pid, fd)))
        return results
    finally:
        for pid, fd in children:  # only after an error: do not leave workers behind
            _stop(pid)
            os.close(fd)
        gc.unfreeze()


class Ticker:
    """A thread of the parent that calls ``tick()`` a few times a second until stopped: to
    redraw progress. Started after the forks (a thread must never be forked); a timer, not
    synchronisation: no process waits on it."""

    def __init__(self, tick: Callable[[], None]) -> None:
        self._tick = tick
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scan-progress", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(0.2):
            try:
                self._tick()
            except OSError:
                return

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


def unread(fd: int) -> int:
    """How many bytes wait in the pipe ``fd``: what is left to claim from it."""
    import fcntl  # POSIX only, as the forking that shares the pipe
    import termios

    buffer = bytearray(4)
    fcntl.ioctl(fd, termios.FIONREAD, buffer)
    return int.from_bytes(buffer, "little")


def _child(work: Callable[[], R], out: int) -> None:  # pragma: no cover - a forked child
    code = 0
    try:
        payload = pickle.dumps((True, work()), protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException as exc:
        payload = pickle.dumps((False, f"{type(exc).__name__}: {exc}"))
        code = 1
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(out, view) :]
    finally:
        # No atexit handlers, no flushing of the parent's stdio buffers a second time.
        os._exit(code)


def _collect(pid: int, fd: int) -> object:
    parts: list[bytes] = []
    try:
        while chunk := os.read(fd, 1 << 20):
            parts.append(chunk)
    finally:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
    if not parts:
        raise WorkerFailed(f"scan worker {pid} died ({_describe(status)})")
    # Written by our own forked child into a pipe only it and we hold.
    ok, value = pickle.loads(b"".join(parts))  # noqa: S301
    if not ok:
        raise WorkerFailed(f"scan worker {pid} failed: {value}")
    return value


def _stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"
