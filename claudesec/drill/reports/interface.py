"""One interface for every drill report format: a run report in, text out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from claudesec.drill.model import RunReport


class DrillFormat(Protocol):
    name: str

    def render(self, report: RunReport) -> str: ...
