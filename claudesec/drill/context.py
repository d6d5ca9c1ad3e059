"""What one drill works in: its own temp directory, its canaries, what it captured, its
servers, and the clock that measures time-to-block.

Everything a drill starts goes on :attr:`DrillContext.resources` (an ``ExitStack``), so the
runner's ``finally`` stops it whatever happened; the directory goes with the run's root.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from claudesec.drill.model import DrillInfraError, DrillSkipped

# Files bigger than this are not swept (none of ours comes close; a runaway file must not
# stall the run).
_SWEEP_MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Leak:
    """A canary found in clear where claudesec wrote something."""

    drill: str
    where: str


@dataclass(frozen=True)
class SweepResult:
    examined: int
    leaks: tuple[Leak, ...]


class DrillContext:
    """The per-drill sandbox. Not shared between drills; safe to use from the drill's thread."""

    def __init__(self, name: str, workdir: Path, *, cancel: threading.Event | None = None) -> None:
        self.name = name
        self.workdir = workdir
        self.resources = contextlib.ExitStack()
        self.cancel = cancel or threading.Event()
        self._canaries: list[str] = []
        self._captures: list[tuple[str, str]] = []
        self._injected: list[Path] = []
        self._attempts: list[float] = []
        self.evidence: list[str] = []
        # Children of :meth:`run` still running: an abandoned run kills them (see the runner).
        self.children: set[subprocess.Popen[str]] = set()
        self.home = workdir / "home"
        self.home.mkdir(parents=True, exist_ok=True)

    # ----------------------------------------------------------------- canaries

    def canary(self, value: str) -> str:
        """Register a freshly generated secret so the sweep looks for it everywhere."""
        self._canaries.append(value)
        return value

    @property
    def canaries(self) -> tuple[str, ...]:
        return tuple(self._canaries)

    def injected(self, path: Path) -> Path:
        """Mark a file or directory as the breach itself (it holds a canary on purpose)."""
        self._injected.append(path)
        return path

    def capture(self, label: str, text: str | bytes) -> None:
        """Keep something claudesec printed or returned, for the sweep."""
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        self._captures.append((label, text))

    def note(self, line: str) -> None:
        """A line of evidence for the report (never a secret: pass hints only)."""
        self.evidence.append(line)

    # ----------------------------------------------------------------- time-to-block

    @contextlib.contextmanager
    def attempt(self) -> Iterator[None]:
        """Time one breach attempt, from the first byte to the defence's answer.

        An interrupted run starts no new attempt: drills loop over attempts, so this is where
        Ctrl-C reaches a drill in the middle of its phase."""
        self.check_cancelled()
        started = time.perf_counter()
        try:
            yield
        finally:
            self._attempts.append((time.perf_counter() - started) * 1000)

    def check_cancelled(self) -> None:
        """Raise :class:`DrillSkipped` when the run has been interrupted (Ctrl-C, SIGTERM)."""
        if self.cancel.is_set():
            raise DrillSkipped("run interrupted")

    @property
    def time_to_block_ms(self) -> float | None:
        return max(self._attempts) if self._attempts else None

    # ----------------------------------------------------------------- processes

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """An environment for child processes that cannot touch the user's git config,
        home or claudesec files."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("GIT_", "CLAUDESEC_")) and k not in ("HOME",)
        }
        env.update(
            {
                "HOME": str(self.home),
                "CLAUDESEC_HOME": str(self.home / "claudesec"),
                "GIT_CONFIG_GLOBAL": os.devnull,
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_AUTHOR_NAME": "claudesec drill",
                "GIT_AUTHOR_EMAIL": "drill@claudesec.invalid",
                "GIT_COMMITTER_NAME": "claudesec drill",
                "GIT_COMMITTER_EMAIL": "drill@claudesec.invalid",
                "NO_COLOR": "1",
            }
        )
        env.update(extra or {})
        return env

    def run(
        self,
        args: Sequence[str],
        *,
        cwd: Path | None = None,
        check: bool = True,
        timeout: float = 60,
        label: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a child process in this sandbox and capture its output for the sweep."""
        self.check_cancelled()
        try:
            proc = self._run_cancellable(list(args), cwd or self.workdir, timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DrillInfraError(f"{args[0]} could not run: {exc}") from exc
        self.capture(f"{label or args[0]} stdout", proc.stdout)
        self.capture(f"{label or args[0]} stderr", proc.stderr)
        if check and proc.returncode != 0:
            raise DrillInfraError(
                f"{' '.join(args[:3])} exited {proc.returncode}: {proc.stderr.strip()[-300:]}"
            )
        return proc

    def _run_cancellable(
        self, args: list[str], cwd: Path, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        """``subprocess.run`` that kills the child when the run is interrupted."""
        deadline = time.monotonic() + timeout
        with subprocess.Popen(
            args,
            cwd=cwd,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as proc:
            self.children.add(proc)
            try:
                return self._wait(proc, args, deadline, timeout)
            finally:
                self.children.discard(proc)

    def _wait(
        self, proc: subprocess.Popen[str], args: list[str], deadline: float, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        while True:
            try:
                # Wakes every 100 ms to look at the cancel flag; the child's exit ends it.
                out, err = proc.communicate(timeout=0.1)
                return subprocess.CompletedProcess(args, proc.returncode, out, err)
            except subprocess.TimeoutExpired:
                if self.cancel.is_set() or time.monotonic() > deadline:
                    proc.kill()
                    proc.communicate()
                    self.check_cancelled()
                    raise subprocess.TimeoutExpired(args, timeout) from None

    def kill_children(self) -> None:
        """Kill every child of :meth:`run` still running (an abandoned drill's)."""
        for proc in list(self.children):
            with contextlib.suppress(OSError):
                proc.kill()

    def git(self, repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(["git", *args], cwd=repo, check=check, label=f"git {args[0]}")

    def init_repo(self, name: str = "repo") -> Path:
        repo = self.workdir / name
        repo.mkdir(parents=True, exist_ok=True)
        self.git(repo, "init", "-q", "-b", "main")
        return repo

    # ----------------------------------------------------------------- the sweep

    def sweep(self) -> SweepResult:
        """Look for every canary in clear in what was captured and in every file this drill's
        directory holds, except the files that are the breach itself."""
        needles = [c.encode() for c in self._canaries if c]
        leaks: list[Leak] = []
        examined = 0
        for label, text in self._captures:
            examined += 1
            data = text.encode("utf-8", "replace")
            if any(n in data for n in needles):
                leaks.append(Leak(self.name, f"captured {label}"))
        skip = [p.resolve() for p in self._injected]
        for path in sorted(self.workdir.rglob("*")):
            resolved = path.resolve()
            if any(resolved == s or s in resolved.parents for s in skip):
                continue
            if not path.is_file() or path.is_symlink():
                continue
            try:
                if path.stat().st_size > _SWEEP_MAX_BYTES:
                    continue
                data = path.read_bytes()
            except OSError:
                continue
            examined += 1
            if any(n in data for n in needles):
                leaks.append(Leak(self.name, f"file {path.relative_to(self.workdir)}"))
        return SweepResult(examined, tuple(leaks))
