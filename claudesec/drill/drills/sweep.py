"""The final drill: no canary of the run appears in clear anywhere claudesec wrote.

Every other drill's captured output (its command output, the scan reports in every format,
denials, replies) and every file left in its sandbox (audit stores with their WAL, token
files, keys) were swept as that drill ended; this drill adds claudesec's own reports of the
run in every format, and scan reports of a key read from stdin.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from claudesec.drill import canary
from claudesec.drill.interface import Drill, SweepInput
from claudesec.drill.model import DrillFailed, RunReport

if TYPE_CHECKING:
    from claudesec.drill.context import DrillContext


class NoCanaryInClear(Drill):
    exclusive = ("scan-engine",)
    name = "no-canary-in-clear"
    title = "no canary of the run appears in clear in any output, file or audit store"
    fix = (
        "Something printed or stored a secret unredacted: every display must go through "
        "claudesec.redact.redact; the evidence names the drill and the output."
    )
    final = True

    def receive(self, sweep: SweepInput) -> None:
        self.sweep = sweep

    def setup(self, ctx: DrillContext) -> None:
        if not hasattr(self, "sweep"):
            self.sweep = SweepInput(results=(), canaries=(), examined=0, leaks=())

    def inject(self, ctx: DrillContext) -> None:
        from claudesec.console import Console, Environment
        from claudesec.drill.reports import FORMATS as DRILL_FORMATS
        from claudesec.drill.reports import get_format as get_drill_format
        from claudesec.scan.command import ScanOptions, execute
        from claudesec.scan.reports import FORMATS

        key = ctx.canary(canary.anthropic_key("api"))
        for name in FORMATS:
            out, err = io.StringIO(), io.StringIO()
            console = Console(Environment(stdout=out, stderr=err))
            stdin = io.BytesIO(f"ANTHROPIC_API_KEY={key}\n".encode())
            execute(ScanOptions(targets=("-",), format=name), None, console, stdin=stdin)
            ctx.capture(f"scan stdin ({name}) stdout", out.getvalue())
            ctx.capture(f"scan stdin ({name}) stderr", err.getvalue())
        report = RunReport(results=self.sweep.results, wall_s=0.0)
        self.rendered = {name: get_drill_format(name).render(report) for name in DRILL_FORMATS}

    def verify(self, ctx: DrillContext) -> None:
        leaks = [f"{leak.drill}: {leak.where}" for leak in self.sweep.leaks]
        needles = [*self.sweep.canaries, *ctx.canaries]
        if any(n in line for line in self.sweep.logs for n in needles):
            leaks.append("claudesec log messages")
        for name, text in self.rendered.items():
            if any(n in text for n in needles):
                leaks.append(f"drill report ({name})")
        own = ctx.sweep()
        leaks.extend(f"{self.name}: {leak.where}" for leak in own.leaks)
        if leaks:
            raise DrillFailed(f"{len(leaks)} place(s) hold a canary in clear", *leaks[:20])
        examined = self.sweep.examined + own.examined + len(self.rendered)
        ctx.note(
            f"{len(needles)} canaries looked for in {examined} outputs and files "
            f"of {len(self.sweep.results) + 1} drills"
        )
