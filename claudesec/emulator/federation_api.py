"""HTTP handlers of the identity endpoints: workspaces, service accounts, federation.

Bodies and answers follow anthropic 2.16's models (``BetaWorkspace``, ``BetaServiceAccount``,
``BetaServiceAccountWorkspaceMember``, ``BetaFederationIssuer``, ``BetaFederationRule``,
``BetaFederationRuleWorkspace``), so the SDK's ``client.beta.organization.*`` resources parse
them unchanged. The registry (:mod:`claudesec.emulator.federation`) holds the rules; this
module only parses, calls and renders. Which credential each endpoint takes is decided by
the server's route table, not here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

from claudesec.emulator.directory import Membership, ServiceAccount, Workspace
from claudesec.emulator.federation import (
    DEFAULT_MAX_JWT_LIFETIME_S,
    DEFAULT_TOKEN_LIFETIME_S,
    Issuer,
    Rule,
    RuleWorkspace,
    parse_jwks,
    parse_match,
)
from claudesec.emulator.state import AuthResult, EmulatorState
from claudesec.emulator.wire import (
    Query,
    Response,
    cursor_page,
    invalid_request,
    paginate,
    rfc3339,
)


class Call(Protocol):
    """What a handler gets from the server (the server's ``_Call`` satisfies it)."""

    @property
    def state(self) -> EmulatorState: ...
    @property
    def query(self) -> Query: ...
    @property
    def body(self) -> Any: ...
    @property
    def params(self) -> dict[str, str]: ...
    @property
    def auth(self) -> AuthResult: ...


def _when(moment: datetime | None) -> str | None:
    return rfc3339(moment) if moment is not None else None


def _actor(call: Call) -> str | None:
    return call.auth.token.actor_id if call.auth.token is not None else None


def _object(body: Any, allowed: set[str]) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise invalid_request("Request body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise invalid_request(f"{unknown[0]}: Extra inputs are not permitted")
    return body


def _flag(query: Query, name: str) -> bool:
    return (query.one(name) or "false").lower() == "true"


# ------------------------------------------------------------------------------ renderers


def workspace_json(workspace: Workspace) -> dict[str, Any]:
    return {
        "id": workspace.id,
        "type": "workspace",
        "name": workspace.name,
        "created_at": rfc3339(workspace.created_at),
        "archived_at": _when(workspace.archived_at),
        "display_color": workspace.display_color,
        "tags": dict(workspace.tags),
        "compartment_id": "cmpt_" + workspace.id.split("_", 1)[1],
        "data_residency": dict(workspace.data_residency)
        if workspace.data_residency
        else {
            "workspace_geo": "us",
            "allowed_inference_geos": "unrestricted",
            "default_inference_geo": "global",
        },
        "external_key_id": workspace.external_key_id,
        "user_profile_id": None,
    }


def service_account_json(account: ServiceAccount) -> dict[str, Any]:
    return {
        "id": account.id,
        "type": "service_account",
        "name": account.name,
        "description": account.description,
        "organization_role": account.organization_role,
        "created_at": rfc3339(account.created_at),
        "created_by_actor_id": account.created_by,
        "updated_at": rfc3339(account.updated_at),
        "updated_by_actor_id": account.updated_by,
        "archived_at": _when(account.archived_at),
        "archived_by_actor_id": account.archived_by,
    }


def membership_json(member: Membership) -> dict[str, Any]:
    return {
        "type": "service_account_workspace_member",
        "service_account_id": member.service_account_id,
        "workspace_id": member.workspace_id,
        "workspace_role": member.workspace_role,
        "created_by_actor_id": member.created_by,
        "implicit": member.implicit,
    }


def issuer_json(issuer: Issuer) -> dict[str, Any]:
    polled = issuer.jwks.type != "inline"
    return {
        "id": issuer.id,
        "type": "federation_issuer",
        "name": issuer.name,
        "issuer_url": issuer.issuer_url,
        "jwks": issuer.jwks.to_json(),
        "check_jti": issuer.check_jti,
        "max_jwt_lifetime_seconds": issuer.max_jwt_lifetime_seconds,
        "created_at": rfc3339(issuer.created_at),
        "created_by_actor_id": issuer.created_by,
        "updated_at": rfc3339(issuer.updated_at),
        "updated_by_actor_id": issuer.updated_by,
        "archived_at": _when(issuer.archived_at),
        "archived_by_actor_id": issuer.archived_by,
        "jwks_polling_disabled_at": _when(issuer.jwks_polling_disabled_at),
        "poll_status": {
            "consecutive_failures": issuer.poll.consecutive_failures,
            "last_fetched_at": _when(issuer.poll.last_fetched_at),
            "next_poll_at": None,
        }
        if polled
        else None,
    }


def rule_json(rule: Rule, state: EmulatorState) -> dict[str, Any]:
    registry = state.federation
    issuer_name = registry.issuer(rule.issuer_id).name
    account_name = registry.service_account(rule.service_account_id).name
    return {
        "id": rule.id,
        "type": "federation_rule",
        "name": rule.name,
        "description": rule.description,
        "issuer_id": rule.issuer_id,
        "issuer_name": issuer_name,
        "match": rule.match.to_json(),
        "oauth_scope": rule.oauth_scope,
        "target": {
            "type": "service_account",
            "service_account_id": rule.service_account_id,
            "service_account_name": account_name,
        },
        "token_lifetime_seconds": rule.token_lifetime_seconds,
        "applies_to_all_workspaces": rule.applies_to_all_workspaces,
        "workspace_id": rule.workspace_id,
        "workspace_ids": rule.workspace_ids,
        "attributes": None,
        "created_at": rfc3339(rule.created_at),
        "created_by_actor_id": rule.created_by,
        "updated_at": rfc3339(rule.updated_at),
        "updated_by_actor_id": rule.updated_by,
        "archived_at": _when(rule.archived_at),
        "archived_by_actor_id": rule.archived_by,
    }


def rule_workspace_json(
    rule_id: str, enabled: RuleWorkspace, workspace_name: str | None
) -> dict[str, Any]:
    return {
        "type": "federation_rule_workspace",
        "federation_rule_id": rule_id,
        "workspace_id": enabled.workspace_id,
        "workspace_name": workspace_name,
        "created_at": rfc3339(enabled.created_at),
        "created_by_actor_id": enabled.created_by,
    }


# ------------------------------------------------------------------------------ workspaces


def create_workspace(call: Call) -> Response:
    body = _object(
        call.body,
        {
            "name",
            "display_color",
            "tags",
            "data_residency",
            "external_key_id",
            "inference_data_privacy",
            "user_profile_id",
        },
    )
    tags = body.get("tags")
    if tags is not None and (
        not isinstance(tags, dict) or any(str(k).startswith("anthropic") for k in tags)
    ):
        raise invalid_request("tags: keys may not begin with 'anthropic'")
    workspace = call.state.federation.create_workspace(
        body.get("name"), tags=tags, display_color=body.get("display_color")
    )
    return Response(200, workspace_json(workspace))


def list_workspaces(call: Call) -> Response:
    include_archived = _flag(call.query, "include_archived")
    include_default = _flag(call.query, "include_default")
    ids = set(call.query.many("ids"))

    def keep(workspace: Workspace) -> bool:
        return (
            (include_archived or workspace.archived_at is None)
            and (include_default or not workspace.is_default)
            and (not ids or workspace.id in ids)
        )

    page = paginate(
        call.state.federation.list_workspaces(), id_of=lambda w: w.id, keep=keep, query=call.query
    )
    return Response(200, page.to_json(workspace_json))


def retrieve_workspace(call: Call) -> Response:
    return Response(
        200, workspace_json(call.state.federation.workspace(call.params["workspace_id"]))
    )


def update_workspace(call: Call) -> Response:
    body = _object(
        call.body,
        {
            "name",
            "display_color",
            "tags",
            "data_residency",
            "external_key_id",
            "inference_data_privacy",
            "user_profile_id",
        },
    )
    workspace = call.state.federation.update_workspace(
        call.params["workspace_id"], name=body.get("name"), tags=body.get("tags")
    )
    return Response(200, workspace_json(workspace))


def archive_workspace(call: Call) -> Response:
    return Response(
        200, workspace_json(call.state.federation.archive_workspace(call.params["workspace_id"]))
    )


# ------------------------------------------------------------------------------ service accounts


def create_service_account(call: Call) -> Response:
    body = _object(call.body, {"name", "description", "organization_role"})
    role = body.get("organization_role") or "developer"
    if role == "admin" and call.auth.token is not None and call.auth.token.service_account_id:
        # A workload may only make developer-role accounts; admin needs a person.
        raise invalid_request(
            "organization_role: creating an admin service account needs an interactive credential"
        )
    account = call.state.federation.create_service_account(
        body.get("name"),
        description=body.get("description"),
        organization_role=role,
        actor=_actor(call),
    )
    return Response(200, service_account_json(account))


def list_service_accounts(call: Call) -> Response:
    accounts = call.state.federation.list_service_accounts(
        include_archived=_flag(call.query, "include_archived")
    )
    return Response(
        200,
        cursor_page(accounts, id_of=lambda a: a.id, query=call.query, render=service_account_json),
    )


def retrieve_service_account(call: Call) -> Response:
    account = call.state.federation.service_account(call.params["service_account_id"])
    return Response(200, service_account_json(account))


def update_service_account(call: Call) -> Response:
    body = _object(call.body, {"description", "organization_role"})
    role = body.get("organization_role")
    if role == "admin" and call.auth.token is not None and call.auth.token.service_account_id:
        raise invalid_request("organization_role: setting admin needs an interactive credential")
    account = call.state.federation.update_service_account(
        call.params["service_account_id"],
        description=body.get("description"),
        clear_description="description" in body and body["description"] is None,
        organization_role=role,
        actor=_actor(call),
    )
    return Response(200, service_account_json(account))


def archive_service_account(call: Call) -> Response:
    account = call.state.federation.archive_service_account(
        call.params["service_account_id"], actor=_actor(call)
    )
    return Response(200, service_account_json(account))


def list_account_workspaces(call: Call) -> Response:
    members = call.state.federation.memberships_of(call.params["service_account_id"])
    return Response(
        200,
        cursor_page(
            members, id_of=lambda m: m.workspace_id, query=call.query, render=membership_json
        ),
    )


def add_account_workspace(call: Call) -> Response:
    body = _object(call.body, {"workspace_id", "workspace_role"})
    member = call.state.federation.add_membership(
        call.params["service_account_id"],
        _required_str(body, "workspace_id"),
        body.get("workspace_role"),
        actor=_actor(call),
    )
    return Response(200, membership_json(member))


def remove_account_workspace(call: Call) -> Response:
    account_id, workspace_id = call.params["service_account_id"], call.params["workspace_id"]
    call.state.federation.remove_membership(account_id, workspace_id)
    return Response(
        200,
        {
            "type": "service_account_workspace_member_deleted",
            "service_account_id": account_id,
            "workspace_id": workspace_id,
        },
    )


def list_workspace_accounts(call: Call) -> Response:
    members = call.state.federation.members_of(call.params["workspace_id"])
    return Response(
        200,
        cursor_page(
            members, id_of=lambda m: m.service_account_id, query=call.query, render=membership_json
        ),
    )


def add_workspace_account(call: Call) -> Response:
    body = _object(call.body, {"service_account_id", "workspace_role"})
    member = call.state.federation.add_membership(
        _required_str(body, "service_account_id"),
        call.params["workspace_id"],
        body.get("workspace_role"),
        actor=_actor(call),
    )
    return Response(200, membership_json(member))


def retrieve_workspace_account(call: Call) -> Response:
    registry = call.state.federation
    workspace_id, account_id = call.params["workspace_id"], call.params["service_account_id"]
    registry.live_workspace(workspace_id)
    account = registry.service_account(account_id)
    member = registry.membership(account_id, workspace_id)
    if account.archived_at is not None or member is None:
        from claudesec.emulator.wire import not_found

        raise not_found(f"{account_id} is not a member of {workspace_id}")
    return Response(200, membership_json(member))


def update_workspace_account(call: Call) -> Response:
    body = _object(call.body, {"workspace_role"})
    member = call.state.federation.update_membership(
        call.params["service_account_id"], call.params["workspace_id"], body.get("workspace_role")
    )
    return Response(200, membership_json(member))


def remove_workspace_account(call: Call) -> Response:
    return remove_account_workspace(call)


def _required_str(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise invalid_request(f"{name}: Field required")
    return value


# ------------------------------------------------------------------------------ issuers


_ISSUER_FIELDS = {"issuer_url", "name", "check_jti", "jwks", "max_jwt_lifetime_seconds"}


def create_issuer(call: Call) -> Response:
    body = _object(call.body, _ISSUER_FIELDS)
    check_jti = body.get("check_jti")
    if check_jti is not None and not isinstance(check_jti, bool):
        raise invalid_request("check_jti: Input should be a boolean")
    lifetime = body.get("max_jwt_lifetime_seconds")
    issuer = call.state.federation.create_issuer(
        name=body.get("name"),
        issuer_url=body.get("issuer_url"),
        jwks=parse_jwks(body.get("jwks")),
        check_jti=True if check_jti is None else check_jti,
        max_jwt_lifetime_seconds=DEFAULT_MAX_JWT_LIFETIME_S if lifetime is None else lifetime,
        actor=_actor(call),
    )
    return Response(200, issuer_json(issuer))


def list_issuers(call: Call) -> Response:
    issuers = call.state.federation.list_issuers(
        include_archived=_flag(call.query, "include_archived")
    )
    return Response(
        200, cursor_page(issuers, id_of=lambda i: i.id, query=call.query, render=issuer_json)
    )


def retrieve_issuer(call: Call) -> Response:
    return Response(200, issuer_json(call.state.federation.issuer(call.params["issuer_id"])))


def update_issuer(call: Call) -> Response:
    body = _object(call.body, _ISSUER_FIELDS | {"jwks_polling_disabled"})
    if body.get("jwks_polling_disabled") is True:
        raise invalid_request("jwks_polling_disabled: only false is accepted")
    changes: dict[str, Any] = {
        name: value for name, value in body.items() if value is not None and name in _ISSUER_FIELDS
    }
    if "jwks" in changes:
        changes["jwks"] = parse_jwks(changes["jwks"])
    if "check_jti" in changes and not isinstance(changes["check_jti"], bool):
        raise invalid_request("check_jti: Input should be a boolean")
    issuer = call.state.federation.update_issuer(
        call.params["issuer_id"], changes, actor=_actor(call)
    )
    if body.get("jwks_polling_disabled") is False:
        issuer = call.state.federation.resume_polling(issuer.id)
    return Response(200, issuer_json(issuer))


def archive_issuer(call: Call) -> Response:
    issuer = call.state.federation.archive_issuer(call.params["issuer_id"], actor=_actor(call))
    return Response(200, issuer_json(issuer))


# ------------------------------------------------------------------------------ rules

_RULE_FIELDS = {
    "issuer_id",
    "match",
    "name",
    "oauth_scope",
    "target",
    "applies_to_all_workspaces",
    "attributes",
    "description",
    "token_lifetime_seconds",
    "workspace_id",
}


def _target_id(value: Any) -> str:
    if not isinstance(value, dict) or value.get("type") != "service_account":
        raise invalid_request("target: Input should be a service_account target")
    account_id = value.get("service_account_id")
    if not isinstance(account_id, str) or not account_id:
        raise invalid_request("target.service_account_id: Field required")
    return account_id


def _no_attributes(body: Mapping[str, Any]) -> None:
    if body.get("attributes"):
        raise invalid_request("attributes: not yet supported")


def create_rule(call: Call) -> Response:
    body = _object(call.body, _RULE_FIELDS)
    _no_attributes(body)
    applies_all = body.get("applies_to_all_workspaces", False)
    if not isinstance(applies_all, bool):
        raise invalid_request("applies_to_all_workspaces: Input should be a boolean")
    lifetime = body.get("token_lifetime_seconds")
    rule = call.state.federation.create_rule(
        name=body.get("name"),
        issuer_id=body.get("issuer_id"),
        match=parse_match(body.get("match")),
        oauth_scope=body.get("oauth_scope"),
        service_account_id=_target_id(body.get("target")),
        token_lifetime_seconds=DEFAULT_TOKEN_LIFETIME_S if lifetime is None else lifetime,
        applies_to_all_workspaces=applies_all,
        workspace_id=body.get("workspace_id"),
        description=body.get("description"),
        actor=_actor(call),
    )
    return Response(200, rule_json(rule, call.state))


def list_rules(call: Call) -> Response:
    rules = call.state.federation.list_rules(
        include_archived=_flag(call.query, "include_archived"),
        issuer_id=call.query.one("issuer_id") or None,
    )
    state = call.state
    return Response(
        200,
        cursor_page(
            rules, id_of=lambda r: r.id, query=call.query, render=lambda r: rule_json(r, state)
        ),
    )


def retrieve_rule(call: Call) -> Response:
    return Response(200, rule_json(call.state.federation.rule(call.params["rule_id"]), call.state))


def update_rule(call: Call) -> Response:
    body = _object(call.body, _RULE_FIELDS - {"issuer_id"})
    _no_attributes(body)
    changes: dict[str, Any] = {}
    converters: dict[str, Callable[[Any], Any]] = {
        "match": parse_match,
        "target": _target_id,
    }
    for name, value in body.items():
        if name == "attributes":
            continue
        if name == "description":
            changes[name] = value
            continue
        if value is None:
            continue
        key = "service_account_id" if name == "target" else name
        changes[key] = converters.get(name, lambda v: v)(value)
    rule = call.state.federation.update_rule(call.params["rule_id"], changes, actor=_actor(call))
    return Response(200, rule_json(rule, call.state))


def archive_rule(call: Call) -> Response:
    rule = call.state.federation.archive_rule(call.params["rule_id"], actor=_actor(call))
    return Response(200, rule_json(rule, call.state))


def list_rule_workspaces(call: Call) -> Response:
    registry = call.state.federation
    rule = registry.rule(call.params["rule_id"])
    data = [
        rule_workspace_json(rule.id, enabled, registry.workspace(enabled.workspace_id).name)
        for enabled in rule.workspaces
    ]
    return Response(200, {"data": data, "next_page": None})


def add_rule_workspace(call: Call) -> Response:
    body = _object(call.body, {"workspace_id"})
    rule_id = call.params["rule_id"]
    enabled = call.state.federation.enable_rule_workspace(
        rule_id, _required_str(body, "workspace_id"), actor=_actor(call)
    )
    return Response(200, rule_workspace_json(rule_id, enabled, None))


def remove_rule_workspace(call: Call) -> Response:
    rule_id, workspace_id = call.params["rule_id"], call.params["workspace_id"]
    call.state.federation.disable_rule_workspace(rule_id, workspace_id)
    return Response(
        200,
        {
            "type": "federation_rule_workspace_deleted",
            "federation_rule_id": rule_id,
            "workspace_id": workspace_id,
        },
    )
