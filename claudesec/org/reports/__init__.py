"""Report formats for ``claudesec org check``: one module per format, each a ``render(run,
framework=None) -> str`` function (the text format also gives styled lines for a terminal)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from claudesec.errors import UsageError

FORMATS = ("text", "json", "sarif", "junit", "ocsf")

Render = Callable[..., str]


def get_format(name: str) -> Render:
    if name not in FORMATS:
        raise UsageError(f"unknown format {name!r}", hint=f"choose {', '.join(FORMATS)}")
    module: Any = importlib.import_module(f"claudesec.org.reports.{name}")
    render: Render = module.render
    return render
