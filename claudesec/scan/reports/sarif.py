"""SARIF 2.1.0 for GitHub code scanning: rule metadata, locations, partialFingerprints."""

from __future__ import annotations

import json
from typing import Any

from claudesec import __version__
from claudesec.detect.catalogue import DETECTORS
from claudesec.detect.rules import Detector
from claudesec.scan.model import Finding, ScanResult
from claudesec.scan.reports.interface import ReportFormat

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/claudesec/claudesec"
_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}
# GitHub ranks alerts by this property (0-10): critical >= 9, high >= 7, medium >= 4.
_SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}


def _rule(detector: Detector) -> dict[str, Any]:
    severity = detector.severity.value
    return {
        "id": detector.id,
        "name": "".join(part.capitalize() for part in detector.id.split("-")),
        "shortDescription": {"text": f"Leaked {detector.kind.format(kind='').replace('  ', ' ')}"},
        "fullDescription": {
            "text": f"A {detector.kind.format(kind='').replace('  ', ' ')} was found in the "
            "source. Anyone who can read it can use it."
        },
        "help": {"text": detector.fix, "markdown": detector.fix},
        "defaultConfiguration": {"level": _LEVEL[severity]},
        "properties": {
            "tags": ["security", "secret", "external/cwe/cwe-798"],
            "precision": "high" if detector.validate is not None else "medium",
            "security-severity": _SECURITY_SEVERITY[severity],
        },
    }


def _custom_rule(finding: Finding) -> dict[str, Any]:
    severity = finding.severity
    return {
        "id": finding.rule_id,
        "shortDescription": {"text": f"Leaked {finding.kind}"},
        "help": {"text": finding.fix, "markdown": finding.fix},
        "defaultConfiguration": {"level": _LEVEL.get(severity, "warning")},
        "properties": {
            "tags": ["security", "secret", "custom", "external/cwe/cwe-798"],
            "security-severity": _SECURITY_SEVERITY.get(severity, "5.5"),
        },
    }


def _related(index: int, place: str) -> dict[str, Any]:
    path, _, line = place.rpartition(":")
    return {
        "id": index,
        "physicalLocation": {
            "artifactLocation": {"uri": path.lstrip("/"), "uriBaseId": "%SRCROOT%"},
            "region": {"startLine": int(line)},
        },
        "message": {"text": "the same secret"},
    }


class SarifFormat(ReportFormat):
    name = "sarif"

    def render(self, result: ScanResult) -> str:
        rules = [_rule(d) for d in DETECTORS]
        index = {d.id: i for i, d in enumerate(DETECTORS)}
        for finding in result.findings:
            if finding.rule_id not in index:  # a custom rule: described by its finding
                index[finding.rule_id] = len(rules)
                rules.append(_custom_rule(finding))
        results: list[dict[str, Any]] = []
        for finding in result.findings:
            entry: dict[str, Any] = {
                "ruleId": finding.rule_id,
                "ruleIndex": index.get(finding.rule_id, 0),
                "level": _LEVEL.get(finding.severity, "warning"),
                "message": {"text": f"{finding.kind} {finding.hint}. {finding.fix}"},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": {
                                "uri": finding.path.lstrip("/"),
                                "uriBaseId": "%SRCROOT%",
                            },
                            "region": {
                                "startLine": finding.line,
                                "startColumn": finding.column,
                            },
                        }
                    }
                ],
                "partialFingerprints": {"claudesecFingerprint/v1": finding.fingerprint},
            }
            if finding.also_at:  # --dedup: the other places holding the same secret
                entry["relatedLocations"] = [
                    _related(i, place) for i, place in enumerate(finding.also_at, 1)
                ]
            properties: dict[str, Any] = {}
            if finding.commit is not None:
                properties["commit"] = finding.commit.sha
                properties["author"] = finding.commit.author
                properties["date"] = finding.commit.date
            if finding.verification is not None:
                properties["verification"] = finding.verification
            if properties:
                entry["properties"] = properties
            results.append(entry)
        document = {
            "$schema": SARIF_SCHEMA,
            "version": "2.1.0",
            "runs": [
                {
                    "tool": {
                        "driver": {
                            "name": "claudesec",
                            "version": __version__,
                            "semanticVersion": __version__,
                            "informationUri": INFORMATION_URI,
                            "rules": rules,
                        }
                    },
                    "columnKind": "unicodeCodePoints",
                    "results": results,
                }
            ],
        }
        return json.dumps(document, indent=2) + "\n"
