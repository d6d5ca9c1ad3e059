"""SARIF 2.1.0: every check a rule (with its controls as tags), every finding a result.

The organisation has no source file, so a result's location is logical: the Admin resource
(``fullyQualifiedName`` = ``organization/resource``). Suppressed and baselined findings are
kept with a SARIF ``suppressions`` entry, as code scanning expects, so their history stays.
Levels and ``security-severity`` are the scan report's (:mod:`claudesec.scan.reports.sarif`).
"""

from __future__ import annotations

import json
from typing import Any

from claudesec import __version__
from claudesec.org.catalogue import CHECKS
from claudesec.org.check import CheckRun, Finding
from claudesec.org.rules import Check
from claudesec.scan.reports.sarif import _LEVEL, _SECURITY_SEVERITY, INFORMATION_URI, SARIF_SCHEMA

LARGE = 2000  # findings above which the document is written compact


def _rule(check: Check) -> dict[str, Any]:
    severity = check.severity.value
    tags = ["security", "claude-organization", check.area]
    tags += [f"soc2/{c}" for c in check.soc2] + [f"iso27001/{c}" for c in check.iso27001]
    tags += [f"cis-v8/{c}" for c in check.cis]
    return {
        "id": check.id,
        "name": "".join(
            w.capitalize() for w in check.title.replace("-", " ").split() if w.isalnum()
        ),
        "shortDescription": {"text": check.title},
        "fullDescription": {"text": check.rationale},
        "help": {
            "text": check.remediation,
            "markdown": f"**Console:** {check.console}\n\n**API:** `{check.api}`",
        },
        "defaultConfiguration": {"level": _LEVEL[severity]},
        "properties": {
            "tags": tags,
            "security-severity": _SECURITY_SEVERITY[severity],
            "precision": "high",
        },
    }


def _result(finding: Finding, index: int, organization: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "ruleId": finding.check_id,
        "ruleIndex": index,
        "level": _LEVEL[finding.severity.value],
        "message": {"text": finding.message},
        "locations": [
            {
                "logicalLocations": [
                    {
                        "name": finding.resource,
                        "kind": "resource",
                        "fullyQualifiedName": f"{organization}/{finding.resource}",
                    }
                ]
            }
        ],
        "partialFingerprints": {"claudesecOrgFingerprint/v1": finding.fingerprint},
    }
    if finding.suppressed:
        kind = "external"
        entry["suppressions"] = [{"kind": kind, "justification": finding.suppressed}]
    return entry


def render(run: CheckRun, framework: str | None = None) -> str:
    index = {check.id: i for i, check in enumerate(CHECKS)}
    results = [
        _result(f, index[f.check_id], run.organization_id)
        for outcome in run.outcomes
        for f in outcome.findings
    ]
    skipped = [
        {
            "descriptor": {"id": o.check.id, "index": index[o.check.id]},
            "level": "note",
            "message": {"text": f"{o.check.id} skipped: {o.reason}"},
        }
        for o in run.outcomes
        if o.status == "skip"
    ]
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "claudesec-org",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": [_rule(c) for c in CHECKS],
                    }
                },
                "automationDetails": {"id": f"claudesec-org/{run.organization_id}/"},
                "invocations": [
                    {"executionSuccessful": True, "toolExecutionNotifications": skipped}
                ],
                "results": results,
            }
        ],
    }
    # Indented output runs json's pure-Python encoder: ~10x slower, minutes on an
    # organisation with tens of thousands of findings. Past a size nobody reads by eye, compact.
    indent = 2 if len(results) <= LARGE else None
    return json.dumps(document, indent=indent) + "\n"
