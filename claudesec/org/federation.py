"""The one adapter point between ``org check`` and the federation linter.

``claudesec.federation.lint.lint_rules(issuers, rules, service_accounts)`` judges federation
rules for over-broad matches (FED001-FED015, docs/federation.md); ``org check`` reuses it
rather than keeping a second set of rules, and reports each of its findings under
``ORG-FED-001``. Both read the Admin API's JSON as the inventory keeps it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from claudesec.org.model import OrgInventory
from claudesec.org.rules import Hit

if TYPE_CHECKING:
    from claudesec.federation.lint import LintFinding

UNAVAILABLE = "federation lint was not run on this inventory (pass its findings to run_checks)"


def lint(inventory: OrgInventory) -> tuple[Hit, ...] | None:
    """The linter's findings on the organisation's federation objects."""
    from claudesec.federation.lint import lint_rules

    memberships: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for item in inventory.items("service_account_workspaces"):
        memberships[str(item.get("_parent_id", ""))].append(item)
    findings = lint_rules(
        list(inventory.items("federation_issuers")),
        list(inventory.items("federation_rules")),
        list(inventory.items("service_accounts")),
        memberships=_sequences(memberships)
        if inventory.has("service_account_workspaces")
        else None,
    )
    return tuple(_to_hits(findings))


def _sequences(by_account: Mapping[str, list[Mapping[str, Any]]]) -> Mapping[str, Sequence[Any]]:
    return {account: tuple(items) for account, items in by_account.items()}


def _to_hits(findings: Iterable[LintFinding]) -> Iterable[Hit]:
    for finding in findings:
        resource = finding.object_id or finding.object_name or "?"
        yield Hit(
            f"{resource}#{finding.rule_id}",  # one finding per object and lint rule
            f"{finding.rule_id} [{finding.severity}] {finding.object_kind} "
            f"{finding.object_name}: {finding.message}",
        )
