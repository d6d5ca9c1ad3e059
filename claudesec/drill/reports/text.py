"""The plain summary: one line per drill (name, result, time-to-block), then the totals.

Failures and errors add their message, evidence and fix hint on indented lines below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from claudesec.drill.model import Status

if TYPE_CHECKING:
    from claudesec.drill.model import DrillResult, RunReport


def result_line(result: DrillResult, width: int = 34) -> str:
    block = (
        f"{result.time_to_block_ms:9.1f} ms"
        if result.time_to_block_ms is not None
        else "        -   "
    )
    line = f"{result.name:<{width}} {result.status.value:<8} {block}"
    if result.status is Status.SKIPPED and result.message:
        line += f"  ({result.message})"
    return line


def detail_lines(result: DrillResult) -> list[str]:
    if result.status not in (Status.FAILED, Status.ERROR):
        return []
    lines = [f"    {result.message}"] if result.message else []
    lines.extend(f"    evidence: {e}" for e in result.evidence)
    if result.fix:
        lines.append(f"    fix: {result.fix}")
    return lines


def summary(report: RunReport) -> str:
    parts = [f"{report.count(s)} {s.value}" for s in Status if report.count(s)]
    text = f"{len(report.results)} drill(s): {', '.join(parts) or 'none'} in {report.wall_s:.1f} s"
    if report.interrupted:
        text += " (interrupted)"
    return text


class TextFormat:
    name = "text"

    def render(self, report: RunReport) -> str:
        width = max([len(r.name) for r in report.results] + [20])
        lines = [f"{'drill':<{width}} {'result':<8} time-to-block"]
        for result in report.results:
            lines.append(result_line(result, width))
            lines.extend(detail_lines(result))
        lines.append(summary(report))
        return "\n".join(lines) + "\n"
