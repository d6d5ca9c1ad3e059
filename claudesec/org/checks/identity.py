"""Workload identity: service accounts and workload-identity federation (issuers, rules)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from claudesec.org.federation import UNAVAILABLE
from claudesec.org.model import OrgInventory
from claudesec.org.rules import (
    Check,
    CheckContext,
    Hit,
    NotApplicable,
    Severity,
    get,
    label,
    make_check,
)


def _live(items: tuple[Mapping[str, Any], ...]) -> Iterator[Mapping[str, Any]]:
    return (i for i in items if not i.get("archived_at"))


def _sa_admin(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    for account in _live(inv.items("service_accounts")):
        if account.get("organization_role") == "admin":
            yield Hit(
                str(account["id"]), f"service account {label(account)} is an organisation admin"
            )


def _sa_unused(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    used = {
        str(get(r, "target", "service_account_id")) for r in _live(inv.items("federation_rules"))
    }
    used |= {
        str(get(k, "principal", "service_account_id"))
        for k in inv.items("api_keys")
        if k.get("status") == "active"
    }
    for account in _live(inv.items("service_accounts")):
        if str(account.get("id")) not in used:
            yield Hit(
                str(account["id"]),
                f"service account {label(account)} has no federation rule or active key using it",
            )


def _sa_workspace_admin(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    for member in inv.items("service_account_workspaces"):
        if member.get("workspace_role") == "workspace_admin":
            yield Hit(
                f"{member.get('service_account_id')}/{member.get('workspace_id')}",
                f"service account {member.get('service_account_id')} is workspace admin of "
                f"{member.get('workspace_id')}",
            )


def _fed_lint(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    if ctx.federation_findings is None:
        raise NotApplicable(UNAVAILABLE)
    yield from ctx.federation_findings


def _all_workspaces(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    for rule in _live(inv.items("federation_rules")):
        if rule.get("applies_to_all_workspaces"):
            yield Hit(str(rule["id"]), f"federation rule {label(rule)} applies to every workspace")


def _long_tokens(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    limit = ctx.config.federation_max_token_lifetime_s
    for rule in _live(inv.items("federation_rules")):
        lifetime = rule.get("token_lifetime_seconds")
        if isinstance(lifetime, int) and lifetime > limit:
            yield Hit(
                str(rule["id"]),
                f"federation rule {label(rule)} mints {lifetime}s tokens (limit {limit}s)",
            )


def _admin_scope(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    for rule in _live(inv.items("federation_rules")):
        if "org:admin" in str(rule.get("oauth_scope", "")).split():
            yield Hit(str(rule["id"]), f"federation rule {label(rule)} grants org:admin")


def _no_jti(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    for issuer in _live(inv.items("federation_issuers")):
        if not issuer.get("check_jti"):
            yield Hit(str(issuer["id"]), f"issuer {label(issuer)} does not enforce single-use jti")


def _dead_targets(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    accounts = {str(a.get("id")): a for a in inv.items("service_accounts")}
    issuers = {str(i.get("id")): i for i in inv.items("federation_issuers")}
    for rule in _live(inv.items("federation_rules")):
        account = accounts.get(str(get(rule, "target", "service_account_id")))
        issuer = issuers.get(str(rule.get("issuer_id")))
        if account is None or account.get("archived_at"):
            yield Hit(
                str(rule["id"]),
                f"federation rule {label(rule)} targets an archived or unknown service account",
            )
        elif issuer is None or issuer.get("archived_at"):
            yield Hit(
                str(rule["id"]), f"federation rule {label(rule)} uses an archived or unknown issuer"
            )


def _polling_off(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    for issuer in _live(inv.items("federation_issuers")):
        if issuer.get("jwks_polling_disabled_at"):
            yield Hit(
                str(issuer["id"]),
                f"JWKS polling of issuer {label(issuer)} is paused "
                "after fetch failures: key rotation at the IdP is not seen",
            )


_c = make_check


_BETA = "client.beta.organization"
_RULE_API = f"POST /v1/organizations/federation_rules/{{id}} ({_BETA}.federation.rules.update)"
_ISSUER_API = (
    f"POST /v1/organizations/federation_issuers/{{id}} ({_BETA}.federation.issuers.update)"
)
_SA_API = f"POST /v1/organizations/service_accounts/{{id}} ({_BETA}.service_accounts.update)"

CHECKS: tuple[Check, ...] = (
    _c(
        "ORG-SVC-001",
        "Service account with the admin organisation role",
        Severity.HIGH,
        _sa_admin,
        ("service_accounts",),
        "A workload identity with org admin can mint org:admin tokens and change every setting.",
        "Settings > Service accounts: set the role to developer.",
        f'{_SA_API} {{"organization_role": "developer"}}.',
        ("CC6.1", "CC6.3"),
        ("A.8.2", "A.5.15"),
        ("5.4", "5.5"),
        "identity",
    ),
    _c(
        "ORG-SVC-002",
        "Service account that nothing uses",
        Severity.LOW,
        _sa_unused,
        ("service_accounts", "federation_rules", "api_keys"),
        "An identity with no rule and no key is leftover access waiting to be reused.",
        "Settings > Service accounts: archive it.",
        f"{_SA_API} (archive).",
        ("CC6.2",),
        ("A.5.18",),
        ("5.3", "5.5"),
        "identity",
    ),
    _c(
        "ORG-SVC-003",
        "Service account is a workspace admin",
        Severity.MEDIUM,
        _sa_workspace_admin,
        ("service_account_workspaces",),
        "A workload rarely needs to manage a workspace's members and keys.",
        "Workspaces > (workspace) > Members: give the service account "
        "workspace_developer or workspace_user.",
        "POST /v1/organizations/workspaces/"
        '{workspace_id}/service_accounts/{service_account_id} {"workspace_role": ...}.',
        ("CC6.3",),
        ("A.8.2",),
        ("5.4", "6.8"),
        "identity",
    ),
    _c(
        "ORG-FED-001",
        "Over-broad federation rule (federation lint)",
        Severity.HIGH,
        _fed_lint,
        ("federation_rules", "federation_issuers", "service_accounts"),
        "A rule that matches "
        "more subjects than intended lets any of them mint tokens (`claudesec federation lint`).",
        "Settings > Federation: narrow the rule's subject, claims or condition.",
        _RULE_API,
        ("CC6.1", "CC6.6"),
        ("A.5.16", "A.8.5"),
        ("6.7", "5.6"),
        "federation",
    ),
    _c(
        "ORG-FED-002",
        "Federation rule enabled for every workspace",
        Severity.MEDIUM,
        _all_workspaces,
        ("federation_rules",),
        "Tokens from this rule reach every workspace, including ones created later.",
        "Settings > Federation: enable the rule for the workspaces it needs.",
        f"{_RULE_API} with applies_to_all_workspaces = false.",
        ("CC6.1", "CC6.3"),
        ("A.5.15", "A.8.3"),
        ("6.8",),
        "federation",
    ),
    _c(
        "ORG-FED-003",
        "Federation rule mints long-lived tokens",
        Severity.LOW,
        _long_tokens,
        ("federation_rules",),
        "A short token lifetime is what makes federation safer than a key.",
        "Settings > Federation: lower the token lifetime.",
        f"{_RULE_API} with token_lifetime_seconds.",
        ("CC6.1",),
        ("A.5.17", "A.8.5"),
        ("6.7",),
        "federation",
        ("federation_max_token_lifetime_s",),
    ),
    _c(
        "ORG-FED-004",
        "Federation rule grants org:admin",
        Severity.CRITICAL,
        _admin_scope,
        ("federation_rules",),
        "Any workload matching the rule becomes an organisation admin.",
        "Settings > Federation: remove org:admin from the rule (managed in the Console only).",
        "Rules granting org:admin are managed in the Console; list them with GET "
        "/v1/organizations/federation_rules.",
        ("CC6.1", "CC6.3"),
        ("A.8.2",),
        ("5.4", "6.7"),
        "federation",
    ),
    _c(
        "ORG-FED-005",
        "Federation issuer without replay protection",
        Severity.MEDIUM,
        _no_jti,
        ("federation_issuers",),
        "Without single-use jti a stolen assertion can be exchanged again until it expires.",
        "Settings > Federation > Issuers: turn on check_jti.",
        f'{_ISSUER_API} {{"check_jti": true}}.',
        ("CC6.1",),
        ("A.8.5",),
        ("6.7",),
        "federation",
    ),
    _c(
        "ORG-FED-006",
        "Federation rule with a dead target or issuer",
        Severity.MEDIUM,
        _dead_targets,
        ("federation_rules", "service_accounts", "federation_issuers"),
        "A rule left pointing at a retired identity is configuration nobody reviews.",
        "Settings > Federation: archive the rule.",
        f"{_RULE_API} (archive).",
        ("CC6.2",),
        ("A.5.18",),
        ("5.3",),
        "federation",
    ),
    _c(
        "ORG-FED-007",
        "Federation issuer JWKS polling paused",
        Severity.MEDIUM,
        _polling_off,
        ("federation_issuers",),
        "Anthropic stopped fetching the issuer's keys: a key the IdP revoked may still be trusted.",
        "Settings > Federation > Issuers: fix the JWKS endpoint and resume polling.",
        f'{_ISSUER_API} {{"jwks_polling_disabled": false}}.',
        ("CC6.1", "CC7.2"),
        ("A.8.5", "A.8.16"),
        ("6.7",),
        "federation",
    ),
)
