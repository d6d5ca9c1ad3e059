"""OCSF Compliance Finding events (class 2003), one JSON object per line.

The same OCSF version as the audit export (:data:`claudesec.audit.export.ocsf.OCSF_VERSION`),
so one pipeline takes both. Every check gives events: one per finding (compliance status
Fail; finding status Suppressed when suppressed or baselined), one Pass event for a passing
check and one Other ("Skipped") event with the reason for a skipped one, so the evidence
shows what was judged and what could not be. ``metadata.uid`` is stable per check and resource, so a
sink that deduplicates on it keeps one copy per run of the same state.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from claudesec import __version__
from claudesec.audit.export.interface import dumps
from claudesec.audit.export.ocsf import OCSF_VERSION
from claudesec.org.check import CheckRun, Finding, Outcome, fingerprint
from claudesec.org.rules import FRAMEWORK_NAMES, Check

CATEGORY_UID = 2  # Findings
CLASS_UID = 2003  # Compliance Finding
ACTIVITY_CREATE = 1
SEVERITY_ID = {"low": 2, "medium": 3, "high": 4, "critical": 5}
SEVERITY_NAME = {1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical"}
COMPLIANCE_STATUS = {"pass": (1, "Pass"), "fail": (3, "Fail"), "skip": (99, "Skipped")}
FINDING_NEW, FINDING_SUPPRESSED = 1, 3


@functools.cache
def _requirements(check: Check) -> tuple[str, ...]:
    # Cached per check: an organisation with tens of thousands of findings repeats them.
    return tuple(
        f"{FRAMEWORK_NAMES[fw]} {control}"
        for fw in ("soc2", "iso27001", "cis")
        for control in check.controls(fw)
    )


def _event(run: CheckRun, outcome: Outcome, finding: Finding | None) -> dict[str, Any]:
    check = outcome.check
    status = "fail" if finding is not None else outcome.status
    severity = SEVERITY_ID[check.severity.value] if finding is not None else 1
    resource = finding.resource if finding is not None else "organization"
    uid = finding.fingerprint if finding is not None else fingerprint(check.id, f"#{status}")
    compliance_id, compliance_name = COMPLIANCE_STATUS[status]
    compliance: dict[str, Any] = {
        "control": check.id,
        "standards": [FRAMEWORK_NAMES[fw] for fw in ("soc2", "iso27001", "cis")],
        "requirements": list(_requirements(check)),
        "status_id": compliance_id,
        "status": compliance_name,
    }
    if outcome.reason:
        compliance["status_detail"] = outcome.reason
    suppressed = finding is not None and bool(finding.suppressed)
    doc: dict[str, Any] = {
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "class_uid": CLASS_UID,
        "class_name": "Compliance Finding",
        "activity_id": ACTIVITY_CREATE,
        "activity_name": "Create",
        "type_uid": CLASS_UID * 100 + ACTIVITY_CREATE,
        "type_name": "Compliance Finding: Create",
        "severity_id": severity,
        "severity": SEVERITY_NAME[severity],
        "status_id": FINDING_SUPPRESSED if suppressed else FINDING_NEW,
        "status": "Suppressed" if suppressed else "New",
        "time": int(run.checked_at.timestamp() * 1000),
        "message": finding.message
        if finding is not None
        else f"{check.id} {status}: {check.title}",
        "metadata": {
            "version": OCSF_VERSION,
            "uid": uid,
            "log_name": "claudesec.org",
            "event_code": check.id,
            "product": {"name": "claudesec", "vendor_name": "claudesec", "version": __version__},
        },
        "finding_info": {
            "uid": uid,
            "title": check.title,
            "desc": check.rationale,
            "types": [check.area],
            "analytic": {"uid": check.id, "name": check.title, "type_id": 1, "type": "Rule"},
        },
        "compliance": compliance,
        "remediation": {"desc": check.remediation},
        "resources": [
            {
                "uid": resource,
                "name": resource,
                "type": "Anthropic Admin API resource",
                "owner": {"uid": run.organization_id},
            }
        ],
        "unmapped": {
            "claudesec": {
                "organization_id": run.organization_id,
                "suppressed": finding.suppressed if finding else "",
            }
        },
    }
    return doc


def events(run: CheckRun) -> Iterator[dict[str, Any]]:
    """Every event of the run, in catalogue order."""
    for outcome in run.outcomes:
        if outcome.findings:
            for finding in outcome.findings:
                yield _event(run, outcome, finding)
        else:
            yield _event(run, outcome, None)


def encoded(run: CheckRun) -> list[bytes]:
    """The events as the export sinks put them on the wire (compact UTF-8 JSON)."""
    return [dumps(event) for event in events(run)]


def render(run: CheckRun, framework: str | None = None) -> str:
    return "".join(line.decode("utf-8") + "\n" for line in encoded(run))
