"""Inventories and settings for the org check tests: the sample organisations, and a small
builder that replaces one kind of a sample with items in the Admin API's JSON shape."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from claudesec.config import OrgConfig
from claudesec.org import samples
from claudesec.org.check import CheckRun, run_checks
from claudesec.org.model import OrgInventory, Unavailable

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
# The OASIS SARIF 2.1.0 schema (draft-04), shipped in the test tree for the scan reports too.
SARIF_SCHEMA = Path(__file__).parent.parent / "scan" / "data" / "sarif-schema-2.1.0.json"


def compliance_finding() -> Any:
    """The published OCSF Compliance Finding class (2003) as pydantic-ocsf models it."""
    from ocsf.v1_7_0 import events as ocsf_events  # pydantic-ocsf, in the test extra

    return ocsf_events.ComplianceFinding


SETTINGS = replace(OrgConfig(), **samples.MESSY_SETTINGS)


def with_kind(inventory: OrgInventory, kind: str, items: Any) -> OrgInventory:
    """``inventory`` with ``kind``'s items (a list) or object (a dict) replaced."""
    if isinstance(items, dict):
        return replace(inventory, singletons={**inventory.singletons, kind: items})
    return replace(inventory, lists={**inventory.lists, kind: tuple(items)})


def without(inventory: OrgInventory, kind: str, reason: str = "forbidden") -> OrgInventory:
    """``inventory`` as if ``kind`` could not be read."""
    lists = {k: v for k, v in inventory.lists.items() if k != kind}
    singletons = {k: v for k, v in inventory.singletons.items() if k != kind}
    gone = Unavailable(kind, reason, f"403 permission_error on {kind}")  # type: ignore[arg-type]
    return replace(
        inventory, lists=lists, singletons=singletons, unavailable=(*inventory.unavailable, gone)
    )


def messy_run(inventory: OrgInventory | None = None, **kwargs: Any) -> CheckRun:
    options: dict[str, Any] = {
        "now": NOW,
        "key_markings": samples.MESSY_MARKINGS,
        "federation_findings": samples.MESSY_FEDERATION,
    }
    options.update(kwargs)
    config = options.pop("config", SETTINGS)
    return run_checks(inventory or samples.messy(NOW), config, **options)


def clean_run(inventory: OrgInventory | None = None, **kwargs: Any) -> CheckRun:
    options: dict[str, Any] = {
        "now": NOW,
        "key_markings": samples.CLEAN_MARKINGS,
        "federation_findings": samples.CLEAN_FEDERATION,
    }
    options.update(kwargs)
    config = options.pop("config", SETTINGS)
    return run_checks(inventory or samples.clean(NOW), config, **options)
