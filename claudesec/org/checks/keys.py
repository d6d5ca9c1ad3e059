"""API key checks: age, expiry, scope, principal, use, owners, claudesec management, drift.

Only keys with ``status == "active"`` are judged: an inactive, archived or expired key cannot
authenticate, so it carries none of these risks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

from claudesec.org.model import OrgInventory
from claudesec.org.rules import Check, CheckContext, Hit, NotApplicable, Severity, get, label, when

_SOC2 = ("CC6.1", "CC6.2")
_ISO = ("A.5.17", "A.8.5")
_CONSOLE_KEYS = "Settings > API keys: open the key,"
_API_STATUS = (
    'POST /v1/organizations/api_keys/{api_key_id} with {"status": "inactive"} '
    "(client.organization.api_keys.update(id, status='inactive'))."
)


def active_keys(inv: OrgInventory) -> Iterator[Mapping[str, Any]]:
    return (k for k in inv.items("api_keys") if k.get("status") == "active")


def _user_ids(inv: OrgInventory) -> set[str]:
    return {str(u.get("id")) for u in inv.items("users")}


def _old(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    limit = ctx.config.key_max_age_days
    for key in active_keys(inv):
        created = when(key.get("created_at"))
        if created is not None and ctx.now - created > timedelta(days=limit):
            days = (ctx.now - created).days
            yield Hit(key["id"], f"key {label(key)} is {days} days old (limit {limit})")


def _never_expires(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    for key in active_keys(inv):
        if key.get("expires_at") is None:
            yield Hit(key["id"], f"key {label(key)} never expires")


def _long_expiry(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    limit = ctx.config.key_max_age_days
    for key in active_keys(inv):
        created, expires = when(key.get("created_at")), when(key.get("expires_at"))
        if created and expires and expires - created > timedelta(days=limit):
            days = (expires - created).days
            yield Hit(
                key["id"], f"key {label(key)} lives {days} days before expiry (limit {limit})"
            )


def _expiring(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    soon = timedelta(days=ctx.config.key_expiring_days)
    for key in active_keys(inv):
        expires = when(key.get("expires_at"))
        if expires is not None and ctx.now <= expires <= ctx.now + soon:
            yield Hit(key["id"], f"key {label(key)} expires on {expires.date()}: rotate it first")


def _org_scoped(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    for key in active_keys(inv):
        if get(key, "scope", "type") == "organization":
            yield Hit(key["id"], f"key {label(key)} has organisation scope (no workspace)")


def _no_principal(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    for key in active_keys(inv):
        if key.get("principal") is None:
            yield Hit(key["id"], f"key {label(key)} is bound to no user or service account")


def unused_keys(inv: OrgInventory, ctx: CheckContext) -> list[tuple[Mapping[str, Any], str]]:
    """Active keys not seen in use for ``key_unused_days`` (and created before that), with
    the reason; raises NotApplicable when usage cannot prove it (``--fix`` relies on this)."""
    days = ctx.config.key_unused_days
    if inv.key_last_used is None:
        raise NotApplicable("key usage could not be read (the usage report was unavailable)")
    if inv.usage_window_days < days:
        raise NotApplicable(
            f"usage covers {inv.usage_window_days} days, fewer than org.key_unused_days ({days})"
        )
    cutoff = ctx.now - timedelta(days=days)
    found: list[tuple[Mapping[str, Any], str]] = []
    for key in active_keys(inv):
        created = when(key.get("created_at"))
        if created is None or created > cutoff:
            continue  # too young to have proved anything
        last = inv.key_last_used.get(str(key["id"]))
        if last is None:
            found.append((key, f"key {label(key)} not used in the last {days} days"))
        elif last < cutoff:
            found.append((key, f"key {label(key)} last used {last.date()} (over {days} days ago)"))
    return found


def _unused(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    for key, message in unused_keys(inv, ctx):
        yield Hit(key["id"], message)


def _departed_principal(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    users = _user_ids(inv)
    for key in active_keys(inv):
        user = get(key, "principal", "user_id")
        if get(key, "principal", "type") == "user_actor" and str(user) not in users:
            yield Hit(key["id"], f"key {label(key)} acts as {user}, who left the organisation")


def _departed_creator(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    users = _user_ids(inv)
    for key in active_keys(inv):
        creator = str(get(key, "created_by", "id"))
        if get(key, "created_by", "type") == "user" and creator not in users:
            yield Hit(key["id"], f"key {label(key)} was created by {creator}, who left")


def _dead_service_account(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    accounts = {str(a.get("id")): a for a in inv.items("service_accounts")}
    for key in active_keys(inv):
        if get(key, "principal", "type") != "service_account_actor":
            continue
        sa_id = str(get(key, "principal", "service_account_id"))
        account = accounts.get(sa_id)
        if account is None or account.get("archived_at"):
            state = "unknown" if account is None else "archived"
            yield Hit(key["id"], f"key {label(key)} acts as {state} service account {sa_id}")


def _archived_workspace(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    archived = {str(w.get("id")) for w in inv.items("workspaces") if w.get("archived_at")}
    for key in active_keys(inv):
        workspace = get(key, "scope", "workspace_id")
        if workspace in archived:
            yield Hit(key["id"], f"key {label(key)} belongs to archived workspace {workspace}")


def _markings(ctx: CheckContext) -> Mapping[str, str]:
    if ctx.key_markings is None:
        raise NotApplicable(
            "claudesec's key store was not read (run `org check --keys` where the store is "
            "reachable)"
        )
    return ctx.key_markings


def _unmanaged(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    markings = _markings(ctx)
    for key in active_keys(inv):
        if markings.get(str(key["id"]), "unmanaged") == "unmanaged":
            yield Hit(key["id"], f"key {label(key)} is active but not managed by claudesec")


def _managed_not_active(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    markings = _markings(ctx)
    for key in inv.items("api_keys"):
        if markings.get(str(key["id"])) == "managed" and key.get("status") != "active":
            yield Hit(
                key["id"],
                f"key {label(key)} is a current managed key but Anthropic says "
                f"{key.get('status')}: its consumers are failing",
            )


def _orphaned(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    markings = _markings(ctx)
    for key in active_keys(inv):
        if markings.get(str(key["id"])) == "orphaned":
            yield Hit(key["id"], f"key {label(key)} was rotated out but is still active")


def _key(
    id_: str,
    title: str,
    severity: Severity,
    fn: Any,
    rationale: str,
    console: str,
    *,
    needs: tuple[str, ...] = ("api_keys",),
    api: str = _API_STATUS,
    soc2: tuple[str, ...] = _SOC2,
    iso: tuple[str, ...] = _ISO,
    cis: tuple[str, ...] = ("6.2",),
    settings: tuple[str, ...] = (),
    fixable: bool = False,
    area: str = "keys",
) -> Check:
    return Check(
        id_,
        title,
        severity,
        area,
        needs,
        rationale,
        console,
        api,
        soc2,
        iso,
        cis,
        fn,
        settings,
        fixable,
    )


CHECKS: tuple[Check, ...] = (
    _key(
        "ORG-KEY-001",
        "API key older than the maximum age",
        Severity.HIGH,
        _old,
        "A long-lived key has had more time to leak, and a leak is harder to date.",
        f"{_CONSOLE_KEYS} create a replacement, move consumers (or `claudesec keys rotate`), "
        "then disable the old key.",
        settings=("key_max_age_days",),
        cis=("5.2", "6.2"),
    ),
    _key(
        "ORG-KEY-002",
        "API key never expires",
        Severity.MEDIUM,
        _never_expires,
        "A key without an expiry stays valid forever if it is forgotten or leaked.",
        "Settings > API keys: create keys with an expiry date; replace keys that have none.",
        api="Keys cannot be created through the API: create a replacement with an expiry in the "
        "Console, then deactivate this key (POST /v1/organizations/api_keys/{api_key_id}).",
        cis=("5.2",),
    ),
    _key(
        "ORG-KEY-003",
        "API key expiry beyond the maximum age",
        Severity.LOW,
        _long_expiry,
        "An expiry further away than the rotation period does not bound the key's life.",
        "Settings > API keys: create the replacement with an expiry within org.key_max_age_days.",
        api="Create in the Console; deactivate the old key with POST "
        '/v1/organizations/api_keys/{api_key_id} {"status": "inactive"}.',
        settings=("key_max_age_days",),
        cis=("5.2",),
    ),
    _key(
        "ORG-KEY-004",
        "API key expires soon",
        Severity.LOW,
        _expiring,
        "A key that expires before it is rotated cuts off its workload without warning.",
        f"{_CONSOLE_KEYS} note its consumers, and rotate it (`claudesec keys rotate`) before it "
        "expires.",
        api="Read expires_at with GET /v1/organizations/api_keys/{api_key_id}.",
        settings=("key_expiring_days",),
        soc2=("CC7.2",),
        iso=("A.8.16",),
        cis=("6.2",),
    ),
    _key(
        "ORG-KEY-005",
        "API key scoped to the whole organisation",
        Severity.HIGH,
        _org_scoped,
        "An organisation-scoped key reaches every workspace: a leak is not contained.",
        "Settings > API keys: create a workspace-scoped replacement in the workspace that needs "
        "it, move consumers, disable this key.",
        soc2=("CC6.1", "CC6.3"),
        iso=("A.5.15", "A.8.3"),
        cis=("6.8", "3.3"),
    ),
    _key(
        "ORG-KEY-006",
        "API key bound to no principal",
        Severity.MEDIUM,
        _no_principal,
        "A key bound to no user or service account cannot be attributed or revoked with its owner.",
        "Settings > API keys: replace it with a key created for a service account "
        "(Settings > Service accounts) or a named user.",
        iso=("A.5.16", "A.8.5"),
        cis=("5.1", "6.1"),
    ),
    _key(
        "ORG-KEY-007",
        "API key unused for N days",
        Severity.MEDIUM,
        _unused,
        "A dormant key is pure risk: nothing needs it, anyone who finds it can use it.",
        f"{_CONSOLE_KEYS} check the usage page for it, and disable it (`org check --fix`).",
        settings=("key_unused_days",),
        cis=("5.3",),
        fixable=True,
    ),
    _key(
        "ORG-KEY-008",
        "API key acting as a departed user",
        Severity.CRITICAL,
        _departed_principal,
        "The key outlives its owner's access: a former member (or whoever holds their laptop) "
        "keeps API access.",
        f"{_CONSOLE_KEYS} disable it now; recreate under a service account if a workload needs it.",
        needs=("api_keys", "users"),
        soc2=("CC6.2", "CC6.3"),
        iso=("A.5.18", "A.6.5"),
        cis=("5.3", "6.2"),
    ),
    _key(
        "ORG-KEY-009",
        "API key created by a departed user",
        Severity.MEDIUM,
        _departed_creator,
        "Nobody left in the organisation knows where this key went.",
        f"{_CONSOLE_KEYS} find its consumers from the usage page, re-issue it under a current "
        "owner, disable it.",
        needs=("api_keys", "users"),
        soc2=("CC6.2",),
        iso=("A.5.18", "A.6.5"),
        cis=("5.3", "6.2"),
    ),
    _key(
        "ORG-KEY-010",
        "API key acting as an archived or unknown service account",
        Severity.HIGH,
        _dead_service_account,
        "A retired workload identity still holds a live key.",
        f"{_CONSOLE_KEYS} disable it.",
        needs=("api_keys", "service_accounts"),
        iso=("A.5.16", "A.5.18"),
        cis=("5.3", "5.5"),
    ),
    _key(
        "ORG-KEY-011",
        "API key in an archived workspace",
        Severity.HIGH,
        _archived_workspace,
        "A key of a workspace nobody uses any more is forgotten, not retired.",
        f"{_CONSOLE_KEYS} disable it.",
        needs=("api_keys", "workspaces"),
        iso=("A.5.18",),
        cis=("5.3",),
    ),
    _key(
        "ORG-KEY-012",
        "Active API key outside claudesec's management",
        Severity.LOW,
        _unmanaged,
        "A key claudesec does not manage is not rotated, scoped or retired by it.",
        "Settings > API keys: load it into a managed secret (`claudesec keys` docs) or disable it.",
        api="List with GET /v1/organizations/api_keys; compare with `claudesec keys remote`.",
        soc2=("CC6.1", "CC8.1"),
        iso=("A.5.9", "A.8.9"),
        cis=("1.1", "5.1"),
        area="drift",
    ),
    _key(
        "ORG-DRIFT-001",
        "Managed key not active at Anthropic",
        Severity.HIGH,
        _managed_not_active,
        "The store serves a key Anthropic no longer accepts: every consumer of it fails.",
        f"{_CONSOLE_KEYS} re-activate it, or run `claudesec keys rotate` to move to a new one.",
        api='POST /v1/organizations/api_keys/{api_key_id} {"status": "active"}.',
        soc2=("CC8.1", "A1.2"),
        iso=("A.8.9",),
        cis=("4.1",),
        area="drift",
    ),
    _key(
        "ORG-DRIFT-002",
        "Rotated-out key still active",
        Severity.HIGH,
        _orphaned,
        "A key rotation replaced is still valid: the rotation bought no safety.",
        f"{_CONSOLE_KEYS} disable it (or let `claudesec keys rotate` retire it).",
        soc2=("CC6.1", "CC8.1"),
        iso=("A.8.9", "A.5.17"),
        cis=("5.3",),
        area="drift",
    ),
)
