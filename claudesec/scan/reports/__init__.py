"""Report formats for ``claudesec scan``: text, json, sarif."""

from __future__ import annotations

from claudesec.errors import UsageError
from claudesec.scan.reports.interface import ReportFormat

FORMATS = ("text", "json", "sarif", "jsonl")


def get_format(name: str) -> ReportFormat:
    """The report format called ``name``."""
    if name == "text":
        from claudesec.scan.reports.text import TextFormat

        return TextFormat()
    if name == "json":
        from claudesec.scan.reports.json import JsonFormat

        return JsonFormat()
    if name == "sarif":
        from claudesec.scan.reports.sarif import SarifFormat

        return SarifFormat()
    if name == "jsonl":
        from claudesec.scan.reports.jsonl import JsonLinesFormat

        return JsonLinesFormat()
    raise UsageError(f"unknown format {name!r}", hint=f"choose one of {', '.join(FORMATS)}")
