"""Seeded organisations: a messy one that fails a documented set of posture checks, a clean one
that passes them, and a large one for the inventory benchmark.

``claudesec emulator serve --org messy`` (or the ``emulator_org`` test fixture) loads them
through :func:`claudesec.emulator.orgs.seed_org`.
:data:`MESSY_DEFECTS` is the contract with the check catalogue: every ``defect_id`` names one
thing wrong in :func:`seed_messy` (and absent from :func:`seed_clean`), so ``org check`` on the
messy organisation must find exactly these, and a check that fires on the clean one is a false
positive. The seeders are deterministic in what they build (counts, roles, ages, settings);
object ids are fresh on every run, as the real API's are, so nothing may depend on them.
Times are relative to the emulator's clock.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from claudesec.emulator.federation import JwksConfig, RuleMatch
from claudesec.emulator.keys import Actor
from claudesec.emulator.state import EmulatorState, UsageRecord

OrgName = Literal["messy", "clean"]
ORG_NAMES: tuple[OrgName, ...] = ("messy", "clean")

# (defect_id, what is wrong in the messy organisation). Thresholds assumed by the seed: keys
# older than 90 days, unused for 30 days, more than 3 admins, invites pending over 14 days.
MESSY_DEFECTS: tuple[tuple[str, str], ...] = (
    ("key.organization_scoped", "an active API key with organization scope (not one workspace)"),
    ("key.no_expiry", "active API keys with no expires_at"),
    ("key.old", "an active API key created 400 days ago"),
    ("key.principal_less", "an active API key bound to no principal (no user, no service account)"),
    (
        "key.departed_user",
        "an active API key whose principal user is no longer a member of the organisation",
    ),
    ("key.unused", "active API keys the usage report has not seen in the last 30 days"),
    ("users.too_many_admins", "6 users hold the organisation admin role (more than 3)"),
    ("invites.stale", "an invite pending for 20 days and an expired invite never cleaned up"),
    ("workspace.no_spend_limit", "workspaces without a spend limit"),
    ("workspace.no_rate_limit", "workspaces with no rate limit of their own (only inherited)"),
    ("org.no_spend_limit", "no organisation-wide spend limit"),
    (
        "workspace.residency_unrestricted",
        "workspaces whose allowed_inference_geos is 'unrestricted'",
    ),
    ("workspace.no_cmk", "workspaces with no customer-managed key (external_key_id null)"),
    ("telemetry.content_mode", "a telemetry destination exporting prompt content (content_mode)"),
    (
        "telemetry.failing",
        "a telemetry destination disabled for sustained failure, with a recent delivery error",
    ),
    ("webhook.disabled", "a webhook endpoint in state disabled (disabled_reason set)"),
    ("compliance.api_off", "the compliance API is disabled"),
    ("cmk.failing", "a customer-managed key whose validate call answers failure"),
    ("service_account.admin_role", "a service account with organization_role admin"),
    ("service_account.no_rule", "a live service account no federation rule targets"),
    (
        "federation.rule_over_broad",
        "a federation rule matching subject prefix 'repo:*', on all workspaces, granting "
        "org:admin for 24 h",
    ),
    ("rbac.admin_group", "an RBAC group carrying the built-in Admin role"),
    ("rbac.empty_group", "an RBAC group with no members"),
    (
        "claude_code.bypass_allowed",
        "default Claude Code managed settings allow bypassPermissions mode "
        "(defaultMode bypassPermissions, disableBypassPermissionsMode unset)",
    ),
    (
        "claude_code.no_secret_deny",
        "default Claude Code managed settings have no deny rule for secret files "
        "(.env, *.pem, ~/.aws, ~/.ssh)",
    ),
    (
        "claude_code.mcp_unrestricted",
        "default Claude Code managed settings allow every MCP server "
        "(enableAllProjectMcpServers true, no allowedMcpServers)",
    ),
)
DEFECT_IDS: frozenset[str] = frozenset(defect for defect, _ in MESSY_DEFECTS)

_MODEL = "claude-sonnet-4-6"
# Every workspace of the clean organisation has this monthly spend limit: judged with
# `org.workspace_spend_limit` set to it, ORG-LIM-004 (drift from the config) passes there.
CLEAN_SPEND_LIMIT = "100000"  # cents: $1,000 a month
_SECRET_DENY = (
    "Read(./.env)",
    "Read(./.env.*)",
    "Read(./**/*.pem)",
    "Read(~/.aws/**)",
    "Read(~/.ssh/**)",
)


@dataclass(frozen=True)
class SeededOrg:
    """What a seeder built, for tests and drills to aim at (ids are fresh every run)."""

    name: str
    workspace_ids: tuple[str, ...]
    user_ids: tuple[str, ...]
    key_ids: tuple[str, ...]
    defects: tuple[str, ...] = ()
    notes: Mapping[str, Any] = field(default_factory=dict)
    # key id -> secret of the API keys it built, for a test or drill that manages them in
    # claudesec's key store (emulator fakes, made at run time; never printed).
    key_secrets: Mapping[str, str] = field(default_factory=dict, repr=False)


def record_use(state: EmulatorState, key_id: str, workspace_id: str, at: datetime) -> None:
    state.extend_usage(
        [
            UsageRecord(
                at=at,
                key_id=key_id,
                workspace_id=workspace_id,
                model=_MODEL,
                input_tokens=1200,
                output_tokens=300,
            )
        ]
    )


def seed_messy(state: EmulatorState) -> SeededOrg:
    """An organisation with every defect of :data:`MESSY_DEFECTS`, each at least once."""
    now = state.now()
    org, fed = state.org, state.federation
    people = [
        org.add_user(f"admin{i}@messy.example", role="admin", added_at=now - timedelta(days=300))
        for i in range(6)
    ]
    people += [
        org.add_user(f"dev{i}@messy.example", role="developer", added_at=now - timedelta(days=200))
        for i in range(4)
    ]
    departed = "user_01DepartedXXXXXXXXXXXXXX"  # removed from the org; their key remains
    org.add_invite(
        "stale@messy.example",
        role="developer",
        invited_at=now - timedelta(days=20),
        expires_at=now + timedelta(days=1),
    )
    org.add_invite(
        "expired@messy.example",
        role="admin",
        invited_at=now - timedelta(days=60),
        expires_at=now - timedelta(days=39),
    )
    workspaces = [fed.create_workspace(n) for n in ("prod", "staging", "research")]
    ws_ids = [w.id for w in workspaces]
    for ws in ws_ids:
        for person in people[:3]:
            org.add_member(ws, person["id"], "workspace_admin")
    # Only staging has a spend limit and a rate limit of its own; no organisation limit.
    org.set_spend_limit({"type": "workspace", "workspace_id": ws_ids[1]}, "50000")
    org.add_workspace_rate_limit(ws_ids[1], {"requests_per_minute": 100})

    admin_user = people[0]["id"]
    old = now - timedelta(days=400)
    keys = [
        state.add_key(
            name="legacy-org-wide",
            scope="organization",
            user_id=admin_user,
            created_at=old,
            created_by=Actor(admin_user),
        ),
        state.add_key(
            name="shared-laptop", workspace_id=ws_ids[0], created_at=now - timedelta(days=120)
        ),
        state.add_key(
            name="contractor-ci",
            workspace_id=ws_ids[0],
            user_id=departed,
            created_by=Actor(departed),
            created_at=now - timedelta(days=200),
        ),
        state.add_key(
            name="research-notebook",
            workspace_id=ws_ids[2],
            user_id=people[6]["id"],
            created_at=now - timedelta(days=45),
        ),
    ]
    # Only the research notebook was used lately; the others are idle.
    record_use(state, keys[3].id, ws_ids[2], now - timedelta(days=2))

    org.add_telemetry_destination(
        "https://otel.messy.example/v1/traces",
        display_name="vendor-apm",
        content_mode="content",
        last_success_at=now - timedelta(hours=1),
    )
    org.add_telemetry_destination(
        "https://siem.messy.example/ingest",
        display_name="old-siem",
        disabled_reason="sustained_failure",
        last_error="connection refused",
        last_error_at=now - timedelta(hours=3),
        last_success_at=now - timedelta(days=9),
    )
    org.add_webhook(
        "https://hooks.messy.example/anthropic",
        name="cmk-alerts",
        state="disabled",
        disabled_reason="endpoint returned 410 Gone",
    )
    org.set_compliance(enabled=False)
    org.add_external_key(
        "arn:aws:kms:us-east-1:111122223333:key/messy-cmk",
        display_name="prod-cmk",
        validation_error="AccessDeniedException: the key policy does not allow Anthropic",
    )

    broad = fed.create_service_account(
        "deploy-bot", organization_role="admin", description="does everything"
    )
    fed.create_service_account("old-etl", organization_role="developer")
    issuer = fed.create_issuer(
        name="ci-issuer",
        issuer_url="https://ci.messy.example",
        jwks=JwksConfig("discovery"),
    )
    fed.create_rule(
        name="any-repo",
        issuer_id=issuer.id,
        match=RuleMatch(subject_prefix="repo:*"),
        oauth_scope="org:admin",
        service_account_id=broad.id,
        token_lifetime_seconds=86_400,
        applies_to_all_workspaces=True,
        console=True,
    )

    admins = org.add_rbac_group("platform-admins", role_ids=[org.role_id("Admin")])
    for person in people[:5]:
        org.add_group_member(admins["id"], person)
    org.add_rbac_group("old-project", role_ids=[org.role_id("Developer")])

    loose = {
        "permissions": {"allow": ["Bash(*)"], "deny": [], "defaultMode": "bypassPermissions"},
        "enableAllProjectMcpServers": True,
    }
    org.set_claude_code_default(loose)
    # Groups mode, so the documents are readable through the Admin API (in organisation
    # mode they live in claude.ai and no check could see the defects).
    org.set_claude_code_group(admins["id"], loose)
    return SeededOrg(
        name="messy",
        workspace_ids=tuple(ws_ids),
        user_ids=tuple(p["id"] for p in people),
        key_ids=tuple(k.id for k in keys),
        defects=tuple(defect for defect, _ in MESSY_DEFECTS),
        notes={"departed_user_id": departed},
    )


def seed_clean(state: EmulatorState) -> SeededOrg:
    """The same organisation done right: none of :data:`MESSY_DEFECTS` applies."""
    now = state.now()
    org, fed = state.org, state.federation
    people = [
        org.add_user(f"admin{i}@clean.example", role="admin", added_at=now - timedelta(days=300))
        for i in range(2)
    ]
    people += [
        org.add_user(f"dev{i}@clean.example", role="developer", added_at=now - timedelta(days=200))
        for i in range(4)
    ]
    org.add_invite(
        "new-hire@clean.example",
        role="developer",
        invited_at=now - timedelta(days=2),
        expires_at=now + timedelta(days=19),
    )
    cmk = org.add_external_key(
        "arn:aws:kms:us-east-1:111122223333:key/clean-cmk", display_name="prod-cmk"
    )
    residency = {
        "workspace_geo": "us",
        "allowed_inference_geos": ["us"],
        "default_inference_geo": "us",
    }
    ws_ids = []
    for ws_name in ("prod", "staging"):
        workspace = fed.create_workspace(ws_name)
        fed.configure_workspace(workspace.id, data_residency=residency, external_key_id=cmk["id"])
        ws_ids.append(workspace.id)
        org.set_spend_limit({"type": "workspace", "workspace_id": workspace.id}, CLEAN_SPEND_LIMIT)
        org.add_workspace_rate_limit(workspace.id, {"requests_per_minute": 200})
        org.add_member(workspace.id, people[0]["id"], "workspace_admin")
        for person in people[2:]:
            org.add_member(workspace.id, person["id"], "workspace_developer")
    # The default workspace is configured too, so every workspace the inventory lists passes.
    default_ws = state.default_workspace_id
    fed.configure_workspace(default_ws, data_residency=residency, external_key_id=cmk["id"])
    org.set_spend_limit({"type": "workspace", "workspace_id": default_ws}, CLEAN_SPEND_LIMIT)
    org.add_workspace_rate_limit(default_ws, {"requests_per_minute": 50})
    org.set_spend_limit({"type": "organization"}, "500000")

    keys = []
    for i, person in enumerate(people[2:]):
        ws = ws_ids[i % len(ws_ids)]
        key = state.add_key(
            name=f"{person['name']}-dev",
            workspace_id=ws,
            user_id=person["id"],
            created_by=Actor(person["id"]),
            created_at=now - timedelta(days=20),
            expires_at=now + timedelta(days=70),
        )
        record_use(state, key.id, ws, now - timedelta(days=1))
        keys.append(key)

    telemetry = org.add_telemetry_destination(
        "https://otel.clean.example/v1/traces",
        display_name="apm",
        content_mode="metadata_only",
        last_success_at=now - timedelta(minutes=5),
    )
    webhook = org.add_webhook("https://hooks.clean.example/anthropic", name="cmk-alerts")
    org.set_compliance(enabled=True, access_transparency=True)

    account = fed.create_service_account("ci-inference", organization_role="developer")
    fed.add_membership(account.id, ws_ids[0], "workspace_user")
    issuer = fed.create_issuer(
        name="ci-issuer", issuer_url="https://ci.clean.example", jwks=JwksConfig("discovery")
    )
    rule = fed.create_rule(
        name="deploy-main",
        issuer_id=issuer.id,
        match=RuleMatch(
            subject_prefix="repo:clean/app:ref:refs/heads/main", claims={"environment": "prod"}
        ),
        oauth_scope="workspace:inference",
        service_account_id=account.id,
        token_lifetime_seconds=900,
        workspace_id=ws_ids[0],
    )

    developers = org.add_rbac_group("developers", role_ids=[org.role_id("Developer")])
    for person in people[2:]:
        org.add_group_member(developers["id"], person)
    org.set_claude_code_default(safe_claude_code_settings())
    org.set_claude_code_group(developers["id"], safe_claude_code_settings())
    return SeededOrg(
        name="clean",
        workspace_ids=(default_ws, *ws_ids),
        user_ids=tuple(p["id"] for p in people),
        key_ids=tuple(k.id for k in keys),
        notes={
            "residency": residency,
            "cmk_id": cmk["id"],
            "issuer_id": issuer.id,
            "service_account_id": account.id,
            "rule_id": rule.id,
            "group_id": developers["id"],
            "webhook_id": webhook["id"],
            "telemetry_id": telemetry["id"],
        },
        key_secrets={k.id: k.secret for k in keys},
    )


def safe_claude_code_settings() -> dict[str, Any]:
    return {
        "permissions": {
            "allow": ["Bash(npm run test:*)"],
            "deny": list(_SECRET_DENY),
            "defaultMode": "default",
            "disableBypassPermissionsMode": "disable",
        },
        "allowManagedPermissionRulesOnly": True,
        "enableAllProjectMcpServers": False,
        "allowedMcpServers": [{"serverName": "github"}],
    }


def seed_large(
    state: EmulatorState,
    *,
    keys: int = 10_000,
    workspaces: int = 500,
    users: int = 2_000,
    used_fraction: float = 0.6,
    seed: int = 18,
) -> SeededOrg:
    """A large organisation for the inventory benchmark: ``keys`` keys spread over
    ``workspaces`` workspaces and bound to ``users`` users, each workspace with a few members,
    half of them with rate and spend limits, and usage for ``used_fraction`` of the keys."""
    rng = random.Random(seed)
    now = state.now()
    org, fed = state.org, state.federation
    people = [
        org.add_user(
            f"user{i}@large.example",
            role="admin" if i < 8 else rng.choice(("developer", "user", "claude_code_user")),
            added_at=now - timedelta(days=rng.randint(1, 900)),
        )
        for i in range(users)
    ]
    ws_ids = [fed.create_workspace(f"ws-{i:04d}").id for i in range(workspaces)]
    for index, ws in enumerate(ws_ids):
        for person in rng.sample(people, k=min(5, len(people))):
            org.add_member(ws, person["id"], rng.choice(("workspace_developer", "workspace_user")))
        if index % 2 == 0:
            org.add_workspace_rate_limit(ws, {"requests_per_minute": 100})
            org.set_spend_limit({"type": "workspace", "workspace_id": ws}, "25000")
    key_ids = []
    usage: list[UsageRecord] = []
    for i in range(keys):
        ws = ws_ids[i % len(ws_ids)] if ws_ids else state.default_workspace_id
        owner = people[i % len(people)]["id"] if people else None
        age = rng.randint(1, 700)
        key = state.add_key(
            name=f"key-{i:05d}",
            workspace_id=ws,
            user_id=owner,
            created_at=now - timedelta(days=age),
            expires_at=now + timedelta(days=rng.randint(1, 365)) if rng.random() < 0.5 else None,
        )
        key_ids.append(key.id)
        if rng.random() < used_fraction:
            usage.append(
                UsageRecord(
                    at=now - timedelta(days=rng.randint(0, 29), hours=rng.randint(0, 23)),
                    key_id=key.id,
                    workspace_id=ws,
                    model=_MODEL,
                    input_tokens=rng.randint(100, 5000),
                    output_tokens=rng.randint(10, 2000),
                )
            )
    state.extend_usage(usage)
    for i in range(20):
        group = org.add_rbac_group(f"group-{i:02d}", role_ids=[org.role_id("Developer")])
        for person in rng.sample(people, k=min(25, len(people))):
            org.add_group_member(group["id"], person)
    return SeededOrg(
        name="large",
        workspace_ids=tuple(ws_ids),
        user_ids=tuple(p["id"] for p in people),
        key_ids=tuple(key_ids),
    )


# The `[org]` settings the seeded organisations are judged with (docs/org-check.md): the
# thresholds MESSY_DEFECTS assumes, the seeds' own e-mail domains, a US inference region and
# customer-managed keys required, no spend amount imposed.
ORG_CHECK_SETTINGS: dict[str, Any] = {
    "key_max_age_days": 90,
    "key_unused_days": 30,
    "max_admins": 3,
    "max_developers": 10,
    "invite_max_pending_days": 14,
    "allowed_email_domains": ("clean.example", "messy.example"),
    "required_inference_geos": ("us",),
    "require_cmk": True,
    "require_compliance_api": True,
}

# What `org check` finds on the messy organisation with ORG_CHECK_SETTINGS, read over HTTP:
# exactly these checks fail (tests/org/test_emulator_orgs.py), and none on the clean one.
# The four checks not here need claudesec's own key store or a spend amount in the config.
MESSY_FAILING_CHECKS: tuple[str, ...] = (
    "ORG-CC-001",
    "ORG-CC-002",
    "ORG-CC-003",
    "ORG-CC-004",
    "ORG-CMK-001",
    "ORG-CMK-005",
    "ORG-CMP-001",
    "ORG-FED-001",
    "ORG-FED-002",
    "ORG-FED-003",
    "ORG-FED-004",
    "ORG-GEO-001",
    "ORG-GEO-003",
    "ORG-INV-001",
    "ORG-KEY-001",
    "ORG-KEY-002",
    "ORG-KEY-005",
    "ORG-KEY-006",
    "ORG-KEY-007",
    "ORG-KEY-008",
    "ORG-KEY-009",
    "ORG-LIM-001",
    "ORG-LIM-002",
    "ORG-LIM-003",
    "ORG-RBAC-001",
    "ORG-SVC-001",
    "ORG-SVC-002",
    "ORG-TEL-001",
    "ORG-TEL-003",
    "ORG-USR-001",
    "ORG-WHK-001",
)
