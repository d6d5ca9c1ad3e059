"""Drill report formats: text, JSON, JUnit XML, one module each beside :mod:`.interface`."""

from __future__ import annotations

from claudesec.drill.reports.interface import DrillFormat
from claudesec.registry import Registry

REGISTRY: Registry[type[DrillFormat]] = Registry(
    "drill report format",
    {
        "text": "claudesec.drill.reports.text:TextFormat",
        "json": "claudesec.drill.reports.json:JsonFormat",
        "junit": "claudesec.drill.reports.junit:JunitFormat",
    },
)
FORMATS = REGISTRY.names


def get_format(name: str) -> DrillFormat:
    """The drill report format called ``name``."""
    return REGISTRY.load(name)()


__all__ = ["FORMATS", "REGISTRY", "DrillFormat", "get_format"]
