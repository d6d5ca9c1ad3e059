"""JSON Lines: one finding per line, then one summary line, for streaming into other tools.

Each finding line is the object the JSON report holds in ``findings`` plus ``"type":
"finding"``; the last line is ``{"type": "summary", ...}`` with the JSON report's summary, so
``jq -c 'select(.type == "finding")'`` or a log shipper can take the findings line by line.
"""

from __future__ import annotations

import json

from claudesec import __version__
from claudesec.scan.model import ScanResult
from claudesec.scan.reports.interface import ReportFormat
from claudesec.scan.reports.json import SCHEMA_VERSION, finding_dict, summary_dict


class JsonLinesFormat(ReportFormat):
    name = "jsonl"

    def render(self, result: ScanResult) -> str:
        lines = [
            json.dumps({"type": "finding", **finding_dict(f)}, separators=(",", ":"))
            for f in result.findings
        ]
        summary = {
            "type": "summary",
            "version": SCHEMA_VERSION,
            "tool": {"name": "claudesec", "version": __version__},
            "source": result.source,
            "root": result.root,
            **summary_dict(result),
        }
        lines.append(json.dumps(summary, separators=(",", ":")))
        return "\n".join(lines) + "\n"
