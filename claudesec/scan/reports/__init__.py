"""Report formats for ``claudesec scan``: one module per format beside :mod:`.interface`."""

from __future__ import annotations

from claudesec.registry import Registry
from claudesec.scan.reports.interface import ReportFormat

REGISTRY: Registry[type[ReportFormat]] = Registry(
    "format",
    {
        "text": "claudesec.scan.reports.text:TextFormat",
        "json": "claudesec.scan.reports.json:JsonFormat",
        "sarif": "claudesec.scan.reports.sarif:SarifFormat",
        "jsonl": "claudesec.scan.reports.jsonl:JsonLinesFormat",
    },
)
FORMATS = REGISTRY.names


def get_format(name: str) -> ReportFormat:
    """The report format called ``name``."""
    return REGISTRY.load(name)()
