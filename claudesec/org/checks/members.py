"""People: organisation roles, invites, email domains, workspace members and RBAC groups."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

from claudesec.org.model import OrgInventory
from claudesec.org.rules import (
    Check,
    CheckContext,
    Hit,
    NotApplicable,
    Severity,
    label,
    make_check,
    when,
)

ADMIN_ROLES = frozenset({"admin", "owner", "primary_owner"})
_USERS_API = (
    'POST /v1/organizations/users/{user_id} {"role": "user"} (client.organization.users.update).'
)
_INVITE_API = "DELETE /v1/organizations/invites/{invite_id} (client.organization.invites.delete)."


def _admins(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    admins = [u for u in inv.items("users") if u.get("role") in ADMIN_ROLES]
    limit = ctx.config.max_admins
    if len(admins) > limit:
        names = ", ".join(label(u) for u in admins[:10])
        yield Hit("organization", f"{len(admins)} admins (limit {limit}): {names}")


def _developers(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    developers = [u for u in inv.items("users") if u.get("role") == "developer"]
    limit = ctx.config.max_developers
    if len(developers) > limit:
        yield Hit(
            "organization", f"{len(developers)} users hold the developer role (limit {limit})"
        )


def _domain(email: Any) -> str:
    return str(email).rpartition("@")[2].lower()


def _allowed(ctx: CheckContext) -> frozenset[str]:
    if not ctx.config.allowed_email_domains:
        raise NotApplicable("org.allowed_email_domains is empty (no domain requirement)")
    return frozenset(d.lower() for d in ctx.config.allowed_email_domains)


def _foreign_users(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    allowed = _allowed(ctx)
    for user in inv.items("users"):
        if _domain(user.get("email")) not in allowed:
            yield Hit(str(user.get("id")), f"user {label(user)} is outside the allowed domains")


def pending(inv: OrgInventory) -> Iterator[Mapping[str, Any]]:
    return (i for i in inv.items("invites") if i.get("status") == "pending")


def stale_invites(inv: OrgInventory, ctx: CheckContext) -> list[Mapping[str, Any]]:
    """Pending invites sent more than ``invite_max_pending_days`` ago (``--fix`` deletes them)."""
    limit = timedelta(days=ctx.config.invite_max_pending_days)
    stale = []
    for invite in pending(inv):
        sent = when(invite.get("invited_at"))
        if sent is not None and ctx.now - sent > limit:
            stale.append(invite)
    return stale


def _stale(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    for invite in stale_invites(inv, ctx):
        sent = when(invite.get("invited_at"))
        days = (ctx.now - sent).days if sent else 0
        yield Hit(str(invite["id"]), f"invite {label(invite)} pending for {days} days")


def _admin_invite(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    for invite in pending(inv):
        if invite.get("role") in ADMIN_ROLES:
            yield Hit(str(invite["id"]), f"pending invite {label(invite)} grants {invite['role']}")


def _foreign_invite(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    allowed = _allowed(ctx)
    for invite in pending(inv):
        if _domain(invite.get("email")) not in allowed:
            yield Hit(
                str(invite["id"]), f"pending invite {label(invite)} is outside the allowed domains"
            )


def _departed_members(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    users = {str(u.get("id")) for u in inv.items("users")}
    for member in inv.items("workspace_members"):
        if str(member.get("user_id")) not in users:
            yield Hit(
                f"{member.get('workspace_id')}/{member.get('user_id')}",
                f"{member.get('user_id')} is still {member.get('workspace_role')} of workspace "
                f"{member.get('workspace_id')} but left the organisation",
            )


def _workspace_admins(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    per_workspace: dict[str, int] = {}
    for member in inv.items("workspace_members"):
        if member.get("workspace_role") == "workspace_admin":
            ws = str(member.get("workspace_id"))
            per_workspace[ws] = per_workspace.get(ws, 0) + 1
    for ws, count in sorted(per_workspace.items()):
        if count > ctx.config.max_admins:
            yield Hit(
                ws, f"workspace {ws} has {count} workspace admins (limit {ctx.config.max_admins})"
            )


def _empty_groups(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    with_members = {str(m.get("rbac_group_id")) for m in inv.items("rbac_group_members")}
    for group in inv.items("rbac_groups"):
        if str(group.get("id")) not in with_members and group.get("role_ids"):
            yield Hit(
                str(group["id"]), f"RBAC group {label(group)} grants roles but has no members"
            )


def _departed_group_members(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    users = {str(u.get("id")) for u in inv.items("users")}
    for member in inv.items("rbac_group_members"):
        if str(member.get("user_id")) not in users:
            yield Hit(
                f"{member.get('rbac_group_id')}/{member.get('user_id')}",
                f"{member.get('email') or member.get('user_id')} is in RBAC group "
                f"{member.get('rbac_group_id')} but left the organisation",
            )


def _unused_roles(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    attached = {str(r) for g in inv.items("rbac_groups") for r in (g.get("role_ids") or ())}
    if any(g.get("role_ids") is None for g in inv.items("rbac_groups")):
        raise NotApplicable("role data of some RBAC group was temporarily unavailable")
    for role in inv.items("rbac_roles"):
        if (role.get("source") or {}).get("type") == "custom" and str(
            role.get("id")
        ) not in attached:
            yield Hit(str(role["id"]), f"custom RBAC role {label(role)} is attached to no group")


_c = make_check


CHECKS: tuple[Check, ...] = (
    _c(
        "ORG-USR-001",
        "More organisation admins than allowed",
        Severity.HIGH,
        _admins,
        ("users",),
        "Every admin can create keys, invite people and change every setting: keep the few who "
        "need it.",
        "Settings > Members: change the role of admins who do not need it.",
        _USERS_API,
        ("CC6.2", "CC6.3"),
        ("A.8.2", "A.5.15"),
        ("5.4", "6.8"),
        "members",
        ("max_admins",),
    ),
    _c(
        "ORG-USR-002",
        "More developers than allowed",
        Severity.MEDIUM,
        _developers,
        ("users",),
        "The developer role creates API keys: each holder is a key issuer.",
        "Settings > Members: move users who only call Claude to the user role.",
        _USERS_API,
        ("CC6.3",),
        ("A.5.15", "A.5.18"),
        ("6.8",),
        "members",
        ("max_developers",),
    ),
    _c(
        "ORG-USR-003",
        "Member outside the allowed email domains",
        Severity.MEDIUM,
        _foreign_users,
        ("users",),
        "An account on a personal or partner domain escapes your identity provider's "
        "joiner/leaver process.",
        "Settings > Members: remove the member or re-invite them on the corporate domain.",
        "DELETE /v1/organizations/users/{user_id} (client.organization.users.delete).",
        ("CC6.2",),
        ("A.5.16", "A.5.18"),
        ("5.1", "6.1"),
        "members",
        ("allowed_email_domains",),
    ),
    _c(
        "ORG-INV-001",
        "Stale pending invite",
        Severity.LOW,
        _stale,
        ("invites",),
        "An invite nobody accepted can still be accepted by whoever reads that mailbox later.",
        "Settings > Members > Invites: revoke it (`org check --fix` deletes it).",
        _INVITE_API,
        ("CC6.2",),
        ("A.5.18",),
        ("6.1", "6.2"),
        "members",
        ("invite_max_pending_days",),
        True,
    ),
    _c(
        "ORG-INV-002",
        "Pending invite grants an admin role",
        Severity.MEDIUM,
        _admin_invite,
        ("invites",),
        "Admin access should be granted to a known member, not to a mailbox.",
        "Settings > Members > Invites: revoke it and invite with the user role; promote later.",
        _INVITE_API,
        ("CC6.2", "CC6.3"),
        ("A.8.2",),
        ("5.4",),
        "members",
    ),
    _c(
        "ORG-INV-003",
        "Pending invite outside the allowed email domains",
        Severity.MEDIUM,
        _foreign_invite,
        ("invites",),
        "An invite to an outside address grants access that "
        "your identity provider will never revoke.",
        "Settings > Members > Invites: revoke it.",
        _INVITE_API,
        ("CC6.2",),
        ("A.5.16",),
        ("6.1",),
        "members",
        ("allowed_email_domains",),
    ),
    _c(
        "ORG-WSM-001",
        "Workspace member who left the organisation",
        Severity.MEDIUM,
        _departed_members,
        ("workspace_members", "users"),
        "A membership left behind is access nobody reviews.",
        "Workspaces > (workspace) > Members: remove the member.",
        "DELETE /v1/organizations/workspaces/{workspace_id}/members/{user_id}.",
        ("CC6.2",),
        ("A.5.18",),
        ("6.2",),
        "members",
    ),
    _c(
        "ORG-WSM-002",
        "More workspace admins than allowed",
        Severity.MEDIUM,
        _workspace_admins,
        ("workspace_members",),
        "A workspace admin manages its keys and members.",
        "Workspaces > (workspace) > Members: lower the role of admins who do not need it.",
        "POST /v1/organizations/workspaces/{workspace_id}/members/{user_id} "
        '{"workspace_role": "workspace_developer"}.',
        ("CC6.3",),
        ("A.8.2",),
        ("5.4",),
        "members",
        ("max_admins",),
    ),
    _c(
        "ORG-RBAC-001",
        "RBAC group with roles and no members",
        Severity.LOW,
        _empty_groups,
        ("rbac_groups", "rbac_group_members"),
        "An empty group that grants roles is a ready-made "
        "escalation: adding one member grants everything.",
        "Settings > Groups: delete the group or detach its roles.",
        "DELETE /v1/organizations/rbac_groups/{rbac_group_id}.",
        ("CC6.3",),
        ("A.5.15", "A.5.18"),
        ("6.8",),
        "rbac",
    ),
    _c(
        "ORG-RBAC-002",
        "RBAC group member who left the organisation",
        Severity.MEDIUM,
        _departed_group_members,
        ("rbac_group_members", "users"),
        "Group membership outliving "
        "the member is access nobody reviews (SCIM should have removed it).",
        "Settings > Groups > (group): remove the member; check SCIM deprovisioning.",
        "DELETE /v1/organizations/rbac_groups/{rbac_group_id}/members/{user_id}.",
        ("CC6.2",),
        ("A.5.18", "A.6.5"),
        ("6.2",),
        "rbac",
    ),
    _c(
        "ORG-RBAC-003",
        "Custom RBAC role attached to no group",
        Severity.LOW,
        _unused_roles,
        ("rbac_roles", "rbac_groups"),
        "An unused custom role is configuration nobody reviews.",
        "Settings > Roles: delete the custom role.",
        "GET /v1/organizations/rbac_roles; delete "
        "it in the Console (roles are read-only in the API).",
        ("CC6.3",),
        ("A.5.15",),
        ("6.8",),
        "rbac",
    ),
)
