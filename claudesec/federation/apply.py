"""Run a :class:`~claudesec.federation.plan.Plan` against the organisation, step by step.

Each change is one or two SDK calls; names become ids from the organisation read the plan was
made from, plus whatever this run created. A step that fails is recorded and the run goes on
with the steps that do not depend on it (a rule whose issuer could not be created is skipped,
not sent to fail); ``blocked`` changes are never attempted. The report says what was applied,
what failed and why, and its exit code: 0 all applied, 4 some applied and some not, 3 nothing
could be applied. Applying a plan made right after a successful apply is a no-op, since the
plan is then empty: idempotence comes from planning against what is live, not from memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from claudesec.anthropic_oauth import OrgAdminClient
from claudesec.errors import ClaudesecError, ExitCode
from claudesec.federation.org import OrgFederation
from claudesec.federation.plan import Change, Plan

Outcome = Literal["applied", "failed", "skipped"]


@dataclass(frozen=True)
class StepResult:
    change: Change
    outcome: Outcome
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {**self.change.to_json(), "outcome": self.outcome, "detail": self.detail}


@dataclass(frozen=True)
class ApplyReport:
    steps: tuple[StepResult, ...]

    def of(self, outcome: Outcome) -> list[StepResult]:
        return [s for s in self.steps if s.outcome == outcome]

    @property
    def exit_code(self) -> ExitCode:
        failed = self.of("failed") or self.of("skipped")
        if not failed:
            return ExitCode.OK
        return ExitCode.PARTIAL if self.of("applied") else ExitCode.EXTERNAL

    def to_json(self) -> dict[str, Any]:
        return {
            "steps": [s.to_json() for s in self.steps],
            "applied": len(self.of("applied")),
            "failed": len(self.of("failed")),
            "skipped": len(self.of("skipped")),
            "exit_code": int(self.exit_code),
        }


class _Ids:
    """Name -> id for issuers, service accounts and rules: live ones, then those created now."""

    def __init__(self, org: OrgFederation) -> None:
        self.table: dict[tuple[str, str], str] = {}
        for kind, items in (
            ("issuer", org.issuers),
            ("service_account", org.service_accounts),
            ("rule", org.rules),
        ):
            for item in org.live(items):
                self.table[(kind, str(item["name"]))] = str(item["id"])
        self.failed: set[tuple[str, str]] = set()

    def get(self, kind: str, name: str) -> str:
        if (kind, name) in self.failed:
            raise _Skip(f"its {kind.replace('_', ' ')} {name} was not applied")
        try:
            return self.table[(kind, name)]
        except KeyError:
            raise _Skip(f"no {kind.replace('_', ' ')} named {name}") from None


class _Skip(Exception):
    """A step depends on one that failed."""


def apply_plan(client: OrgAdminClient, plan: Plan, org: OrgFederation) -> ApplyReport:
    """Apply every change of ``plan`` (made from ``org``), going on past failures."""
    ids = _Ids(org)
    steps: list[StepResult] = []
    for change in plan.changes:
        if change.blocked:
            steps.append(StepResult(change, "skipped", change.blocked))
            continue
        try:
            _run(client, change, ids)
        except _Skip as skip:
            steps.append(StepResult(change, "skipped", str(skip)))
            _mark_failed(ids, change)
        except Exception as exc:
            error = client.error(exc, f"{change.action} {change.label}")
            detail = error.user_message() if isinstance(error, ClaudesecError) else str(error)
            steps.append(StepResult(change, "failed", detail))
            _mark_failed(ids, change)
        else:
            steps.append(StepResult(change, "applied"))
    return ApplyReport(tuple(steps))


def _mark_failed(ids: _Ids, change: Change) -> None:
    if change.action in ("create", "replace") and change.kind in (
        "issuer",
        "service_account",
        "rule",
    ):
        ids.failed.add((change.kind, change.name))


def _run(client: OrgAdminClient, change: Change, ids: _Ids) -> None:
    org = client.sdk.beta.organization
    params = dict(change.params or {})
    handlers: dict[tuple[str, str], Callable[[], None]] = {
        ("issuer", "create"): lambda: _created(
            ids, "issuer", org.federation.issuers.create(**params)
        ),
        ("issuer", "update"): lambda: _ignore(
            org.federation.issuers.update(str(change.object_id), **params)
        ),
        ("issuer", "archive"): lambda: _ignore(
            org.federation.issuers.archive(str(change.object_id))
        ),
        ("service_account", "create"): lambda: _created(
            ids, "service_account", org.service_accounts.create(**params)
        ),
        ("service_account", "update"): lambda: _ignore(
            org.service_accounts.update(str(change.object_id), **params)
        ),
        ("service_account", "archive"): lambda: _ignore(
            org.service_accounts.archive(str(change.object_id))
        ),
        ("membership", "add"): lambda: _ignore(
            org.service_accounts.workspaces.add(
                ids.get("service_account", params["service_account"]),
                workspace_id=params["workspace_id"],
                workspace_role=params["workspace_role"],
            )
        ),
        ("membership", "update"): lambda: _ignore(
            org.workspaces.service_accounts.update(
                ids.get("service_account", params["service_account"]),
                workspace_id=params["workspace_id"],
                workspace_role=params["workspace_role"],
            )
        ),
        ("membership", "remove"): lambda: _ignore(
            org.service_accounts.workspaces.remove(
                params["workspace_id"],
                service_account_id=ids.get("service_account", params["service_account"]),
            )
        ),
        ("rule", "create"): lambda: _create_rule(client, ids, params),
        ("rule", "update"): lambda: _update_rule(client, ids, str(change.object_id), params),
        ("rule", "replace"): lambda: _replace_rule(client, ids, str(change.object_id), params),
        ("rule", "archive"): lambda: _ignore(org.federation.rules.archive(str(change.object_id))),
    }
    handlers[(change.kind, change.action)]()


def _ignore(_: Any) -> None:
    return None


def _created(ids: _Ids, kind: str, created: Any) -> None:
    ids.table[(kind, str(created.name))] = str(created.id)


def _create_rule(client: OrgAdminClient, ids: _Ids, params: dict[str, Any]) -> None:
    org = client.sdk.beta.organization
    workspaces = list(params["workspace_ids"])
    body: dict[str, Any] = {
        "name": params["name"],
        "issuer_id": ids.get("issuer", params["issuer"]),
        "match": params["match"],
        "oauth_scope": params["oauth_scope"],
        "target": {
            "type": "service_account",
            "service_account_id": ids.get("service_account", params["service_account"]),
        },
        "token_lifetime_seconds": params["token_lifetime_seconds"],
        "applies_to_all_workspaces": params["applies_to_all_workspaces"],
    }
    if workspaces:
        body["workspace_id"] = workspaces[0]
    if "description" in params:
        body["description"] = params["description"]
    rule = org.federation.rules.create(**body)
    ids.table[("rule", str(rule.name))] = str(rule.id)
    for workspace_id in workspaces[1:]:
        org.federation.rules.workspaces.add(str(rule.id), workspace_id=workspace_id)


def _update_rule(client: OrgAdminClient, ids: _Ids, rule_id: str, params: dict[str, Any]) -> None:
    org = client.sdk.beta.organization
    live = org.federation.rules.retrieve(rule_id)
    wanted = list(params["workspace_ids"])
    # Enable new workspaces first: a rule must never be left with none in between.
    for workspace_id in wanted:
        if workspace_id not in live.workspace_ids:
            org.federation.rules.workspaces.add(rule_id, workspace_id=workspace_id)
    body: dict[str, Any] = {
        "match": params["match"],
        "oauth_scope": params["oauth_scope"],
        "target": {
            "type": "service_account",
            "service_account_id": ids.get("service_account", params["service_account"]),
        },
        "token_lifetime_seconds": params["token_lifetime_seconds"],
        "applies_to_all_workspaces": params["applies_to_all_workspaces"],
    }
    if "description" in params:
        body["description"] = params["description"]
    org.federation.rules.update(rule_id, **body)
    for workspace_id in live.workspace_ids:
        if workspace_id not in wanted:
            org.federation.rules.workspaces.remove(workspace_id, federation_rule_id=rule_id)


def _replace_rule(client: OrgAdminClient, ids: _Ids, rule_id: str, params: dict[str, Any]) -> None:
    ids.get("issuer", params["issuer"])  # skip before archiving when the new issuer is missing
    client.sdk.beta.organization.federation.rules.archive(rule_id)
    _create_rule(client, ids, params)
