"""Federation lint findings as JSON and as SARIF 2.1.0 (GitHub code scanning, other viewers).

Config findings point at the config file's line (a physical location); organisation findings
name the live object (a logical location: ``federation_rule/NAME``), since a Console-made rule
has no file. Each catalogue entry is a SARIF rule with its why and fix.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from claudesec import __version__
from claudesec.federation.lint import LintFinding
from claudesec.federation.lint_catalogue import CATALOGUE

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/claudesec/claudesec"
_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}
_SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}
_LOGICAL_KIND = {"rule": "federation_rule", "issuer": "federation_issuer"}


def findings_json(findings: Sequence[LintFinding]) -> str:
    document = {
        "findings": [
            {
                "rule_id": f.rule_id,
                "severity": f.severity,
                "title": f.title,
                "object": {"kind": f.object_kind, "name": f.object_name, "id": f.object_id},
                "message": f.message,
                "fix": f.fix,
                "source": f.source,
                "path": f.path,
                "line": f.line,
            }
            for f in findings
        ],
        "summary": {
            severity: sum(1 for f in findings if f.severity == severity)
            for severity in ("critical", "high", "medium", "low")
        },
    }
    return json.dumps(document, indent=2) + "\n"


def _location(finding: LintFinding, root: Path | None) -> dict[str, Any]:
    kind = _LOGICAL_KIND.get(finding.object_kind, finding.object_kind)
    logical = {
        "name": finding.object_name,
        "fullyQualifiedName": f"{kind}/{finding.object_name}",
        "kind": "resource",
    }
    if finding.path is None:
        return {"logicalLocations": [logical]}
    path = Path(finding.path)
    if root is not None:
        with contextlib.suppress(ValueError):
            path = path.resolve().relative_to(root.resolve())
    physical: dict[str, Any] = {
        "artifactLocation": {"uri": path.as_posix().lstrip("/"), "uriBaseId": "%SRCROOT%"}
    }
    if finding.line:
        physical["region"] = {"startLine": finding.line}
    return {"physicalLocation": physical, "logicalLocations": [logical]}


def findings_sarif(findings: Sequence[LintFinding], *, root: Path | None = None) -> str:
    rules = [
        {
            "id": entry.id,
            "name": "".join(w.capitalize() for w in entry.title.split()[:6] if w.isalnum()),
            "shortDescription": {"text": entry.title},
            "fullDescription": {"text": entry.why},
            "help": {"text": entry.fix, "markdown": entry.fix},
            "defaultConfiguration": {"level": _LEVEL[entry.severity]},
            "properties": {
                "tags": ["security", "workload-identity-federation"],
                "security-severity": _SECURITY_SEVERITY[entry.severity],
            },
        }
        for entry in CATALOGUE
    ]
    index = {entry.id: i for i, entry in enumerate(CATALOGUE)}
    results = [
        {
            "ruleId": f.rule_id,
            "ruleIndex": index[f.rule_id],
            "level": _LEVEL[f.severity],
            "message": {"text": f"{f.object_kind} {f.object_name}: {f.message}. {f.fix}"},
            "locations": [_location(f, root)],
            "partialFingerprints": {
                "claudesecFederation/v1": f"{f.rule_id}:{f.source}:{f.object_kind}:{f.object_name}"
            },
            "properties": {"source": f.source, "objectId": f.object_id},
        }
        for f in findings
    ]
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "claudesec federation lint",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }
    return json.dumps(document, indent=2) + "\n"
