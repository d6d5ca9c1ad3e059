"""What a drill run produces: one frozen result per drill and the report of the whole run.

A drill *passes* when the defence it attacks blocked the breach; it *fails* when the breach
got through (exit 1), *errors* when the drill could not even stage the breach (a port, git, a
dependency: exit 3), and is *skipped* with a reason when it cannot run here (live drills
without credentials, the proxy drill without aiohttp).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from claudesec.errors import ExitCode


class Status(StrEnum):
    BLOCKED = "blocked"  # the defence held
    FAILED = "failed"  # the breach got through: the defence is broken
    ERROR = "error"  # the drill could not stage the breach (infrastructure)
    SKIPPED = "skipped"  # cannot run here; the reason says why


@dataclass(frozen=True)
class DrillResult:
    """The outcome of one drill."""

    name: str
    title: str
    tags: tuple[str, ...]
    status: Status
    # From the first byte of the breach to the moment the defence stopped it (the slowest
    # attempt when a drill stages several); None when nothing was blocked.
    time_to_block_ms: float | None
    duration_ms: float
    message: str = ""
    evidence: tuple[str, ...] = ()
    fix: str = ""

    @property
    def ok(self) -> bool:
        return self.status in (Status.BLOCKED, Status.SKIPPED)

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "title": self.title,
            "tags": list(self.tags),
            "status": str(self.status),
            "time_to_block_ms": None
            if self.time_to_block_ms is None
            else round(self.time_to_block_ms, 2),
            "duration_ms": round(self.duration_ms, 2),
            "message": self.message,
            "evidence": list(self.evidence),
            "fix": self.fix if self.status in (Status.FAILED, Status.ERROR) else "",
        }


@dataclass(frozen=True)
class RunReport:
    """Every drill's result, in catalogue order, and the run's wall time."""

    results: tuple[DrillResult, ...]
    wall_s: float
    interrupted: bool = False
    # Drills still inside a step when an interrupted run stopped waiting for them (their
    # children killed, their directory removed): the process must exit without joining them.
    abandoned: tuple[str, ...] = ()
    # The run's directory, removed again by a caller exiting past abandoned drills (they may
    # have written into it after the run removed it).
    run_dir: str = ""

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status is status)

    @property
    def exit_code(self) -> ExitCode:
        """1 when any defence failed (the finding matters most), else 130 when the run was
        interrupted, else 3 when any drill could not run its breach, else 0."""
        if self.count(Status.FAILED):
            return ExitCode.FOUND
        if self.interrupted:
            return ExitCode.INTERRUPTED
        if self.count(Status.ERROR):
            return ExitCode.EXTERNAL
        return ExitCode.OK

    def to_json(self) -> dict[str, object]:
        return {
            "exit_code": int(self.exit_code),
            "wall_s": round(self.wall_s, 3),
            "interrupted": self.interrupted,
            "abandoned": list(self.abandoned),
            "summary": {str(s): self.count(s) for s in Status},
            "drills": [r.to_json() for r in self.results],
        }


class DrillFailed(Exception):
    """Raised by a drill's ``verify``: the breach got through. ``evidence`` says what was seen."""

    def __init__(self, message: str, *evidence: str) -> None:
        super().__init__(message)
        self.message = message
        self.evidence = tuple(evidence)


class DrillSkipped(Exception):
    """Raised by a drill that cannot run here; the message is the reason shown to the user."""


class DrillInfraError(Exception):
    """The drill could not stage its breach (a server would not start, git is missing)."""
