"""The organisation inventory as plain data: what ``org inventory`` reads and ``org check`` judges.

This module is the contract between the reader (``claudesec.org.inventory``, which pages the
Admin API) and the checks (``claudesec.org.checks``): checks never call the API, they judge an
:class:`OrgInventory`, so a check can be tested from a JSON file and a run reads each resource
once. Every item is the JSON object the Admin API returns for that resource (the SDK model's
``model_dump(mode="json")``), unchanged, so an inventory exported as evidence is what the
platform said, not our reading of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

ResourceShape = Literal["list", "singleton", "per_parent", "per_parent_singleton"]


@dataclass(frozen=True)
class ResourceKind:
    """One Admin resource the inventory reads.

    ``path`` is the Admin API path; for ``per_parent`` kinds it holds ``{parent_id}`` and is
    read once per item of ``parent`` (each item then gains a ``"_parent_id"`` field, the
    parent item's ``parent_key`` field). A ``per_parent_singleton`` kind answers one object
    per parent instead of a page; its items are those objects. ``method`` is ``POST`` only for
    side-effect-free probes the API exposes as POST (an external key's ``validate``).
    ``credential`` says which credential the platform wants: an Admin API key, or an OAuth
    access token with the ``org:admin`` scope (federation and service accounts).
    """

    name: str
    path: str
    shape: ResourceShape = "list"
    parent: str | None = None
    credential: Literal["admin_key", "org_admin_oauth", "either"] = "admin_key"
    beta: bool = False
    method: Literal["GET", "POST"] = "GET"
    parent_key: str = "id"


# Order matters: a parent kind comes before the kinds read per parent item.
RESOURCE_KINDS: tuple[ResourceKind, ...] = (
    ResourceKind("organization", "/v1/organizations/me", shape="singleton"),
    ResourceKind("api_keys", "/v1/organizations/api_keys"),
    ResourceKind("users", "/v1/organizations/users"),
    ResourceKind("invites", "/v1/organizations/invites"),
    ResourceKind("workspaces", "/v1/organizations/workspaces"),
    ResourceKind(
        "workspace_members",
        "/v1/organizations/workspaces/{parent_id}/members",
        shape="per_parent",
        parent="workspaces",
    ),
    ResourceKind(
        "workspace_rate_limits",
        "/v1/organizations/workspaces/{parent_id}/rate_limits",
        shape="per_parent",
        parent="workspaces",
    ),
    ResourceKind("rate_limits", "/v1/organizations/rate_limits"),
    ResourceKind("spend_limits", "/v1/organizations/spend_limits", beta=True),
    ResourceKind("telemetry_destinations", "/v1/organizations/telemetry_destinations", beta=True),
    ResourceKind("webhooks", "/v1/organizations/webhooks", beta=True),
    ResourceKind("compliance_settings", "/v1/organizations/compliance_settings", shape="singleton"),
    ResourceKind("external_keys", "/v1/organizations/external_keys"),
    ResourceKind(
        "external_key_validations",
        "/v1/organizations/external_keys/{parent_id}/validate",
        shape="per_parent_singleton",
        parent="external_keys",
        method="POST",
    ),
    ResourceKind("rbac_roles", "/v1/organizations/rbac_roles"),
    ResourceKind("rbac_groups", "/v1/organizations/rbac_groups"),
    ResourceKind(
        "rbac_group_members",
        "/v1/organizations/rbac_groups/{parent_id}/members",
        shape="per_parent",
        parent="rbac_groups",
    ),
    ResourceKind(
        "service_accounts", "/v1/organizations/service_accounts", credential="org_admin_oauth"
    ),
    ResourceKind(
        "service_account_workspaces",
        "/v1/organizations/service_accounts/{parent_id}/workspaces",
        shape="per_parent",
        parent="service_accounts",
        credential="org_admin_oauth",
    ),
    ResourceKind(
        "federation_issuers", "/v1/organizations/federation_issuers", credential="org_admin_oauth"
    ),
    ResourceKind(
        "federation_rules", "/v1/organizations/federation_rules", credential="org_admin_oauth"
    ),
    ResourceKind(
        "claude_code_managed_settings",
        "/v1/organizations/claude_code/managed_settings/configuration",
        shape="singleton",
        beta=True,
    ),
    ResourceKind(
        "claude_code_default_settings",
        "/v1/organizations/claude_code/managed_settings/rbac_group_default",
        shape="singleton",
        beta=True,
    ),
    ResourceKind(
        "claude_code_group_settings",
        "/v1/organizations/claude_code/managed_settings/rbac_groups",
        beta=True,
    ),
    ResourceKind(
        "claude_code_group_settings_documents",
        "/v1/organizations/claude_code/managed_settings/rbac_groups/{parent_id}",
        shape="per_parent_singleton",
        parent="claude_code_group_settings",
        parent_key="rbac_group_id",
        beta=True,
    ),
)

KIND_BY_NAME: Mapping[str, ResourceKind] = {kind.name: kind for kind in RESOURCE_KINDS}


@dataclass(frozen=True)
class Unavailable:
    """Why a kind is missing from the inventory: checks needing it are skipped, never passed."""

    kind: str
    reason: Literal["forbidden", "not_enrolled", "not_found", "error"]
    message: str  # one line, already redacted


@dataclass(frozen=True)
class OrgInventory:
    """One consistent read of the organisation.

    ``lists`` maps a list or per-parent kind name to its items; ``singletons`` maps a singleton
    kind name to its object. A kind read successfully but empty is present with ``()``; a kind
    that could not be read is absent from both and named in ``unavailable``. ``key_last_used``
    maps an API key id to the last time the usage report saw it (absent: never seen in the
    window ``usage_window_days``), and is ``None`` when usage could not be read.
    """

    fetched_at: datetime
    organization_id: str
    lists: Mapping[str, tuple[Mapping[str, Any], ...]] = field(default_factory=dict)
    singletons: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    unavailable: tuple[Unavailable, ...] = ()
    key_last_used: Mapping[str, datetime] | None = None
    usage_window_days: int = 30

    def items(self, kind: str) -> tuple[Mapping[str, Any], ...]:
        """The items of a list kind; ``()`` when it was read empty or could not be read."""
        return self.lists.get(kind, ())

    def singleton(self, kind: str) -> Mapping[str, Any] | None:
        return self.singletons.get(kind)

    def has(self, kind: str) -> bool:
        """Whether ``kind`` was read (a check needing it must be skipped when it was not)."""
        return kind in self.lists or kind in self.singletons
