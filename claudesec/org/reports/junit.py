"""JUnit XML: one ``testcase`` per check; a check with live findings is a ``failure`` listing
them and the fix, a skipped check is ``skipped`` with its reason (as the drill report does)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from claudesec.org.check import CheckRun

SUITE = "claudesec org check"


def render(run: CheckRun, framework: str | None = None) -> str:
    failures = sum(1 for o in run.outcomes if any(not f.suppressed for f in o.findings))
    counts = {
        "tests": str(len(run.outcomes)),
        "failures": str(failures),
        "errors": "0",
        "skipped": str(run.count("skip")),
        "time": "0",
    }
    root = ET.Element("testsuites", {"name": SUITE, **counts})
    suite = ET.SubElement(
        root,
        "testsuite",
        {"name": SUITE, "timestamp": run.checked_at.isoformat(timespec="seconds"), **counts},
    )
    for outcome in run.outcomes:
        check = outcome.check
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": f"claudesec.org.{check.area}",
                "name": f"{check.id} {check.title}",
                "time": "0",
            },
        )
        live = [f for f in outcome.findings if not f.suppressed]
        if live:
            failure = ET.SubElement(
                case,
                "failure",
                {
                    "message": f"{len(live)} finding(s) [{check.severity}]",
                    "type": check.severity.value,
                },
            )
            body = [f"{f.resource}: {f.message}" for f in live]
            body.append(f"fix: {check.remediation}")
            failure.text = "\n".join(body)
        elif outcome.status == "skip":
            ET.SubElement(case, "skipped", {"message": outcome.reason})
        suppressed = [f"{f.resource}: {f.suppressed}" for f in outcome.findings if f.suppressed]
        if suppressed:
            ET.SubElement(case, "system-out").text = "\n".join(suppressed)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
