"""Two organisations built in code: a *messy* one that fails every check of the catalogue
that the configuration makes applicable, and a *clean* one that passes them all.

Every item is shaped exactly as the Admin API returns it (anthropic 2.16's
``types/organization`` and ``types/beta/organization`` models, dumped to JSON), so the posture
drill, the tests and a first-time user without an account see ``org check`` judge what the
platform would send. :data:`MESSY_SETTINGS` holds the ``[org]`` values that make every
conditional check applicable (a required region, CMK required, allowed email domains, a
managed workspace spend limit). The emulator's ``--org messy|clean`` seeds (built beside this
module) are meant to serve the same organisations.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from claudesec.org.model import OrgInventory
from claudesec.org.rules import Hit

ORG_ID = "org_sample"
MESSY_SETTINGS: Mapping[str, Any] = {
    "max_admins": 3,
    "max_developers": 1,
    "allowed_email_domains": ("example.com",),
    "required_inference_geos": ("us",),
    "require_cmk": True,
    "require_compliance_api": True,
    "workspace_spend_limit": "50000",
}
# What claudesec's key store says about the sample keys (see CheckContext.key_markings).
MESSY_MARKINGS: Mapping[str, str] = {
    "apikey_old": "unmanaged",
    "apikey_managed_off": "managed",
    "apikey_orphan": "orphaned",
}
CLEAN_MARKINGS: Mapping[str, str] = {"apikey_ci": "managed"}
# What the federation linter would say (the linter is a separate module; see org.federation).
MESSY_FEDERATION: tuple[Hit, ...] = (
    Hit("fdrl_all", "subject_prefix 'repo:*' matches every repository of every owner"),
)
CLEAN_FEDERATION: tuple[Hit, ...] = ()


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class _Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def ago(self, days: float) -> str:
        return _ts(self.now - timedelta(days=days))

    def ahead(self, days: float) -> str:
        return _ts(self.now + timedelta(days=days))


def api_key(
    t: _Clock,
    key_id: str,
    *,
    status: str = "active",
    age: float = 10,
    expires_in: float | None = 60,
    scope: Mapping[str, Any] | None = None,
    principal: Mapping[str, Any] | None = None,
    created_by: str | None = "user_admin",
) -> dict[str, Any]:
    """One ``APIKey`` as GET /v1/organizations/api_keys lists it."""
    return {
        "id": key_id,
        "type": "api_key",
        "name": key_id.removeprefix("apikey_"),
        "status": status,
        "created_at": t.ago(age),
        "expires_at": None if expires_in is None else t.ahead(expires_in),
        "created_by": None if created_by is None else {"id": created_by, "type": "user"},
        "partial_key_hint": "sk-ant-api03-Ab1...xyAA",
        "scope": dict(scope) if scope else {"type": "workspace", "workspace_id": "wrkspc_prod"},
        "principal": dict(principal) if principal is not None else None,
    }


def sa_principal(sa_id: str) -> dict[str, str]:
    return {"type": "service_account_actor", "service_account_id": sa_id}


def user_principal(user_id: str) -> dict[str, str]:
    return {"type": "user_actor", "user_id": user_id}


def user(t: _Clock, user_id: str, role: str, email: str) -> dict[str, Any]:
    return {
        "id": user_id,
        "type": "user",
        "added_at": t.ago(300),
        "email": email,
        "name": user_id.removeprefix("user_"),
        "role": role,
    }


def invite(
    t: _Clock,
    invite_id: str,
    email: str,
    *,
    role: str = "user",
    sent: float = 2,
    status: str = "pending",
) -> dict[str, Any]:
    return {
        "id": invite_id,
        "type": "invite",
        "email": email,
        "role": role,
        "status": status,
        "invited_at": t.ago(sent),
        "expires_at": t.ahead(21 - sent),
        "accepted_at": t.ago(1) if status == "accepted" else None,
        "rbac_group_ids": [],
    }


def workspace(
    t: _Clock,
    ws_id: str,
    *,
    allowed: Any = ("us",),
    default: str = "us",
    external_key_id: str | None = None,
    archived: bool = False,
) -> dict[str, Any]:
    return {
        "id": ws_id,
        "type": "workspace",
        "name": ws_id.removeprefix("wrkspc_"),
        "created_at": t.ago(200),
        "archived_at": t.ago(5) if archived else None,
        "compartment_id": f"cmpt_{ws_id}",
        "display_color": "#6C5BB9",
        "tags": {},
        "user_profile_id": None,
        "external_key_id": external_key_id,
        "data_residency": {
            "allowed_inference_geos": list(allowed) if isinstance(allowed, tuple) else allowed,
            "default_inference_geo": default,
            "workspace_geo": "us",
        },
    }


def member(ws_id: str, user_id: str, role: str) -> dict[str, Any]:
    return {
        "type": "workspace_member",
        "workspace_id": ws_id,
        "user_id": user_id,
        "workspace_role": role,
        "_parent_id": ws_id,
    }


def spend_limit(
    t: _Clock,
    limit_id: str,
    scope: Mapping[str, Any],
    amount: str | None,
    *,
    enabled: bool = True,
    period: str = "monthly",
) -> dict[str, Any]:
    return {
        "id": limit_id,
        "type": "spend_limit",
        "amount": amount,
        "currency": "USD",
        "is_enabled": enabled,
        "period": period,
        "scope": dict(scope),
        "created_at": t.ago(30),
        "updated_at": t.ago(3),
    }


def rate_limit(ws_id: str) -> dict[str, Any]:
    return {
        "type": "workspace_rate_limit",
        "workspace_id": ws_id,
        "rate_limit_id": "rl_model_sonnet",
        "group": {"type": "model_group", "id": "rlg_01Sonnet", "display_name": "Claude Sonnet"},
        "models": ["claude-sonnet-4-6"],
        "limits": [
            {
                "type": "requests_per_minute",
                "value": 500,
                "org_limit": 4000,
                "source": {"type": "workspace"},
            }
        ],
        "_parent_id": ws_id,
    }


def telemetry(
    t: _Clock,
    dest_id: str,
    *,
    enabled: bool = True,
    reason: str = "caller",
    content_mode: str = "metadata_only",
    url: str = "https://otel.example.com",
    error_at: float | None = None,
    success_at: float | None = 0.1,
) -> dict[str, Any]:
    state: dict[str, Any] = (
        {"type": "enabled"} if enabled else {"type": "disabled", "reason": {"type": reason}}
    )
    return {
        "id": dest_id,
        "type": "telemetry_destination",
        "display_name": dest_id.removeprefix("tdst_"),
        "created_at": t.ago(60),
        "updated_at": t.ago(2),
        "endpoint_url": url,
        "header_names": ["authorization"],
        "state": state,
        "traces": {
            "enabled": True,
            "content_mode": content_mode,
            "endpoint_url": None,
            "max_content_bytes": None,
        },
        "workspaces": {"type": "all"},
        "delivery_health": {
            "last_error": None if error_at is None else "HTTP error (status 503)",
            "last_error_at": None if error_at is None else t.ago(error_at),
            "last_success_at": None if success_at is None else t.ago(success_at),
        },
    }


def webhook(
    t: _Clock,
    hook_id: str,
    *,
    state: str = "enabled",
    reason: str = "",
    events: tuple[str, ...] = ("external_key.failed", "external_key.recovered"),
) -> dict[str, Any]:
    return {
        "id": hook_id,
        "name": hook_id.removeprefix("whep_"),
        "description": "",
        "url": "https://hooks.example.com/anthropic",
        "state": state,
        "disabled_reason": reason,
        "enabled_events": list(events),
        "created_at": t.ago(90),
        "updated_at": t.ago(1),
    }


def external_key(
    t: _Clock, key_id: str, *, geo: str = "us", attached: bool = True
) -> dict[str, Any]:
    return {
        "id": key_id,
        "type": "external_key",
        "display_name": key_id.removeprefix("ekey_"),
        "geo": geo,
        "attachment": {"type": "attached" if attached else "unattached"},
        "provider_config": {
            "type": "aws",
            "kms_arn": f"arn:aws:kms:us-east-1:111122223333:key/{key_id}",
            "region": "us-east-1",
            "role_arn": None,
        },
        "user_profile_id": None,
        "created_at": t.ago(100),
        "updated_at": t.ago(100),
    }


def service_account(
    t: _Clock, sa_id: str, role: str = "developer", *, archived: bool = False
) -> dict[str, Any]:
    return {
        "id": sa_id,
        "type": "service_account",
        "name": sa_id.removeprefix("svac_"),
        "description": None,
        "organization_role": role,
        "created_at": t.ago(120),
        "updated_at": t.ago(10),
        "created_by_actor_id": "user_admin",
        "updated_by_actor_id": None,
        "archived_at": t.ago(20) if archived else None,
        "archived_by_actor_id": "user_admin" if archived else None,
    }


def sa_workspace(sa_id: str, ws_id: str, role: str) -> dict[str, Any]:
    return {
        "type": "service_account_workspace_member",
        "service_account_id": sa_id,
        "workspace_id": ws_id,
        "workspace_role": role,
        "implicit": False,
        "created_by_actor_id": "user_admin",
        "_parent_id": sa_id,
    }


def issuer(
    t: _Clock, issuer_id: str, *, check_jti: bool = True, polling_off: bool = False
) -> dict[str, Any]:
    return {
        "id": issuer_id,
        "type": "federation_issuer",
        "name": issuer_id.removeprefix("fdis_"),
        "issuer_url": "https://token.actions.githubusercontent.com",
        "jwks": {"type": "discovery"},
        "check_jti": check_jti,
        "max_jwt_lifetime_seconds": 3600,
        "jwks_polling_disabled_at": t.ago(3) if polling_off else None,
        "poll_status": None,
        "created_at": t.ago(100),
        "updated_at": t.ago(10),
        "created_by_actor_id": "user_admin",
        "updated_by_actor_id": None,
        "archived_at": None,
        "archived_by_actor_id": None,
    }


def rule(
    t: _Clock,
    rule_id: str,
    sa_id: str,
    *,
    issuer_id: str = "fdis_github",
    all_workspaces: bool = False,
    lifetime: int = 900,
    scope: str = "workspace:inference",
    subject: str = "repo:example/app:ref:refs/heads/main",
) -> dict[str, Any]:
    return {
        "id": rule_id,
        "type": "federation_rule",
        "name": rule_id.removeprefix("fdrl_"),
        "description": None,
        "issuer_id": issuer_id,
        "issuer_name": issuer_id.removeprefix("fdis_"),
        "match": {"subject_prefix": subject, "claims": None, "condition": None, "audience": None},
        "target": {
            "type": "service_account",
            "service_account_id": sa_id,
            "service_account_name": sa_id.removeprefix("svac_"),
        },
        "oauth_scope": scope,
        "token_lifetime_seconds": lifetime,
        "applies_to_all_workspaces": all_workspaces,
        "workspace_ids": [] if all_workspaces else ["wrkspc_prod"],
        "workspace_id": None,
        "attributes": None,
        "created_at": t.ago(50),
        "updated_at": t.ago(5),
        "created_by_actor_id": "user_admin",
        "updated_by_actor_id": None,
        "archived_at": None,
        "archived_by_actor_id": None,
    }


def rbac_group(t: _Clock, group_id: str, role_ids: list[str]) -> dict[str, Any]:
    return {
        "id": group_id,
        "type": "rbac_group",
        "name": group_id.removeprefix("rbac_group_"),
        "role_ids": role_ids,
        "source_type": "scim",
        "created_at": t.ago(100),
        "updated_at": t.ago(10),
    }


def rbac_member(t: _Clock, group_id: str, user_id: str) -> dict[str, Any]:
    return {
        "type": "rbac_group_member",
        "rbac_group_id": group_id,
        "user_id": user_id,
        "email": f"{user_id.removeprefix('user_')}@example.com",
        "created_at": t.ago(30),
        "_parent_id": group_id,
    }


def rbac_role(t: _Clock, role_id: str, source: str) -> dict[str, Any]:
    return {
        "id": role_id,
        "type": "rbac_role",
        "display_name": role_id.removeprefix("rbac_role_"),
        "source": {"type": source},
        "created_at": t.ago(100),
        "updated_at": t.ago(100),
    }


GOOD_CLAUDE_CODE: Mapping[str, Any] = {
    "permissions": {
        "disableBypassPermissionsMode": "disable",
        "defaultMode": "default",
        "deny": ["Read(./.env)", "Read(./.env.*)", "Read(./secrets/**)"],
    },
    "allowManagedPermissionRulesOnly": True,
    "allowedMcpServers": [{"serverName": "github"}],
    "enableAllProjectMcpServers": False,
}
BAD_CLAUDE_CODE: Mapping[str, Any] = {
    "permissions": {"defaultMode": "bypassPermissions", "deny": ["Bash(rm -rf:*)"]},
    "enableAllProjectMcpServers": True,
}


def group_settings(
    t: _Clock, group_id: str, settings: Mapping[str, Any] | None, *, status: str = "active"
) -> dict[str, Any]:
    return {
        "type": "claude_code_rbac_group_managed_settings",
        "rbac_group_id": group_id,
        "rbac_group_status": {"type": status},
        "settings": settings,
        "created_at": t.ago(40),
        "updated_at": t.ago(4),
    }


def _inventory(
    now: datetime,
    lists: dict[str, list[dict[str, Any]]],
    singletons: dict[str, dict[str, Any]],
    last_used: dict[str, datetime],
) -> OrgInventory:
    return OrgInventory(
        fetched_at=now,
        organization_id=ORG_ID,
        lists={kind: tuple(items) for kind, items in lists.items()},
        singletons=singletons,
        key_last_used=last_used,
        usage_window_days=90,
    )


def clean(now: datetime | None = None) -> OrgInventory:
    """An organisation that passes every check (under :data:`MESSY_SETTINGS`)."""
    now = now or datetime.now(UTC)
    t = _Clock(now)
    lists: dict[str, list[dict[str, Any]]] = {
        "api_keys": [api_key(t, "apikey_ci", principal=sa_principal("svac_ci"))],
        "users": [
            user(t, "user_admin", "admin", "admin@example.com"),
            user(t, "user_dev", "developer", "dev@example.com"),
        ],
        "invites": [invite(t, "invite_done", "new@example.com", status="accepted")],
        "workspaces": [workspace(t, "wrkspc_prod", external_key_id="ekey_us")],
        "workspace_members": [member("wrkspc_prod", "user_admin", "workspace_admin")],
        "workspace_rate_limits": [rate_limit("wrkspc_prod")],
        "rate_limits": [],
        "spend_limits": [
            spend_limit(t, "spl_org", {"type": "organization"}, "1000000"),
            spend_limit(
                t, "spl_prod", {"type": "workspace", "workspace_id": "wrkspc_prod"}, "50000"
            ),
        ],
        "telemetry_destinations": [telemetry(t, "tdst_siem")],
        "webhooks": [webhook(t, "whep_ops")],
        "external_keys": [external_key(t, "ekey_us")],
        "rbac_roles": [
            rbac_role(t, "rbac_role_custom", "custom"),
            rbac_role(t, "rbac_role_builtin", "built_in"),
        ],
        "rbac_groups": [rbac_group(t, "rbac_group_eng", ["rbac_role_custom"])],
        "rbac_group_members": [rbac_member(t, "rbac_group_eng", "user_dev")],
        "service_accounts": [service_account(t, "svac_ci")],
        "service_account_workspaces": [sa_workspace("svac_ci", "wrkspc_prod", "workspace_user")],
        "federation_issuers": [issuer(t, "fdis_github")],
        "federation_rules": [
            rule(t, "fdrl_ci", "svac_ci", subject="repo:example/app:environment:production")
        ],
        "claude_code_group_settings_documents": [
            group_settings(t, "rbac_group_eng", GOOD_CLAUDE_CODE)
        ],
    }
    singletons: dict[str, dict[str, Any]] = {
        "organization": {"id": ORG_ID, "type": "organization", "name": "Clean Org"},
        "compliance_settings": {"type": "compliance_settings", "state": {"type": "enabled"}},
        "claude_code_managed_settings": _cc_config(["rbac_group_eng"]),
        "claude_code_default_settings": {
            "type": "claude_code_rbac_group_default_managed_settings",
            "settings": dict(GOOD_CLAUDE_CODE),
            "updated_at": t.ago(4),
        },
    }
    return _inventory(now, lists, singletons, {"apikey_ci": now - timedelta(hours=3)})


def _cc_config(order: list[str]) -> dict[str, Any]:
    return {
        "type": "claude_code_managed_settings_configuration",
        "mode": {"type": "rbac_groups"},
        "mode_updated_at": None,
        "rbac_group_order": order,
        "rbac_group_order_version": "v1",
    }


def messy(now: datetime | None = None) -> OrgInventory:
    """An organisation that fails every check (under :data:`MESSY_SETTINGS`, with
    :data:`MESSY_MARKINGS` and :data:`MESSY_FEDERATION`), except ORG-TEL-005: it has enabled
    telemetry destinations (the ones that leak content and fail); :func:`messy_no_telemetry`
    fails that one."""
    now = now or datetime.now(UTC)
    t = _Clock(now)
    workspace_scope = {"type": "workspace", "workspace_id": "wrkspc_prod"}
    keys = [
        api_key(t, "apikey_old", age=200, expires_in=None, principal=user_principal("user_admin")),
        api_key(t, "apikey_long_expiry", age=10, expires_in=400, principal=sa_principal("svac_ci")),
        api_key(t, "apikey_expiring", age=20, expires_in=3, principal=sa_principal("svac_ci")),
        api_key(
            t, "apikey_org_scope", scope={"type": "organization"}, principal=sa_principal("svac_ci")
        ),
        api_key(t, "apikey_no_principal", principal=None, scope=workspace_scope),
        api_key(t, "apikey_unused", age=100, principal=sa_principal("svac_ci")),
        api_key(
            t, "apikey_departed", principal=user_principal("user_gone"), created_by="user_gone"
        ),
        api_key(t, "apikey_dead_sa", principal=sa_principal("svac_archived")),
        api_key(
            t,
            "apikey_archived_ws",
            principal=sa_principal("svac_ci"),
            scope={"type": "workspace", "workspace_id": "wrkspc_old"},
        ),
        api_key(t, "apikey_managed_off", status="inactive", principal=sa_principal("svac_ci")),
        api_key(t, "apikey_orphan", principal=sa_principal("svac_ci")),
    ]
    recent = now - timedelta(hours=2)
    last_used = {k["id"]: recent for k in keys if k["id"] != "apikey_unused"}
    lists: dict[str, list[dict[str, Any]]] = {
        "api_keys": keys,
        "users": [
            user(t, "user_admin", "admin", "admin@example.com"),
            user(t, "user_owner", "owner", "owner@example.com"),
            user(t, "user_primary", "primary_owner", "primary@example.com"),
            user(t, "user_admin2", "admin", "ops@example.com"),
            user(t, "user_dev", "developer", "dev@example.com"),
            user(t, "user_dev2", "developer", "contractor@gmail.com"),
        ],
        "invites": [
            invite(t, "invite_stale", "late@example.com", sent=30),
            invite(t, "invite_admin", "boss@example.com", role="admin"),
            invite(t, "invite_outside", "friend@gmail.com"),
        ],
        "workspaces": [
            workspace(t, "wrkspc_prod", allowed="unrestricted", default="global"),
            workspace(t, "wrkspc_eu", allowed=("us", "global"), external_key_id="ekey_missing"),
            workspace(t, "wrkspc_cmk", external_key_id="ekey_eu"),
            workspace(t, "wrkspc_old", archived=True),
        ],
        "workspace_members": [
            member("wrkspc_prod", "user_gone", "workspace_developer"),
            *(
                member("wrkspc_prod", u, "workspace_admin")
                for u in ("user_admin", "user_owner", "user_admin2", "user_dev")
            ),
        ],
        "workspace_rate_limits": [rate_limit("wrkspc_prod"), rate_limit("wrkspc_cmk")],
        "rate_limits": [],
        "spend_limits": [
            spend_limit(t, "spl_org", {"type": "organization"}, "1000000", enabled=False),
            spend_limit(t, "spl_eu", {"type": "workspace", "workspace_id": "wrkspc_eu"}, "50000"),
            spend_limit(t, "spl_cmk", {"type": "workspace", "workspace_id": "wrkspc_cmk"}, "99999"),
        ],
        "telemetry_destinations": [
            telemetry(t, "tdst_content", content_mode="content"),
            telemetry(t, "tdst_failing", error_at=0.5, success_at=2),
            telemetry(t, "tdst_auto_off", enabled=False, reason="sustained_failure"),
            telemetry(t, "tdst_plain", enabled=False, url="http://otel.internal:4318"),
        ],
        "webhooks": [
            webhook(
                t, "whep_auto_off", state="disabled", reason="endpoint returned 500 for 3 days"
            ),
            webhook(t, "whep_off", state="disabled"),
        ],
        "external_keys": [
            external_key(t, "ekey_eu", geo="eu"),
            external_key(t, "ekey_spare", attached=False),
        ],
        "rbac_roles": [
            rbac_role(t, "rbac_role_custom", "custom"),
            rbac_role(t, "rbac_role_unused", "custom"),
        ],
        "rbac_groups": [
            rbac_group(t, "rbac_group_eng", ["rbac_role_custom"]),
            rbac_group(t, "rbac_group_empty", ["rbac_role_custom"]),
        ],
        "rbac_group_members": [rbac_member(t, "rbac_group_eng", "user_gone")],
        "service_accounts": [
            service_account(t, "svac_ci"),
            service_account(t, "svac_admin", "admin"),
            service_account(t, "svac_idle"),
            service_account(t, "svac_archived", archived=True),
        ],
        "service_account_workspaces": [sa_workspace("svac_ci", "wrkspc_prod", "workspace_admin")],
        "federation_issuers": [issuer(t, "fdis_github", check_jti=False, polling_off=True)],
        "federation_rules": [
            rule(t, "fdrl_all", "svac_ci", all_workspaces=True, lifetime=86400, subject="repo:*"),
            rule(t, "fdrl_admin", "svac_admin", scope="org:admin workspace:developer"),
            rule(t, "fdrl_dead", "svac_archived"),
        ],
        "claude_code_group_settings_documents": [
            group_settings(t, "rbac_group_eng", BAD_CLAUDE_CODE),
            group_settings(t, "rbac_group_deleted", GOOD_CLAUDE_CODE, status="deleted"),
        ],
    }
    singletons: dict[str, dict[str, Any]] = {
        "organization": {"id": ORG_ID, "type": "organization", "name": "Messy Org"},
        "compliance_settings": {"type": "compliance_settings", "state": {"type": "disabled"}},
        "claude_code_managed_settings": _cc_config(["rbac_group_eng", "rbac_group_deleted"]),
        "claude_code_default_settings": {
            "type": "claude_code_rbac_group_default_managed_settings",
            "settings": None,
            "updated_at": None,
        },
    }
    return _inventory(now, lists, singletons, last_used)


def messy_no_telemetry(now: datetime | None = None) -> OrgInventory:
    """:func:`messy` with every telemetry destination disabled (fails ORG-TEL-005)."""
    inventory = messy(now)
    t = _Clock(inventory.fetched_at)
    lists = dict(inventory.lists)
    lists["telemetry_destinations"] = (telemetry(t, "tdst_off", enabled=False),)
    return OrgInventory(
        fetched_at=inventory.fetched_at,
        organization_id=inventory.organization_id,
        lists=lists,
        singletons=inventory.singletons,
        key_last_used=inventory.key_last_used,
        usage_window_days=inventory.usage_window_days,
    )
