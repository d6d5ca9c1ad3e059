"""Runs drills: each in its own directory, timed, cleaned up whatever happens.

Drills run on a small thread pool (they wait on git, sockets and child processes far more
than they compute), each with its own servers and stores, so none sees another's state. A
final drill (the canary sweep) runs after the rest with everything they captured.

SIGINT and SIGTERM stop the run: no new drill starts, each running drill sees the cancel flag
at its next attempt or child process and its ``finally`` runs its cleanup and closes its
servers, the run directory is removed, and the report comes back marked ``interrupted``, with
the drills that finished and every other one "not run", so the JUnit and JSON reports are
still written. A drill still inside one long step (an import, a server starting) after
:data:`GRACE_S` is abandoned: its child processes are killed and it is named in the report,
whose caller then exits without joining its thread, so Ctrl-C takes effect within about a
second whatever the drills are doing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from claudesec.drill.context import DrillContext, Leak, SweepResult
from claudesec.drill.interface import Drill, SweepInput
from claudesec.drill.model import (
    DrillFailed,
    DrillInfraError,
    DrillResult,
    DrillSkipped,
    RunReport,
    Status,
)
from claudesec.drill.settings import DrillSettings
from claudesec.errors import ClaudesecError, ExitCode

RUN_PREFIX = "claudesec-drill-"
# How long an interrupted run waits for running drills to clean up before abandoning them.
GRACE_S = 0.7
Progress = Callable[[str, str, DrillResult | None], None]  # (event, drill name, result)


class DrillInterrupted(BaseException):
    """SIGINT or SIGTERM arrived; every started drill has been cleaned up."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum


@dataclass(frozen=True)
class _Done:
    result: DrillResult
    sweep: SweepResult
    canaries: tuple[str, ...]


def default_jobs() -> int:
    # Twice the cores: drills mostly wait (git, subprocesses, loopback servers).
    return max(2, min(8, 2 * (os.cpu_count() or 1)))


def run_drills(
    drills: Sequence[type[Drill]],
    settings: DrillSettings | None = None,
    *,
    jobs: int = 0,
    progress: Progress | None = None,
    temp_root: str | None = None,
) -> RunReport:
    """Run ``drills`` (final drills last) and return every result in the order given."""
    settings = settings or DrillSettings()
    started = time.perf_counter()
    cancel = threading.Event()
    root = Path(tempfile.mkdtemp(prefix=RUN_PREFIX, dir=temp_root))
    ordinary = [d for d in drills if not d.final]
    finals = [d for d in drills if d.final]
    done: dict[str, _Done] = {}
    logs = _LogCapture()
    interrupted = False
    running: dict[str, DrillContext] = {}
    abandoned: list[str] = []
    try:
        with _signals_raise(cancel), logs:
            _run_pool(
                ordinary,
                settings,
                root,
                cancel,
                jobs or default_jobs(),
                progress,
                done,
                _Tracking(running, abandoned),
            )
            for cls in finals:
                sweep = SweepInput(
                    results=tuple(d.result for d in done.values()),
                    canaries=tuple(c for d in done.values() for c in d.canaries),
                    examined=sum(d.sweep.examined for d in done.values()),
                    leaks=tuple(leak for d in done.values() for leak in d.sweep.leaks),
                    logs=tuple(logs.lines),
                )
                done[cls.name] = _run_one(cls, settings, root, cancel, progress, sweep=sweep)
    except DrillInterrupted:
        interrupted = True  # every started drill has cleaned up by now (see _run_pool)
    finally:
        remove_run_dir(root)
    # The flag, not only the exception, says a signal came: library code running in the main
    # thread when it arrived may swallow the exception (a finalizer, a broad except), and the
    # run must still end interrupted (exit 130), not look like a clean run of skipped drills.
    interrupted = interrupted or cancel.is_set()
    results = tuple(
        done[d.name].result
        if d.name in done
        else _result(d, Status.SKIPPED, time.perf_counter(), None, NOT_RUN)
        for d in drills
    )
    return RunReport(
        results=results,
        wall_s=time.perf_counter() - started,
        interrupted=interrupted,
        abandoned=tuple(abandoned),
        run_dir=str(root),
    )


def remove_run_dir(root: Path | str, *, attempts: int = 40) -> bool:
    """Remove the run's directory, again while something is still writing into it: a killed
    child's last writes, or an abandoned drill's thread, can land between ``rmtree``'s listing
    and its ``rmdir`` (ENOTEMPTY, ignored), which left the directory behind after a Ctrl-C under
    load. Bounded: ~2 s at most; True once it is gone."""
    for attempt in range(attempts):
        shutil.rmtree(root, ignore_errors=True)
        if not os.path.lexists(root):
            return True
        time.sleep(0.05 if attempt else 0.0)
    return False


@dataclass(frozen=True)
class _Tracking:
    """The contexts of drills in progress (by name), and the names the run gave up waiting for."""

    running: dict[str, DrillContext]
    abandoned: list[str]


NOT_RUN = "not run: the run was interrupted"


def _run_pool(
    drills: Sequence[type[Drill]],
    settings: DrillSettings,
    root: Path,
    cancel: threading.Event,
    jobs: int,
    progress: Progress | None,
    done: dict[str, _Done],
    tracking: _Tracking,
) -> None:
    if jobs <= 1 or len(drills) <= 1:
        # On this thread: the signal's exception unwinds the drill through its own cleanup.
        for cls in drills:
            done[cls.name] = _run_one(cls, settings, root, cancel, progress)
        return
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="claudesec-drill")
    futures: dict[Future[_Done], str] = {}
    try:
        # The slowest drills go first so they do not end up alone at the tail of the run.
        ordered = sorted(drills, key=lambda d: -d.weight)
        for cls in ordered:
            future = pool.submit(
                _run_one, cls, settings, root, cancel, progress, running=tracking.running
            )
            futures[future] = cls.name
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            for future in finished:
                done[futures[future]] = future.result()
    except BaseException:
        cancel.set()
        for future in futures:
            future.cancel()
        # Running drills see the flag at their next attempt or child process and clean up;
        # one still inside a long step is abandoned after the grace period.
        started = [f for f in futures if not f.cancelled()]
        _, stuck = wait(started, timeout=GRACE_S)
        for future in stuck:
            name = futures[future]
            context = tracking.running.get(name)
            if context is not None:
                context.kill_children()
            tracking.abandoned.append(name)
        pool.shutdown(wait=not stuck, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _run_one(
    cls: type[Drill],
    settings: DrillSettings,
    root: Path,
    cancel: threading.Event,
    progress: Progress | None,
    *,
    sweep: SweepInput | None = None,
    running: dict[str, DrillContext] | None = None,
) -> _Done:
    with contextlib.ExitStack() as held:
        for name in sorted(cls.exclusive):
            held.enter_context(_lock(name))
        return _run_locked(cls, settings, root, cancel, progress, sweep, running)


_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock(name: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(name, threading.Lock())


def _run_locked(
    cls: type[Drill],
    settings: DrillSettings,
    root: Path,
    cancel: threading.Event,
    progress: Progress | None,
    sweep: SweepInput | None,
    running: dict[str, DrillContext] | None,
) -> _Done:
    if progress is not None:
        progress("start", cls.name, None)
    started = time.perf_counter()
    drill = cls(settings)
    reason = drill.unavailable()
    if reason is not None or cancel.is_set():
        result = _result(cls, Status.SKIPPED, started, None, reason or "run interrupted")
        if progress is not None:
            progress("done", cls.name, result)
        return _Done(result, SweepResult(0, ()), ())
    workdir = root / cls.name
    workdir.mkdir(parents=True)
    ctx = DrillContext(cls.name, workdir, cancel=cancel)
    if running is not None:
        running[cls.name] = ctx
    status, message = Status.ERROR, ""
    evidence: tuple[str, ...] = ()
    block_ms: float | None = None
    swept = SweepResult(0, ())
    try:
        with ctx.resources:
            try:
                if sweep is not None:
                    drill.receive(sweep)
                drill.setup(ctx)
                _check(cancel)
                injected = time.perf_counter()
                drill.inject(ctx)
                _check(cancel)
                drill.verify(ctx)
                status = Status.BLOCKED
                block_ms = ctx.time_to_block_ms
                if block_ms is None:
                    block_ms = (time.perf_counter() - injected) * 1000
            except DrillFailed as exc:
                status, message, evidence = Status.FAILED, exc.message, exc.evidence
            except DrillSkipped as exc:
                status, message = Status.SKIPPED, str(exc)
            except DrillInfraError as exc:
                status, message = Status.ERROR, str(exc)
            except ClaudesecError as exc:
                status, message = Status.ERROR, exc.user_message()
                if exc.exit_code == ExitCode.FOUND:
                    status = Status.FAILED
            except Exception as exc:
                status, message = Status.ERROR, f"{type(exc).__name__}: {exc}"
            finally:
                try:
                    drill.cleanup(ctx)
                except Exception as exc:
                    if status is Status.BLOCKED:
                        status, message = Status.ERROR, f"cleanup failed: {exc}"
    finally:
        # After the resources are closed, so a store's last write is on disk when swept.
        with contextlib.suppress(Exception):
            swept = ctx.sweep()
        shutil.rmtree(workdir, ignore_errors=True)
        if running is not None:
            running.pop(cls.name, None)
    result = _result(
        cls,
        status,
        started,
        block_ms,
        message,
        tuple(ctx.evidence) + tuple(evidence),
    )
    if progress is not None:
        progress("done", cls.name, result)
    return _Done(result, swept, ctx.canaries)


def _check(cancel: threading.Event) -> None:
    if cancel.is_set():
        raise DrillSkipped("run interrupted")


def _result(
    cls: type[Drill],
    status: Status,
    started: float,
    block_ms: float | None,
    message: str,
    evidence: tuple[str, ...] = (),
) -> DrillResult:
    return DrillResult(
        name=cls.name,
        title=cls.title,
        tags=cls.tags,
        status=status,
        time_to_block_ms=block_ms if status is Status.BLOCKED else None,
        duration_ms=(time.perf_counter() - started) * 1000,
        message=message,
        evidence=evidence,
        fix=cls.fix,
    )


class _LogCapture(logging.Handler):
    """Keeps what claudesec logs during the run (drills provoke warnings on purpose, such as
    a refused audit write) off the terminal, and hands it to the canary sweep."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._logger = logging.getLogger("claudesec")
        self._propagate = True

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.lines.append(f"{record.name}: {record.getMessage()}")

    def __enter__(self) -> _LogCapture:
        self._propagate = self._logger.propagate
        self._logger.addHandler(self)
        self._logger.propagate = False
        return self

    def __exit__(self, *_exc: object) -> None:
        self._logger.removeHandler(self)
        self._logger.propagate = self._propagate


@contextlib.contextmanager
def _signals_raise(cancel: threading.Event) -> Iterator[None]:
    """Turn SIGINT/SIGTERM into DrillInterrupted in the main thread, for the run's length."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        cancel.set()
        raise DrillInterrupted(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


__all__ = ["DrillInterrupted", "Leak", "run_drills"]
