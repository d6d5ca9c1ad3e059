"""JUnit XML as CI systems read it (GitHub Actions test reporters, GitLab ``artifacts:reports:
junit``, Jenkins): one ``testcase`` per drill; a failed defence is a ``failure`` carrying the
evidence and the fix hint, a drill that could not run its breach an ``error``, a drill that
cannot run here ``skipped`` with the reason. Counts and times sit on both ``testsuites`` and
``testsuite`` because readers differ on which one they use.
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from claudesec.drill.model import Status

if TYPE_CHECKING:
    from claudesec.drill.model import DrillResult, RunReport

SUITE = "claudesec drills"


def _seconds(ms: float) -> str:
    return f"{ms / 1000:.3f}"


def _body(result: DrillResult) -> str:
    lines = [result.message] if result.message else []
    lines.extend(f"evidence: {e}" for e in result.evidence)
    if result.fix:
        lines.append(f"fix: {result.fix}")
    return "\n".join(lines)


def _case(parent: ET.Element, result: DrillResult) -> None:
    kind = "live" if "live" in result.tags else "offline"
    case = ET.SubElement(
        parent,
        "testcase",
        {
            "classname": f"claudesec.drill.{kind}",
            "name": result.name,
            "time": _seconds(result.duration_ms),
        },
    )
    if result.status is Status.FAILED:
        failure = ET.SubElement(
            case,
            "failure",
            {"message": result.message or "defence failed", "type": "DefenceFailed"},
        )
        failure.text = _body(result)
    elif result.status is Status.ERROR:
        error = ET.SubElement(
            case, "error", {"message": result.message or "drill error", "type": "DrillError"}
        )
        error.text = _body(result)
    elif result.status is Status.SKIPPED:
        ET.SubElement(case, "skipped", {"message": result.message or "skipped"})
    out = [result.title]
    if result.time_to_block_ms is not None:
        out.append(f"time-to-block: {result.time_to_block_ms:.1f} ms")
    out.extend(f"evidence: {e}" for e in result.evidence if result.status is Status.BLOCKED)
    ET.SubElement(case, "system-out").text = "\n".join(out)


class JunitFormat:
    name = "junit"

    def render(self, report: RunReport) -> str:
        counts = {
            "tests": str(len(report.results)),
            "failures": str(report.count(Status.FAILED)),
            "errors": str(report.count(Status.ERROR)),
            "skipped": str(report.count(Status.SKIPPED)),
            "time": f"{report.wall_s:.3f}",
        }
        root = ET.Element("testsuites", {"name": SUITE, **counts})
        suite = ET.SubElement(
            root,
            "testsuite",
            {
                "name": SUITE,
                **counts,
                "timestamp": datetime.now(UTC).replace(microsecond=0).isoformat(),
                "hostname": socket.gethostname(),
            },
        )
        for result in report.results:
            _case(suite, result)
        ET.indent(root)
        return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
