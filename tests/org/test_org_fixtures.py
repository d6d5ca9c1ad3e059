"""The seeded organisations hold what :data:`MESSY_DEFECTS` says, read back over HTTP.

Each documented defect has a plain predicate over the inventory here: true for the messy
organisation, false for the clean one. This is not the check catalogue (that judges with
thresholds from the config); it proves the list the catalogue maps to is honest, so a check
that misses a defect is the check's fault, not the fixture's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

import pytest

from claudesec.emulator import EmulatorState
from claudesec.emulator.org_fixtures import DEFECT_IDS, MESSY_DEFECTS, seed_large
from claudesec.emulator.orgs import seed_org
from claudesec.org.http import AdminHttp
from claudesec.org.inventory import InventoryReader
from claudesec.org.model import OrgInventory
from tests.fixtures.emulator import SeededEmulator

Item = Mapping[str, Any]


def _active_keys(inv: OrgInventory) -> list[Item]:
    return [k for k in inv.items("api_keys") if k["status"] == "active"]


def _when(inv: OrgInventory, text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _workspace_ids(inv: OrgInventory) -> set[str]:
    return {w["id"] for w in inv.items("workspaces")}


def _spend_limited(inv: OrgInventory) -> set[str]:
    return {
        s["scope"]["workspace_id"]
        for s in inv.items("spend_limits")
        if s["scope"]["type"] == "workspace" and s["is_enabled"]
    }


def _targeted_accounts(inv: OrgInventory) -> set[str]:
    return {r["target"]["service_account_id"] for r in inv.items("federation_rules")}


def _cc_default(inv: OrgInventory) -> Mapping[str, Any]:
    return (inv.singleton("claude_code_default_settings") or {}).get("settings") or {}


def _denies_secrets(settings: Mapping[str, Any]) -> bool:
    deny = " ".join(settings.get("permissions", {}).get("deny", []))
    return ".env" in deny and ".ssh" in deny


PREDICATES: dict[str, Callable[[OrgInventory], bool]] = {
    "key.organization_scoped": lambda inv: any(
        k["scope"]["type"] == "organization" for k in _active_keys(inv)
    ),
    "key.no_expiry": lambda inv: any(k["expires_at"] is None for k in _active_keys(inv)),
    "key.old": lambda inv: any(
        inv.fetched_at - _when(inv, k["created_at"]) > timedelta(days=90) for k in _active_keys(inv)
    ),
    "key.principal_less": lambda inv: any(k["principal"] is None for k in _active_keys(inv)),
    "key.departed_user": lambda inv: any(
        (k["principal"] or {}).get("user_id") not in {None, *(u["id"] for u in inv.items("users"))}
        for k in _active_keys(inv)
    ),
    "key.unused": lambda inv: any(
        k["id"] not in (inv.key_last_used or {}) for k in _active_keys(inv)
    ),
    "users.too_many_admins": lambda inv: sum(u["role"] == "admin" for u in inv.items("users")) > 3,
    "invites.stale": lambda inv: any(
        i["status"] == "expired"
        or (
            i["status"] == "pending"
            and inv.fetched_at - _when(inv, i["invited_at"]) > timedelta(days=14)
        )
        for i in inv.items("invites")
    ),
    "workspace.no_spend_limit": lambda inv: bool(_workspace_ids(inv) - _spend_limited(inv)),
    "workspace.no_rate_limit": lambda inv: bool(
        _workspace_ids(inv) - {r["_parent_id"] for r in inv.items("workspace_rate_limits")}
    ),
    "org.no_spend_limit": lambda inv: (
        not any(s["scope"]["type"] == "organization" for s in inv.items("spend_limits"))
    ),
    "workspace.residency_unrestricted": lambda inv: any(
        w["data_residency"]["allowed_inference_geos"] == "unrestricted"
        for w in inv.items("workspaces")
    ),
    "workspace.no_cmk": lambda inv: any(
        w["external_key_id"] is None for w in inv.items("workspaces")
    ),
    "telemetry.content_mode": lambda inv: any(
        t["traces"]["content_mode"] == "content" for t in inv.items("telemetry_destinations")
    ),
    "telemetry.failing": lambda inv: any(
        t["state"]["type"] == "disabled" or t["delivery_health"]["last_error"]
        for t in inv.items("telemetry_destinations")
    ),
    "webhook.disabled": lambda inv: any(h["state"] == "disabled" for h in inv.items("webhooks")),
    "compliance.api_off": lambda inv: (
        (inv.singleton("compliance_settings") or {})["state"]["type"] == "disabled"
    ),
    "cmk.failing": lambda inv: any(
        v["status"] == "failure" for v in inv.items("external_key_validations")
    ),
    "service_account.admin_role": lambda inv: any(
        a["organization_role"] == "admin" for a in inv.items("service_accounts")
    ),
    "service_account.no_rule": lambda inv: any(
        a["id"] not in _targeted_accounts(inv) for a in inv.items("service_accounts")
    ),
    "federation.rule_over_broad": lambda inv: any(
        r["applies_to_all_workspaces"]
        and (r["match"]["subject_prefix"] or "").endswith("*")
        and not r["match"]["claims"]
        for r in inv.items("federation_rules")
    ),
    "rbac.admin_group": lambda inv: any(
        set(g["role_ids"] or ())
        & {r["id"] for r in inv.items("rbac_roles") if r["display_name"] == "Admin"}
        for g in inv.items("rbac_groups")
    ),
    "rbac.empty_group": lambda inv: bool(
        {g["id"] for g in inv.items("rbac_groups")}
        - {m["_parent_id"] for m in inv.items("rbac_group_members")}
    ),
    "claude_code.bypass_allowed": lambda inv: (
        _cc_default(inv).get("permissions", {}).get("disableBypassPermissionsMode") != "disable"
    ),
    "claude_code.no_secret_deny": lambda inv: not _denies_secrets(_cc_default(inv)),
    "claude_code.mcp_unrestricted": lambda inv: (
        bool(_cc_default(inv).get("enableAllProjectMcpServers"))
        or "allowedMcpServers" not in _cc_default(inv)
    ),
}


def _read(org: SeededEmulator) -> OrgInventory:
    return InventoryReader(
        AdminHttp(org.emulator.base_url, timeout_s=5),
        admin_key=org.admin_key.secret,
        oauth_token=org.oauth_token,
    ).read()


def test_the_defect_list_is_well_formed() -> None:
    ids = [defect for defect, _ in MESSY_DEFECTS]
    assert len(ids) == len(set(ids)) == len(DEFECT_IDS)
    assert all(description.strip() for _, description in MESSY_DEFECTS)
    assert set(PREDICATES) == DEFECT_IDS


def test_the_messy_organisation_has_every_documented_defect(
    emulator_org_inventory: OrgInventory,
) -> None:
    inventory = emulator_org_inventory
    missing = sorted(d for d, holds in PREDICATES.items() if not holds(inventory))
    assert missing == []


@pytest.mark.parametrize("emulator_org", ["clean"], indirect=True)
def test_the_clean_organisation_has_none(emulator_org: SeededEmulator) -> None:
    inventory = _read(emulator_org)
    present = sorted(d for d, holds in PREDICATES.items() if holds(inventory))
    assert present == []


def test_an_unknown_organisation_name_is_refused() -> None:
    with pytest.raises(ValueError, match="messy, clean"):
        seed_org(EmulatorState(), "tidy")


def test_the_large_organisation_has_the_asked_sizes() -> None:
    state = EmulatorState()
    seeded = seed_large(state, keys=300, workspaces=20, users=50)
    assert len(seeded.key_ids) == len(state.list_keys("api")) == 300
    assert len(state.org.users()) == 50
    assert len(state.federation.list_workspaces()) == 21  # and the default one
