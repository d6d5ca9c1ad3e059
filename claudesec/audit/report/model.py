"""The report as data: sections of facts and figures, each figure with the command that
reproduces it.

The HTML page and the JSON twin are both renderings of one :class:`Report`, so they cannot
disagree on a number. Cells hold plain values (str, int, float); escaping is the renderer's
job, never the builder's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Cell = str | int | float
Chart = Literal["bar", "line", ""]


@dataclass(frozen=True, slots=True)
class Figure:
    """One table of numbers (optionally drawn as a chart) and how to reproduce it."""

    id: str
    title: str
    query: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    chart: Chart = ""
    chart_column: int = 1  # the column the chart draws, against column 0 as the label
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "query": self.query,
            "columns": list(self.columns),
            "rows": [dict(zip(self.columns, row, strict=True)) for row in self.rows],
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class Section:
    """A chapter of the report: headline facts, then figures."""

    id: str
    title: str
    facts: tuple[tuple[str, Cell], ...]
    figures: tuple[Figure, ...]
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "facts": dict(self.facts),
            "figures": [figure.to_dict() for figure in self.figures],
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class Report:
    """The whole report for one period of one store."""

    generated: str
    since: str
    until: str
    store: str
    integrity_ok: bool
    sections: tuple[Section, ...]

    @property
    def exit_code(self) -> int:
        """1 when the store failed verification (the report is still written), else 0."""
        return 0 if self.integrity_ok else 1

    def section(self, section_id: str) -> Section:
        return next(s for s in self.sections if s.id == section_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "report": "claudesec audit report",
            "generated": self.generated,
            "since": self.since,
            "until": self.until,
            "store": self.store,
            "integrity_ok": self.integrity_ok,
            "sections": [section.to_dict() for section in self.sections],
        }
