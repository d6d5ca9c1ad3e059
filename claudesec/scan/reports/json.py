"""Machine-readable report: one JSON document (hints and fingerprints, never secrets)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from claudesec import __version__
from claudesec.scan.model import Finding, ScanResult
from claudesec.scan.reports.interface import ReportFormat

SCHEMA_VERSION = 1


def finding_dict(finding: Finding) -> dict[str, Any]:
    commit = finding.commit
    return {
        "rule_id": finding.rule_id,
        "kind": finding.kind,
        "severity": finding.severity,
        "path": finding.path,
        "line": finding.line,
        "column": finding.column,
        "hint": finding.hint,
        "fingerprint": finding.fingerprint,
        "fix": finding.fix,
        "commit": (
            None
            if commit is None
            else {
                "sha": commit.sha,
                "author": commit.author,
                "email": commit.email,
                "date": commit.date,
            }
        ),
        "verification": finding.verification,
        "also_at": list(finding.also_at),
        "response": (
            None
            if finding.response is None
            else {"action": finding.response, "detail": finding.response_detail}
        ),
        "history": (
            None
            if finding.history is None
            else {
                "first_commit": commit.sha if commit is not None else None,
                "last_commit": finding.history.last.sha,
                "last_date": finding.history.last.date,
                "in_tree": finding.history.in_tree,
                "commits": finding.history.commits,
                "paths": finding.history.paths,
            }
        ),
    }


def summary_dict(result: ScanResult) -> dict[str, Any]:
    """The run's counters, as the JSON and JSON Lines reports give them."""
    stats = result.stats
    return {
        "findings": len(result.findings),
        "failing": len(result.failing),
        "files": stats.files,
        "blobs": stats.blobs,
        "commits": stats.commits,
        "bytes": stats.bytes,
        "duration_s": round(result.duration_s, 4),
        "suppressed": {
            "inline": stats.suppressed_inline,
            "path": stats.suppressed_path,
            "baseline": stats.suppressed_baseline,
        },
        "held_examples": stats.held_examples,
        "duplicates": stats.duplicates,
        "not_scanned": dict(sorted(Counter(s.reason for s in stats.skipped).items())),
        "prefilter": result.backend,
    }


class JsonFormat(ReportFormat):
    name = "json"

    def render(self, result: ScanResult) -> str:
        stats = result.stats
        document = {
            "version": SCHEMA_VERSION,
            "tool": {"name": "claudesec", "version": __version__},
            "source": result.source,
            "root": result.root,
            "summary": summary_dict(result),
            "findings": [finding_dict(f) for f in result.findings],
            # In path order: processes that share a tree finish their parts in any order, and
            # two runs over the same tree should give the same report.
            "skipped": [
                {"path": s.path, "reason": s.reason}
                for s in sorted(stats.skipped, key=lambda s: (s.path, s.reason))
            ],
            "warnings": sorted(stats.warnings),
        }
        return json.dumps(document, indent=2) + "\n"
