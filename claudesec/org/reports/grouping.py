"""Outcomes grouped by a framework's controls (``--framework soc2|iso27001|cis``)."""

from __future__ import annotations

from dataclasses import dataclass

from claudesec.errors import UsageError
from claudesec.org.check import CheckRun, Outcome
from claudesec.org.rules import FRAMEWORK_NAMES


@dataclass(frozen=True)
class Control:
    """One control and the checks mapped to it; it fails if any of them has a live finding."""

    id: str
    outcomes: tuple[Outcome, ...]

    @property
    def status(self) -> str:
        if any(not f.suppressed for o in self.outcomes for f in o.findings):
            return "fail"
        if all(o.status == "skip" for o in self.outcomes):
            return "skip"
        return "pass"


def by_control(run: CheckRun, framework: str) -> tuple[Control, ...]:
    if framework not in FRAMEWORK_NAMES:
        raise UsageError(
            f"unknown framework {framework!r}", hint=f"choose {', '.join(FRAMEWORK_NAMES)}"
        )
    groups: dict[str, list[Outcome]] = {}
    for outcome in run.outcomes:
        for control in outcome.check.controls(framework):
            groups.setdefault(control, []).append(outcome)
    return tuple(Control(cid, tuple(groups[cid])) for cid in sorted(groups, key=_natural))


def _natural(control: str) -> tuple[object, ...]:
    import re

    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", control))
