"""The organisation inventory read from the emulator over real HTTP.

Every kind is read; listings cross pages; 429 and 5xx are retried (the waits are recorded, not
slept); a kind the credential may not read is named in ``unavailable`` while the rest is read;
the JSON the emulator serves is what anthropic 2.16's models describe, field for field; the
inventory survives a JSON round trip.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from typing import Any

import pytest

from claudesec.anthropic_admin import AnthropicError
from claudesec.emulator import FaultKind
from claudesec.errors import ExitCode, UsageError
from claudesec.org import inventory_json
from claudesec.org.http import AdminHttp
from claudesec.org.inventory import InventoryReader, ReadOptions, exit_code
from claudesec.org.model import RESOURCE_KINDS, OrgInventory
from tests.fixtures.emulator import SeededEmulator

# The anthropic 2.16 model of each kind's items: (module under anthropic.types, class).
SDK_MODELS: dict[str, tuple[str, str]] = {
    "organization": ("organization_info", "OrganizationInfo"),
    "api_keys": ("organization.api_key", "APIKey"),
    "users": ("organization.organization_user", "OrganizationUser"),
    "invites": ("organization.organization_invite", "OrganizationInvite"),
    "workspaces": ("organization.workspace", "Workspace"),
    "workspace_members": ("organization.workspace_member", "WorkspaceMember"),
    "workspace_rate_limits": ("organization.workspaces.workspace_rate_limit", "WorkspaceRateLimit"),
    "rate_limits": ("organization.organization_rate_limit", "OrganizationRateLimit"),
    "spend_limits": ("beta.organization.beta_spend_limit", "BetaSpendLimit"),
    "telemetry_destinations": (
        "beta.organization.beta_telemetry_destination",
        "BetaTelemetryDestination",
    ),
    "webhooks": (
        "beta.organization.beta_organization_webhook_endpoint",
        "BetaOrganizationWebhookEndpoint",
    ),
    "compliance_settings": ("beta.organization.beta_compliance_settings", "BetaComplianceSettings"),
    "external_keys": ("organization.external_key", "ExternalKey"),
    "external_key_validations": (
        "organization.external_key_validate_response",
        "ExternalKeyValidateResponse",
    ),
    "rbac_roles": ("organization.rbac_role", "RBACRole"),
    "rbac_groups": ("organization.rbac_group", "RBACGroup"),
    "rbac_group_members": ("organization.rbac_groups.rbac_group_member", "RBACGroupMember"),
    "service_accounts": ("beta.organization.beta_service_account", "BetaServiceAccount"),
    "service_account_workspaces": (
        "beta.organization.beta_service_account_workspace_member",
        "BetaServiceAccountWorkspaceMember",
    ),
    "federation_issuers": (
        "beta.organization.federation.beta_federation_issuer",
        "BetaFederationIssuer",
    ),
    "federation_rules": ("beta.organization.federation.beta_federation_rule", "BetaFederationRule"),
    "claude_code_managed_settings": (
        "beta.organization.claude_code.managed_settings."
        "beta_claude_code_managed_settings_configuration",
        "BetaClaudeCodeManagedSettingsConfiguration",
    ),
    "claude_code_default_settings": (
        "beta.organization.claude_code.managed_settings."
        "beta_claude_code_rbac_group_default_managed_settings",
        "BetaClaudeCodeRBACGroupDefaultManagedSettings",
    ),
    "claude_code_group_settings": (
        "beta.organization.claude_code.managed_settings."
        "beta_claude_code_rbac_group_managed_settings_summary",
        "BetaClaudeCodeRBACGroupManagedSettingsSummary",
    ),
    "claude_code_group_settings_documents": (
        "beta.organization.claude_code.managed_settings."
        "beta_claude_code_rbac_group_managed_settings",
        "BetaClaudeCodeRBACGroupManagedSettings",
    ),
}

# Fields the emulator serves on purpose beyond the 2.16 model: the API still sends an API
# key's legacy `workspace_id` (claudesec.emulator.admin), which older clients read.
LEGACY_FIELDS: dict[str, set[str]] = {"api_keys": {"workspace_id"}}


class Waits:
    """The retry waits the reader asked for (recorded instead of slept)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def _reader(
    org: SeededEmulator,
    *,
    oauth: bool = True,
    page_size: int | None = None,
    waits: Waits | None = None,
    max_retries: int = 4,
    admin_key: str | None = None,
    oauth_token: str | None = None,
) -> InventoryReader:
    http = AdminHttp(
        org.emulator.base_url,
        timeout_s=5,
        max_retries=max_retries,
        sleep=waits if waits is not None else Waits(),
    )
    return InventoryReader(
        http,
        admin_key=admin_key or org.admin_key.secret,
        oauth_token=oauth_token or (org.oauth_token if oauth else None),
        options=ReadOptions(page_size=page_size),
    )


def _ids(items: tuple[Mapping[str, Any], ...]) -> list[str]:
    return [
        str(item.get("id") or item.get("user_id") or item.get("rbac_group_id")) for item in items
    ]


# ------------------------------------------------------------------------------ every kind


def test_every_kind_is_read_from_the_messy_organisation(emulator_org: SeededEmulator) -> None:
    inventory = _reader(emulator_org).read()

    assert inventory.unavailable == ()
    for kind in RESOURCE_KINDS:
        assert inventory.has(kind.name), kind.name
    assert inventory.organization_id == emulator_org.emulator.state.organization_id
    assert len(inventory.items("users")) == 10
    assert len(inventory.items("api_keys")) == len(emulator_org.org.key_ids)
    assert {w["name"] for w in inventory.items("workspaces")} >= {"prod", "staging", "research"}
    # Per-parent items say whose they are.
    workspace_ids = {w["id"] for w in inventory.items("workspaces")}
    assert {m["_parent_id"] for m in inventory.items("workspace_members")} <= workspace_ids
    assert inventory.items("external_key_validations")[0]["status"] == "failure"
    # Only the research notebook was used in the window.
    assert inventory.key_last_used is not None
    assert set(inventory.key_last_used) == {emulator_org.org.key_ids[3]}
    assert exit_code(inventory) is ExitCode.OK


# The variants whose defect the emulator renders in fields the seeded organisations leave
# at their defaults (claudesec.emulator.org_variants).
_VARIANTS_WITH_NEW_SHAPES = [
    "clean+ORG-FED-007",  # federation_issuers.jwks_polling_disabled_at
    "clean+ORG-RBAC-003",  # a custom RBAC role
    "clean+ORG-CC-006",  # a settings document of a deleted RBAC group
    "clean+ORG-CMK-003",  # an external key of another geo
    "clean+ORG-TEL-005",  # a destination disabled by its caller
    "clean+ORG-KEY-011",  # an archived workspace
]


@pytest.mark.parametrize(
    "emulator_org", ["messy", "clean", *_VARIANTS_WITH_NEW_SHAPES], indirect=True
)
def test_served_json_is_what_the_sdk_models_describe(emulator_org: SeededEmulator) -> None:
    """Every field the emulator serves is a field of anthropic 2.16's model, with its type."""
    inventory = _reader(emulator_org).read()
    assert set(SDK_MODELS) == {kind.name for kind in RESOURCE_KINDS}
    for kind in RESOURCE_KINDS:
        module, name = SDK_MODELS[kind.name]
        model = getattr(importlib.import_module(f"anthropic.types.{module}"), name)
        singleton = inventory.singleton(kind.name)
        items = (singleton,) if singleton is not None else inventory.items(kind.name)
        for item in items:
            data = {k: v for k, v in item.items() if k != "_parent_id"}
            extra = set(data) - set(model.model_fields) - LEGACY_FIELDS.get(kind.name, set())
            assert not extra, f"{kind.name}: fields the SDK does not know: {sorted(extra)}"
            model.model_validate(data)


@pytest.mark.parametrize("emulator_org", ["clean"], indirect=True)
def test_the_clean_organisation_is_read_whole(emulator_org: SeededEmulator) -> None:
    inventory = _reader(emulator_org).read()

    assert inventory.unavailable == ()
    assert len(inventory.items("claude_code_group_settings_documents")) == 1
    assert inventory.singleton("compliance_settings") == {
        "type": "compliance_settings",
        "state": {"type": "enabled"},
        "access_transparency": {"type": "enabled"},
    }
    assert inventory.key_last_used is not None
    assert set(inventory.key_last_used) == set(emulator_org.org.key_ids)


@pytest.mark.parametrize(
    ("emulator_org", "kind"),
    [
        ("clean+ORG-KEY-010", "service_accounts"),
        ("clean+ORG-FED-006", "federation_issuers"),
    ],
    indirect=["emulator_org"],
)
def test_archived_accounts_and_issuers_are_listed_as_archived(
    emulator_org: SeededEmulator, kind: str
) -> None:
    """Evidence names what a dangling key or rule points at: an archived object, not an
    unknown one."""
    inventory = _reader(emulator_org).read()

    assert [item for item in inventory.items(kind) if item.get("archived_at")]
    assert inventory.unavailable == ()


@pytest.mark.parametrize("emulator_org", ["clean+ORG-KEY-011"], indirect=True)
def test_archived_workspaces_are_listed_but_nothing_under_them_is_read(
    emulator_org: SeededEmulator,
) -> None:
    """A key left active in an archived workspace (ORG-KEY-011) is only visible when the
    listing asks for archived workspaces; their members and limits are not read."""
    inventory = _reader(emulator_org).read()

    [archived] = [w for w in inventory.items("workspaces") if w.get("archived_at")]
    assert any(
        (k.get("scope") or {}).get("workspace_id") == archived["id"]
        for k in inventory.items("api_keys")
    )
    read = {r.path for r in emulator_org.emulator.state.requests()}
    assert not any(archived["id"] in path for path in read)
    assert inventory.unavailable == ()


# ------------------------------------------------------------------------------ paging


def test_listings_cross_pages_and_match_a_one_page_read(emulator_org: SeededEmulator) -> None:
    whole = _reader(emulator_org).read()
    emulator_org.emulator.state.clear_requests()

    paged = _reader(emulator_org, page_size=2).read()

    for kind in RESOURCE_KINDS:
        if kind.shape in ("list", "per_parent"):
            assert _ids(paged.items(kind.name)) == _ids(whole.items(kind.name)), kind.name
    state = emulator_org.emulator.state
    users = state.requests(path="/v1/organizations/users")
    assert len(users) == 5  # 10 users, 2 a page
    assert [r.query.get("after_id") for r in users][1:] == [
        [str(paged.items("users")[i]["id"])] for i in (1, 3, 5, 7)
    ]
    roles = state.requests(path="/v1/organizations/rbac_roles")
    assert len(roles) == 3  # 5 built-in roles, 2 a page, by the opaque `page` cursor
    assert all("page" in r.query for r in roles[1:])


def test_the_sdk_pages_the_same_listings(emulator_org: SeededEmulator) -> None:
    """The real SDK's iterators walk the emulator's pages to the same items."""
    import anthropic

    client = anthropic.Anthropic(
        api_key=emulator_org.admin_key.secret,
        base_url=emulator_org.emulator.base_url,
        max_retries=0,
    )
    with client:
        users = [u.id for u in client.organization.users.list(limit=3)]
        roles = [r.id for r in client.organization.rbac_roles.list(limit=2)]
        hooks = [h.id for h in client.beta.organization.webhooks.list(limit=1)]
        spend = list(client.beta.organization.spend_limits.list(limit=1))
    inventory = _reader(emulator_org).read()
    assert users == _ids(inventory.items("users"))
    assert roles == _ids(inventory.items("rbac_roles"))
    assert hooks == _ids(inventory.items("webhooks"))
    assert [s.id for s in spend] == _ids(inventory.items("spend_limits"))


# ------------------------------------------------------------------------------ faults


def test_429_waits_retry_after_then_reads(emulator_org: SeededEmulator) -> None:
    state = emulator_org.emulator.state
    state.inject_fault(
        FaultKind.RATE_LIMIT, count=2, path_prefix="/v1/organizations/users", retry_after=7
    )
    waits = Waits()

    inventory = _reader(emulator_org, waits=waits).read()

    assert waits.seconds == [7, 7]
    assert len(inventory.items("users")) == 10
    assert inventory.unavailable == ()
    statuses = [r.status for r in state.requests(path="/v1/organizations/users")]
    assert statuses == [429, 429, 200]


def test_5xx_is_retried_with_backoff(emulator_org: SeededEmulator) -> None:
    state = emulator_org.emulator.state
    state.inject_fault(FaultKind.SERVER_ERROR, path_prefix="/v1/organizations/invites")
    state.inject_fault(FaultKind.OVERLOADED, path_prefix="/v1/organizations/invites")
    waits = Waits()

    inventory = _reader(emulator_org, waits=waits).read()

    assert len(inventory.items("invites")) == 2
    assert len(waits.seconds) == 2
    assert waits.seconds[1] > waits.seconds[0] > 0  # exponential backoff


def test_a_kind_that_keeps_failing_is_named_and_the_run_goes_on(
    emulator_org: SeededEmulator,
) -> None:
    state = emulator_org.emulator.state
    state.inject_fault(FaultKind.SERVER_ERROR, count=3, path_prefix="/v1/organizations/webhooks")

    inventory = _reader(emulator_org, max_retries=2).read()

    assert [(u.kind, u.reason) for u in inventory.unavailable] == [("webhooks", "error")]
    assert "500" in inventory.unavailable[0].message
    assert not inventory.has("webhooks")
    assert len(inventory.items("users")) == 10
    assert exit_code(inventory) is ExitCode.PARTIAL


def test_a_429_asking_too_long_a_wait_is_not_slept(emulator_org: SeededEmulator) -> None:
    """A throttling answer cannot stall the run: a retry-after over the bound fails the kind."""
    emulator_org.emulator.state.inject_fault(
        FaultKind.RATE_LIMIT, path_prefix="/v1/organizations/invites", retry_after=86_400
    )
    waits = Waits()

    inventory = _reader(emulator_org, waits=waits).read()

    assert waits.seconds == []
    assert [(u.kind, u.reason) for u in inventory.unavailable] == [("invites", "error")]


# ------------------------------------------------------------------------------ credentials


def test_kinds_needing_org_admin_are_forbidden_without_a_token(
    emulator_org: SeededEmulator,
) -> None:
    inventory = _reader(emulator_org, oauth=False).read()

    forbidden = {u.kind: u.reason for u in inventory.unavailable}
    assert forbidden == {
        "service_accounts": "forbidden",
        "service_account_workspaces": "forbidden",
        "federation_issuers": "forbidden",
        "federation_rules": "forbidden",
    }
    assert all("org:admin" in u.message or "parent" in u.message for u in inventory.unavailable)
    assert len(inventory.items("api_keys")) == len(emulator_org.org.key_ids)
    assert exit_code(inventory) is ExitCode.OK  # a fact about the credential, not a failure


def test_a_token_without_org_admin_is_refused_by_the_api_and_named(
    emulator_org: SeededEmulator,
) -> None:
    """An attacker-shaped credential (a workload's inference token) reads nothing it should
    not: the API's 403 is recorded per kind, and the rest is read with the Admin key."""
    state = emulator_org.emulator.state
    weak = state.add_oauth_token(scopes=("workspace:inference",)).access_token
    inventory = _reader(emulator_org, oauth_token=weak).read()

    by_kind = {u.kind: u for u in inventory.unavailable}
    assert by_kind["service_accounts"].reason == "forbidden"
    assert "403" in by_kind["service_accounts"].message
    assert weak not in json.dumps(inventory_json.to_json(inventory))
    assert inventory.has("users")


def test_a_refused_admin_key_stops_the_run(emulator_org: SeededEmulator) -> None:
    state = emulator_org.emulator.state
    state.set_key_status(emulator_org.admin_key.id, "inactive")

    with pytest.raises(AnthropicError) as caught:
        _reader(emulator_org).read()

    assert caught.value.status == 401
    assert emulator_org.admin_key.secret not in str(caught.value)


def test_a_forbidden_usage_report_leaves_key_last_used_unknown(
    emulator_org: SeededEmulator,
) -> None:
    emulator_org.emulator.state.inject_fault(
        FaultKind.SERVER_ERROR, count=5, path_prefix="/v1/organizations/usage_report"
    )
    inventory = _reader(emulator_org, max_retries=1).read()

    assert inventory.key_last_used is None
    assert [u.kind for u in inventory.unavailable] == ["usage_report"]


def test_the_inventory_is_read_once_per_reader(emulator_org: SeededEmulator) -> None:
    reader = _reader(emulator_org)
    first = reader.read()
    emulator_org.emulator.state.clear_requests()

    assert reader.read() is first
    assert emulator_org.emulator.state.requests() == []


# ------------------------------------------------------------------------------ JSON


def test_json_round_trip_keeps_everything(emulator_org: SeededEmulator, tmp_path: Any) -> None:
    inventory = _reader(emulator_org, oauth=False).read()
    path = tmp_path / "inventory.json"

    inventory_json.write(path, inventory)
    again = inventory_json.read(path)

    assert again == inventory
    assert path.stat().st_mode & 0o077 == 0
    assert inventory_json.from_json(json.loads(json.dumps(inventory_json.to_json(again)))) == again


@pytest.mark.parametrize(
    "document",
    [{}, {"format": "something-else"}, {"format": inventory_json.FORMAT}, [1, 2]],
)
def test_a_document_that_is_not_an_inventory_is_refused(document: Any) -> None:
    with pytest.raises(UsageError):
        inventory_json.from_json(document)


def test_an_empty_inventory_round_trips() -> None:
    from datetime import UTC, datetime

    empty = OrgInventory(fetched_at=datetime(2026, 12, 1, tzinfo=UTC), organization_id="org")
    assert inventory_json.from_json(inventory_json.to_json(empty)) == empty


def test_a_parent_id_cannot_steer_the_request_path(emulator_org: SeededEmulator) -> None:
    """An id the API hands back is data: it is sent percent-encoded, never as path syntax."""
    org = emulator_org.emulator.state.org
    group = org.add_rbac_group("odd")
    with org._lock:  # an id no real API would mint, to see how the reader sends it
        tables = org._tables
        record = tables.rbac_groups.pop(group["id"])
        members = tables.group_members.pop(group["id"])
        odd_id = "../api_keys?limit=1#"
        tables.rbac_groups[odd_id] = {**record, "id": odd_id}
        tables.group_members[odd_id] = members
    org.add_group_member(odd_id, org.users()[0])

    inventory = _reader(emulator_org).read()

    read = [m for m in inventory.items("rbac_group_members") if m["_parent_id"] == odd_id]
    assert [m["user_id"] for m in read] == [org.users()[0]["id"]]
    paths = {r.path for r in emulator_org.emulator.state.requests()}
    assert "/v1/organizations/rbac_groups/..%2Fapi_keys%3Flimit%3D1%23/members" in paths
