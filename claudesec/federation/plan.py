"""The diff between the config's federation tables and the organisation, like ``terraform plan``.

The config is the whole truth for federation: what it names is created or brought in line,
what the organisation has beyond it is archived (rules first, then the issuers and service
accounts nothing references any more). Objects are matched by name, the organisation's unique
key. A rule whose issuer changes is *replaced* (archived, then created: the API cannot move a
rule to another issuer). Rules granting more than ``workspace:*`` belong to the Console; a
change to one is listed but ``blocked``, never attempted. An empty ``[federation]`` never
plans to archive the organisation: :func:`make_plan` refuses it.

Changes come out in the order :mod:`.apply` runs them, so a referenced object always exists
first and is archived last.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from claudesec.errors import ConfigError
from claudesec.federation.org import OrgFederation
from claudesec.federation.spec import (
    FederationSpec,
    IssuerSpec,
    MembershipSpec,
    RuleSpec,
    ServiceAccountSpec,
)

Kind = Literal["issuer", "service_account", "membership", "rule", "rule_workspace"]
Action = Literal["create", "update", "replace", "archive", "add", "remove"]
MANAGEABLE_SCOPES = frozenset({"workspace:inference", "workspace:developer"})


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class Change:
    """One step: what, to which object, and the values apply sends (names, not ids: apply
    resolves them when it runs, so objects created earlier in the run can be referenced)."""

    kind: Kind
    action: Action
    name: str
    fields: tuple[FieldChange, ...] = ()
    object_id: str | None = None
    params: Mapping[str, Any] | None = None
    blocked: str | None = None

    @property
    def label(self) -> str:
        return f"{self.kind.replace('_', ' ')} {self.name}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "action": self.action,
            "name": self.name,
            "id": self.object_id,
            "changes": [
                {"field": f.field, "before": f.before, "after": f.after} for f in self.fields
            ],
            "blocked": self.blocked,
            # What a create or replace sends (names, not ids), for review.
            "params": dict(self.params)
            if self.action in ("create", "replace") and self.params
            else None,
        }


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]

    @property
    def empty(self) -> bool:
        return not self.changes

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for change in self.changes:
            out[change.action] = out.get(change.action, 0) + 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "changes": [c.to_json() for c in self.changes],
            "summary": self.counts(),
            "in_sync": self.empty,
        }


# ------------------------------------------------------------------------------ desired values


def _clean(value: Any) -> Any:
    """JSON with null members dropped, so the API's explicit nulls equal omitted keys."""
    if isinstance(value, Mapping):
        return {k: _clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _scope_set(scope: Any) -> list[str]:
    return sorted(str(scope or "").split())


def issuer_params(spec: IssuerSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "issuer_url": spec.issuer_url,
        "jwks": dict(spec.jwks),
        "check_jti": spec.check_jti,
        "max_jwt_lifetime_seconds": spec.max_jwt_lifetime_seconds,
    }


def _diff(desired: Mapping[str, Any], live: Mapping[str, Any]) -> tuple[FieldChange, ...]:
    changes = []
    for name, want in desired.items():
        have = live.get(name)
        if _clean(want) != _clean(have):
            changes.append(FieldChange(name, _clean(have), _clean(want)))
    return tuple(changes)


def _issuer_changes(spec: FederationSpec, org: OrgFederation) -> list[Change]:
    out = []
    for issuer in spec.issuers:
        params = issuer_params(issuer)
        live = org.by_name(org.issuers, issuer.name)
        if live is None:
            out.append(Change("issuer", "create", issuer.name, params=params))
            continue
        fields = _diff({k: v for k, v in params.items() if k != "name"}, live)
        if fields:
            out.append(
                Change(
                    "issuer",
                    "update",
                    issuer.name,
                    fields,
                    str(live["id"]),
                    {f.field: params[f.field] for f in fields},
                )
            )
    return out


def _account_changes(spec: FederationSpec, org: OrgFederation) -> list[Change]:
    out = []
    for account in spec.service_accounts:
        live = org.by_name(org.service_accounts, account.name)
        if live is None:
            params = {"name": account.name, "description": account.description}
            out.append(Change("service_account", "create", account.name, params=_clean(params)))
            continue
        if account.description is not None and account.description != live.get("description"):
            out.append(
                Change(
                    "service_account",
                    "update",
                    account.name,
                    (FieldChange("description", live.get("description"), account.description),),
                    str(live["id"]),
                    {"description": account.description},
                )
            )
    return out


def _membership_changes(
    spec: FederationSpec, org: OrgFederation
) -> tuple[list[Change], list[Change]]:
    """(adds and role updates, removals)."""
    adds: list[Change] = []
    removals: list[Change] = []
    for account in spec.service_accounts:
        live = org.by_name(org.service_accounts, account.name)
        members = {
            str(m["workspace_id"]): m
            for m in (org.memberships.get(str(live["id"]), ()) if live else ())
        }
        wanted: dict[str, MembershipSpec] = {}
        for membership in account.workspaces:
            wanted[org.workspace_id(membership.workspace)] = membership
        for workspace_id, membership in wanted.items():
            label = f"{account.name} in {org.workspace_name(workspace_id)}"
            params = {
                "service_account": account.name,
                "workspace_id": workspace_id,
                "workspace_role": membership.role,
            }
            current = members.get(workspace_id)
            if current is None or current.get("implicit"):
                if current is not None and current.get("workspace_role") == membership.role:
                    continue  # the implicit default membership already is what is asked
                adds.append(
                    Change(
                        "membership",
                        "add",
                        label,
                        (FieldChange("workspace_role", None, membership.role),),
                        params=params,
                    )
                )
            elif current.get("workspace_role") != membership.role:
                adds.append(
                    Change(
                        "membership",
                        "update",
                        label,
                        (
                            FieldChange(
                                "workspace_role", current.get("workspace_role"), membership.role
                            ),
                        ),
                        params=params,
                    )
                )
        for workspace_id, current in members.items():
            if workspace_id in wanted or current.get("implicit"):
                continue
            removals.append(
                Change(
                    "membership",
                    "remove",
                    f"{account.name} in {org.workspace_name(workspace_id)}",
                    (FieldChange("workspace_role", current.get("workspace_role"), None),),
                    params={"service_account": account.name, "workspace_id": workspace_id},
                )
            )
    return adds, removals


def rule_params(rule: RuleSpec, org: OrgFederation) -> dict[str, Any]:
    params: dict[str, Any] = {
        "name": rule.name,
        "issuer": rule.issuer,
        "match": dict(rule.match),
        "oauth_scope": rule.oauth_scope,
        "service_account": rule.service_account,
        "token_lifetime_seconds": rule.token_lifetime_seconds,
        "applies_to_all_workspaces": rule.applies_to_all_workspaces,
        "workspace_ids": [org.workspace_id(w) for w in rule.workspaces],
    }
    if rule.description is not None:
        params["description"] = rule.description
    return params


def _rule_changes(spec: FederationSpec, org: OrgFederation) -> list[Change]:
    out: list[Change] = []
    for rule in spec.rules:
        params = rule_params(rule, org)
        live = org.by_name(org.rules, rule.name)
        if live is None:
            out.append(Change("rule", "create", rule.name, params=params))
            continue
        blocked = _console_only(live)
        if live.get("issuer_name") != rule.issuer:
            fields: tuple[FieldChange, ...] = (
                FieldChange("issuer", live.get("issuer_name"), rule.issuer),
            )
            out.append(
                Change("rule", "replace", rule.name, fields, str(live["id"]), params, blocked)
            )
            continue
        have = {
            "match": live.get("match"),
            "oauth_scope": _scope_set(live.get("oauth_scope")),
            "service_account": (live.get("target") or {}).get("service_account_name"),
            "token_lifetime_seconds": live.get("token_lifetime_seconds"),
            "applies_to_all_workspaces": live.get("applies_to_all_workspaces"),
            "workspace_ids": sorted(live.get("workspace_ids") or []),
            "description": live.get("description"),
        }
        want = {
            **{k: v for k, v in params.items() if k not in ("name", "issuer")},
            "oauth_scope": _scope_set(params["oauth_scope"]),
            "workspace_ids": sorted(params["workspace_ids"]),
        }
        fields = _diff(want, have)
        if fields:
            out.append(
                Change("rule", "update", rule.name, fields, str(live["id"]), params, blocked)
            )
    return out


def _console_only(rule: Mapping[str, Any]) -> str | None:
    scopes = set(str(rule.get("oauth_scope") or "").split())
    if scopes - MANAGEABLE_SCOPES:
        return (
            f"it grants {' '.join(sorted(scopes - MANAGEABLE_SCOPES))}: rules beyond "
            "workspace:* are managed in the Console"
        )
    return None


def _archives(spec: FederationSpec, org: OrgFederation) -> list[Change]:
    rules = {r.name for r in spec.rules}
    issuers = {i.name for i in spec.issuers}
    accounts = {a.name for a in spec.service_accounts}
    out: list[Change] = []
    staying: list[Mapping[str, Any]] = []  # live rules this plan cannot archive
    for live in org.live(org.rules):
        if live.get("name") in rules:
            staying.append(live)
            continue
        blocked = _console_only(live)
        if blocked:
            staying.append(live)
        out.append(Change("rule", "archive", str(live["name"]), (), str(live["id"]), None, blocked))

    def issuer_of(rule: Mapping[str, Any]) -> Any:
        return rule.get("issuer_id")

    def account_of(rule: Mapping[str, Any]) -> Any:
        return (rule.get("target") or {}).get("service_account_id")

    groups: tuple[tuple[Kind, tuple[Any, ...], set[str], Callable[[Mapping[str, Any]], Any]], ...]
    groups = (
        ("issuer", org.issuers, issuers, issuer_of),
        ("service_account", org.service_accounts, accounts, account_of),
    )
    for kind, table, keep, ref in groups:
        for live in org.live(table):
            if live.get("name") in keep:
                continue
            users = [
                str(r.get("name"))
                for r in staying
                if ref(r) == live.get("id") and r.get("name") not in rules
            ]
            blocked = (
                f"still referenced by Console-managed rule(s) {', '.join(users)}" if users else None
            )
            out.append(
                Change(kind, "archive", str(live["name"]), (), str(live["id"]), None, blocked)
            )
    return out


def make_plan(spec: FederationSpec, org: OrgFederation) -> Plan:
    """Every change that brings the organisation to the config, in execution order."""
    if spec.empty:
        raise ConfigError(
            "the config has no [[federation.issuers]], [[federation.service_accounts]] or "
            "[[federation.rules]] tables",
            hint="declare the federation first (docs/federation.md); an empty one would "
            "archive every rule of the organisation",
        )
    adds, removals = _membership_changes(spec, org)
    rules = _rule_changes(spec, org)
    archives = _archives(spec, org)
    rule_archives = [c for c in archives if c.kind == "rule"]
    other_archives = [c for c in archives if c.kind != "rule"]
    changes = [
        *_issuer_changes(spec, org),
        *_account_changes(spec, org),
        *adds,
        *rule_archives,
        *rules,
        *removals,
        *other_archives,
    ]
    return Plan(tuple(changes))


__all__ = ["Change", "FieldChange", "Plan", "ServiceAccountSpec", "make_plan"]
