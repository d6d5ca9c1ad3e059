"""The sample organisations are what the Admin API returns: every item validates against the
anthropic SDK's own response model for its resource, with no field the model lacks (beyond
the inventory's ``_parent_id``). A test inventory in another shape would prove nothing."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from claudesec.org import samples
from tests.org.helpers import NOW

_BETA = "anthropic.types.beta.organization"
MODELS = {
    "api_keys": f"{_BETA}:BetaAPIKey",
    "users": f"{_BETA}:BetaOrganizationUser",
    "invites": f"{_BETA}:BetaOrganizationInvite",
    "workspaces": f"{_BETA}:BetaWorkspace",
    "workspace_members": f"{_BETA}:BetaWorkspaceMember",
    "workspace_rate_limits": f"{_BETA}.workspaces:BetaWorkspaceRateLimit",
    "spend_limits": f"{_BETA}:BetaSpendLimit",
    "telemetry_destinations": f"{_BETA}:BetaTelemetryDestination",
    "webhooks": f"{_BETA}:BetaOrganizationWebhookEndpoint",
    "external_keys": f"{_BETA}:BetaExternalKey",
    "rbac_roles": f"{_BETA}:BetaRBACRole",
    "rbac_groups": f"{_BETA}:BetaRBACGroup",
    "rbac_group_members": f"{_BETA}.rbac_groups:BetaRBACGroupMember",
    "service_accounts": f"{_BETA}:BetaServiceAccount",
    "service_account_workspaces": f"{_BETA}:BetaServiceAccountWorkspaceMember",
    "federation_issuers": f"{_BETA}.federation:BetaFederationIssuer",
    "federation_rules": f"{_BETA}.federation:BetaFederationRule",
    "claude_code_group_settings_documents": (
        f"{_BETA}.claude_code.managed_settings:BetaClaudeCodeRBACGroupManagedSettings"
    ),
    "organization": "anthropic.types.beta:BetaOrganization",
    "compliance_settings": f"{_BETA}:BetaComplianceSettings",
    "claude_code_managed_settings": (
        f"{_BETA}.claude_code.managed_settings:BetaClaudeCodeManagedSettingsConfiguration"
    ),
    "claude_code_default_settings": (
        f"{_BETA}.claude_code.managed_settings:BetaClaudeCodeRBACGroupDefaultManagedSettings"
    ),
}


def _model(kind: str) -> Any:
    module, _, name = MODELS[kind].partition(":")
    return getattr(importlib.import_module(module), name)


def _items(build: Any) -> list[tuple[str, dict[str, Any]]]:
    inventory = build(NOW)
    found = [(kind, dict(item)) for kind, items in inventory.lists.items() for item in items]
    found += [(kind, dict(item)) for kind, item in inventory.singletons.items()]
    return found


def _extras(model: Any, path: str = "") -> set[str]:
    from pydantic import BaseModel

    found = {path + key for key in (model.model_extra or {})}
    for name in type(model).model_fields:
        value = getattr(model, name)
        for child in value if isinstance(value, list) else [value]:
            if isinstance(child, BaseModel):
                found |= _extras(child, f"{path}{name}.")
    return found


@pytest.mark.parametrize(
    "build", [samples.messy, samples.clean, samples.messy_no_telemetry], ids=lambda b: b.__name__
)
def test_every_sample_item_is_a_valid_admin_api_response(build: Any) -> None:
    items = _items(build)
    assert {kind for kind, _ in items} <= set(MODELS)
    for kind, item in items:
        model = _model(kind).model_validate(item, strict=False)
        extra = _extras(model) - {"_parent_id"}
        assert not extra, f"{kind} {item.get('id')}: fields the SDK model lacks: {extra}"
