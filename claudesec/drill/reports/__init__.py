"""Drill report formats: text, JSON, JUnit XML. Adding one is one module and one line here."""

from __future__ import annotations

from claudesec.drill.reports.interface import DrillFormat
from claudesec.drill.reports.json import JsonFormat
from claudesec.drill.reports.junit import JunitFormat
from claudesec.drill.reports.text import TextFormat

FORMATS: dict[str, DrillFormat] = {f.name: f for f in (TextFormat(), JsonFormat(), JunitFormat())}


def get_format(name: str) -> DrillFormat:
    return FORMATS[name]


__all__ = ["FORMATS", "DrillFormat", "get_format"]
