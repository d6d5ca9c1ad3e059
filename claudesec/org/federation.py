"""The one adapter point between ``org check`` and the federation linter.

``claudesec.federation.lint.lint_rules(issuers, rules, service_accounts)`` judges federation
rules for over-broad matches; ``org check`` reuses it rather than keeping a second set of
rules. Until that module is on this branch (it is built beside this one), :func:`lint` returns
``None`` and the check that depends on it (``ORG-FED-001``) is *skipped* with
"federation lint not available", never passed.

WIRING (for the lead, after merging wip-fed-code): adjust :func:`_to_hits` to the real
``LintFinding`` fields and, if ``lint_rules`` wants its own model objects rather than the
Admin API's JSON, convert the inventory items here. Nothing else changes.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

from claudesec.org.model import OrgInventory
from claudesec.org.rules import Hit

UNAVAILABLE = "federation lint not available (claudesec.federation.lint is not installed)"


def lint(inventory: OrgInventory) -> tuple[Hit, ...] | None:
    """The linter's findings on the organisation's rules, or None when there is no linter."""
    try:
        module = importlib.import_module("claudesec.federation.lint")
    except ImportError:
        return None
    lint_rules = getattr(module, "lint_rules", None)
    if lint_rules is None:
        return None
    findings = lint_rules(
        list(inventory.items("federation_issuers")),
        list(inventory.items("federation_rules")),
        list(inventory.items("service_accounts")),
    )
    return tuple(_to_hits(findings))


def _to_hits(findings: Iterable[Any]) -> Iterable[Hit]:
    for finding in findings:
        resource = getattr(finding, "rule", None) or getattr(finding, "resource", "") or "?"
        message = getattr(finding, "message", None) or str(finding)
        yield Hit(str(resource), str(message))
