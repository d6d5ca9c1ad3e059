"""The machine-readable report: the whole run as one JSON document."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from claudesec.drill.model import RunReport


class JsonFormat:
    name = "json"

    def render(self, report: RunReport) -> str:
        return json.dumps(report.to_json(), indent=2) + "\n"
