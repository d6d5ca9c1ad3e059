"""Helpers for scan tests: a repo with planted keys, and JSON-report parsing."""

from __future__ import annotations

import json
from typing import Any

from tests.fixtures.cli import CliResult


def report(result: CliResult) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def rules(result: CliResult) -> list[str]:
    return [f["rule_id"] for f in report(result)["findings"]]
