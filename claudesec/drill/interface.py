"""The shape of a drill: setup, inject, verify, cleanup.

A drill attacks one defence on purpose with a canary generated for this run, then checks that
the defence stopped it. ``verify`` raises :class:`~claudesec.drill.model.DrillFailed` with
the evidence when the breach got through. ``cleanup`` always runs (the runner calls it in a
``finally``, also after SIGINT/SIGTERM); anything registered on ``ctx.resources`` is stopped
after it.

Drills are classes: the runner makes a fresh instance per run, so state passed from one
phase to the next lives on ``self``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from claudesec.drill.context import DrillContext, Leak
    from claudesec.drill.model import DrillResult
    from claudesec.drill.settings import DrillSettings


@dataclass(frozen=True)
class SweepInput:
    """What the runner hands the final drill: every other drill's result, every canary of
    the run, and what the per-drill sweeps examined and found."""

    results: tuple[DrillResult, ...]
    canaries: tuple[str, ...]
    examined: int
    leaks: tuple[Leak, ...]
    logs: tuple[str, ...] = ()


class Drill:
    """Base class of every drill; subclasses set the class attributes and the phases."""

    name: ClassVar[str]
    # What is proven, as one sentence: "a key committed ... is stopped by the pre-commit hook".
    title: ClassVar[str]
    # What to do when the drill fails: shown in reports beside the evidence.
    fix: ClassVar[str]
    tags: ClassVar[tuple[str, ...]] = ("offline",)
    # A final drill runs alone after all the others and receives their sweep (see receive).
    final: ClassVar[bool] = False
    # Rough cost, so the runner starts the slow drills first (1 = about a second or less).
    weight: ClassVar[int] = 1
    # Process-wide things this drill must not share with a drill running at the same time.
    # "scan-engine": the compiled detector engine, which scan and DLP share per process and
    # whose hyperscan database holds one scratch space (concurrent scans fail).
    exclusive: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: DrillSettings) -> None:
        self.settings = settings

    def receive(self, sweep: SweepInput) -> None:
        """Called on a final drill before its setup, with the rest of the run."""

    def unavailable(self) -> str | None:
        """Why this drill cannot run here (it is then skipped with that reason), or None."""
        return None

    def setup(self, ctx: DrillContext) -> None:
        """Build the sandbox: repositories, servers, stores. No canary yet."""

    def inject(self, ctx: DrillContext) -> None:
        """Stage the breach with fresh canaries; time each attempt with ``ctx.attempt()``."""

    def verify(self, ctx: DrillContext) -> None:
        """Raise DrillFailed unless the defence blocked every attempt."""

    def cleanup(self, ctx: DrillContext) -> None:
        """Undo what setup did beyond ``ctx.resources`` (which the runner closes anyway)."""
