"""Machine-readable report: one JSON document with every check's outcome and its findings."""

from __future__ import annotations

import json
from typing import Any

from claudesec import __version__
from claudesec.org.check import CheckRun, Finding, Outcome
from claudesec.org.reports.grouping import by_control
from claudesec.org.reports.sarif import LARGE

SCHEMA_VERSION = 1


def finding_dict(finding: Finding) -> dict[str, Any]:
    return {
        "check": finding.check_id,
        "severity": finding.severity.value,
        "resource": finding.resource,
        "message": finding.message,
        "fingerprint": finding.fingerprint,
        "suppressed": finding.suppressed or None,
    }


def outcome_dict(outcome: Outcome) -> dict[str, Any]:
    check = outcome.check
    return {
        "id": check.id,
        "title": check.title,
        "severity": check.severity.value,
        "area": check.area,
        "status": outcome.status,
        "reason": outcome.reason or None,
        "controls": {
            "soc2": list(check.soc2),
            "iso27001": list(check.iso27001),
            "cis": list(check.cis),
        },
        "remediation": {"console": check.console, "api": check.api},
        "findings": [finding_dict(f) for f in outcome.findings],
    }


def document(run: CheckRun, framework: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "version": SCHEMA_VERSION,
        "tool": {"name": "claudesec", "version": __version__},
        "organization_id": run.organization_id,
        "checked_at": run.checked_at.isoformat(),
        "threshold": run.threshold.value,
        "summary": {
            "checks": len(run.outcomes),
            "failed": run.count("fail"),
            "passed": run.count("pass"),
            "skipped": run.count("skip"),
            "findings": len(run.findings),
            "failing": len(run.failing),
            "suppressed": len(run.suppressed),
        },
        "checks": [outcome_dict(o) for o in run.outcomes],
        "warnings": list(run.warnings),
    }
    if framework:
        doc["framework"] = {
            "name": framework,
            "controls": [
                {"id": c.id, "status": c.status, "checks": [o.check.id for o in c.outcomes]}
                for c in by_control(run, framework)
            ],
        }
    return doc


def render(run: CheckRun, framework: str | None = None) -> str:
    # Compact past LARGE findings: indenting runs json's pure-Python encoder (~10x slower).
    indent = 2 if len(run.findings) + len(run.suppressed) <= LARGE else None
    return json.dumps(document(run, framework), indent=indent) + "\n"
