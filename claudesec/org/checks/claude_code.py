"""Claude Code managed settings: the policy every member's Claude Code receives.

In ``rbac_groups`` mode the documents are readable through the Admin API: the default one
(``claude_code_default_settings``, the ``rbac_group_default`` resource) and one per RBAC group
(``claude_code_group_settings_documents``, the ``rbac_groups/{id}`` resource). In ``organization``
mode the settings live in claude.ai and the API does not return them, so the content checks
are skipped with that reason.

The keys judged are Claude Code's settings.json keys: ``permissions.disableBypassPermissionsMode``
(``"disable"`` forbids ``--dangerously-skip-permissions``), ``permissions.defaultMode``,
``permissions.deny`` (rules such as ``Read(./.env)``), ``allowManagedPermissionRulesOnly``,
``allowedMcpServers`` (an allowlist; absent means any server) and
``enableAllProjectMcpServers``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from claudesec.org.model import OrgInventory
from claudesec.org.rules import Check, CheckContext, Hit, NotApplicable, Severity, get

DEFAULT_KIND = "claude_code_default_settings"
GROUPS_KIND = "claude_code_group_settings_documents"
SECRET_MARKERS = (".env", "secrets", ".pem", ".key", "credentials")


def documents(inv: OrgInventory) -> list[tuple[str, Mapping[str, Any]]]:
    """``(resource, settings)`` for every settings document members can receive."""
    config = inv.singleton("claude_code_managed_settings") or {}
    mode = get(config, "mode", "type")
    if mode != "rbac_groups":
        raise NotApplicable(
            "managed settings are in organization mode: set in claude.ai, not readable "
            "through the Admin API"
        )
    missing = [kind for kind in (DEFAULT_KIND, GROUPS_KIND) if not inv.has(kind)]
    if missing:
        raise NotApplicable(f"not read by this inventory: {', '.join(missing)}")
    docs: list[tuple[str, Mapping[str, Any]]] = []
    default = inv.singleton(DEFAULT_KIND) or {}
    if isinstance(default.get("settings"), Mapping):
        docs.append(("default", default["settings"]))
    for group in inv.items(GROUPS_KIND):
        if get(group, "rbac_group_status", "type") == "deleted":
            continue
        if isinstance(group.get("settings"), Mapping):
            docs.append((str(group.get("rbac_group_id")), group["settings"]))
    if not docs:
        raise NotApplicable("no managed settings document is set (see ORG-CC-004)")
    return docs


def _bypass(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    for where, settings in documents(inv):
        if get(settings, "permissions", "defaultMode") == "bypassPermissions":
            yield Hit(where, f"settings {where} start Claude Code in bypassPermissions mode")
        elif get(settings, "permissions", "disableBypassPermissionsMode") != "disable":
            yield Hit(
                where,
                f"settings {where} let users skip every permission prompt "
                "(disableBypassPermissionsMode is not 'disable')",
            )


def _no_secret_deny(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    for where, settings in documents(inv):
        deny = get(settings, "permissions", "deny") or []
        reads = [str(r) for r in deny if str(r).startswith("Read(")]
        if not any(".env" in rule for rule in reads):
            yield Hit(where, f"settings {where} deny no read of .env or other secret files")


def _mcp_open(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    for where, settings in documents(inv):
        if settings.get("enableAllProjectMcpServers") is True:
            yield Hit(where, f"settings {where} auto-approve every project MCP server")
        elif "allowedMcpServers" not in settings:
            yield Hit(where, f"settings {where} set no MCP server allowlist (any server may run)")


def _local_rules(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    for where, settings in documents(inv):
        if settings.get("allowManagedPermissionRulesOnly") is not True:
            yield Hit(where, f"settings {where} let users add their own allow rules")


def _no_settings(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    config = inv.singleton("claude_code_managed_settings") or {}
    if get(config, "mode", "type") != "rbac_groups":
        raise NotApplicable("managed settings are in organization mode (set in claude.ai)")
    if not inv.has(DEFAULT_KIND):
        raise NotApplicable(f"not read by this inventory: {DEFAULT_KIND}")
    default = inv.singleton(DEFAULT_KIND) or {}
    if default.get("settings") is None:
        yield Hit("default", "members in no settings group receive no managed settings")


def _deleted_groups(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    for group in inv.items(GROUPS_KIND):
        if get(group, "rbac_group_status", "type") == "deleted":
            gid = group.get("rbac_group_id")
            yield Hit(str(gid), f"settings of deleted RBAC group {gid} are still in the order")


def _c(
    id_: str,
    title: str,
    severity: Severity,
    fn: Any,
    rationale: str,
    console: str,
    api: str,
    soc2: tuple[str, ...],
    iso: tuple[str, ...],
    cis: tuple[str, ...],
    needs: tuple[str, ...] = ("claude_code_managed_settings",),
) -> Check:
    return Check(
        id_, title, severity, "claude_code", needs, rationale, console, api, soc2, iso, cis, fn
    )


_API = (
    "PUT /v1/organizations/claude_code/managed_settings/rbac_groups/{rbac_group_id} and "
    "/rbac_group_default (client.beta.organization.claude_code.managed_settings.rbac_groups.set)"
)
_CONSOLE = "claude.ai > Admin settings > Claude Code > Managed settings:"

CHECKS: tuple[Check, ...] = (
    _c(
        "ORG-CC-001",
        "Claude Code permission bypass allowed",
        Severity.CRITICAL,
        _bypass,
        "With bypass allowed, an agent runs any command and edits any file without asking: one "
        "prompt injection away from running anything.",
        f'{_CONSOLE} set permissions.disableBypassPermissionsMode to "disable".',
        f"{_API}.",
        ("CC6.1", "CC6.8"),
        ("A.8.19", "A.8.9"),
        ("2.7", "4.1"),
    ),
    _c(
        "ORG-CC-002",
        "Claude Code settings deny no secret files",
        Severity.HIGH,
        _no_secret_deny,
        "Without deny rules, Claude Code reads .env files and keys into its context (and its "
        "telemetry and transcripts).",
        f"{_CONSOLE} add permissions.deny rules such as "
        "Read(./.env), Read(./.env.*), Read(./secrets/**).",
        f"{_API}.",
        ("CC6.1", "C1.1"),
        ("A.8.3", "A.8.12"),
        ("3.3",),
    ),
    _c(
        "ORG-CC-003",
        "Claude Code MCP servers unrestricted",
        Severity.HIGH,
        _mcp_open,
        "Any MCP server a repository names runs with the developer's rights: supply-chain code "
        "execution.",
        f"{_CONSOLE} set allowedMcpServers to the servers you vetted and "
        "enableAllProjectMcpServers to false.",
        f"{_API}.",
        ("CC6.8",),
        ("A.8.19",),
        ("2.5", "2.7"),
    ),
    _c(
        "ORG-CC-004",
        "Claude Code managed rules can be widened by users",
        Severity.MEDIUM,
        _local_rules,
        "Local allow rules override the organisation's intent.",
        f"{_CONSOLE} set allowManagedPermissionRulesOnly to true.",
        f"{_API}.",
        ("CC6.8",),
        ("A.8.9",),
        ("4.1",),
    ),
    _c(
        "ORG-CC-005",
        "Claude Code members without managed settings",
        Severity.MEDIUM,
        _no_settings,
        "In RBAC-groups mode a member in no listed group gets no managed settings at all.",
        f"{_CONSOLE} set default settings.",
        "PUT /v1/organizations/claude_code/managed_settings/rbac_group_default.",
        ("CC6.8",),
        ("A.8.9",),
        ("4.1",),
    ),
    _c(
        "ORG-CC-006",
        "Claude Code settings of a deleted RBAC group",
        Severity.LOW,
        _deleted_groups,
        "Settings of a deleted group match no one; they hide the order that really applies.",
        f"{_CONSOLE} remove the deleted group's settings.",
        "DELETE /v1/organizations/claude_code/managed_settings/rbac_groups/{rbac_group_id}.",
        ("CC8.1",),
        ("A.8.9",),
        ("4.1",),
        needs=("claude_code_group_settings_documents",),
    ),
)
