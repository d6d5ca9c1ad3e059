"""The audit-ready report: integrity proof, access, cost, keys and defences for one period.

:func:`build_report` turns a store (plus optional drill and scan results) into a
:class:`Report` of facts and figures; :func:`render_html` writes it as one offline HTML page
with inline SVG charts, and ``Report.to_dict()`` is its JSON twin with the same numbers.
No typer, no rich: ``claudesec report`` (``claudesec/cli/report.py``) only parses and writes.
"""

from __future__ import annotations

from claudesec.audit.report.build import ReportInputs, build_report, load_drills, load_sarif
from claudesec.audit.report.html import CSP, render_html
from claudesec.audit.report.model import Figure, Report, Section

__all__ = [
    "CSP",
    "Figure",
    "Report",
    "ReportInputs",
    "Section",
    "build_report",
    "load_drills",
    "load_sarif",
    "render_html",
]
