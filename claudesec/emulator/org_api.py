"""HTTP handlers of the organisation posture endpoints (users, invites, limits, telemetry...).

Each endpoint pages the way anthropic 2.16's resource does, so the SDK's iterators and
claudesec's inventory walk them unchanged: ``SyncPage`` endpoints (users, invites, workspace
members, webhooks) take ``limit`` with ``after_id``/``before_id`` and answer ``has_more``,
``first_id`` and ``last_id``; ``SyncPageCursor`` endpoints (rate limits, spend limits,
telemetry destinations, external keys, RBAC, Claude Code settings) take ``limit`` and an
opaque ``page`` and answer ``next_page``. Filters the SDK documents are honoured. The server's
route table (:data:`ROUTE_SPECS`, registered in :mod:`claudesec.emulator.server`) decides the
credential: all of these take an Admin API key, like the rest of the Admin API.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from claudesec.emulator.federation_api import Call
from claudesec.emulator.org_resources import Json
from claudesec.emulator.wire import (
    Query,
    Response,
    cursor_page,
    invalid_request,
    paginate,
    parse_rfc3339,
)

_PAGE_MAX = 1000  # SyncPage endpoints
_CURSOR_MAX = 100  # SyncPageCursor endpoints


def _same(item: Json) -> Json:
    return item


def _page(items: list[Json], query: Query, *, id_field: str = "id") -> Response:
    page = paginate(
        items,
        id_of=lambda item: str(item[id_field]),
        keep=lambda _: True,
        query=query,
        max_limit=_PAGE_MAX,
    )
    return Response(200, page.to_json(_same))


def _cursor(items: list[Json], query: Query, *, id_field: str = "id") -> Response:
    return Response(
        200,
        cursor_page(
            items,
            id_of=lambda item: str(item[id_field]),
            query=query,
            render=_same,
            max_limit=_CURSOR_MAX,
        ),
    )


def _known_workspace(call: Call) -> str:
    workspace_id = call.params["workspace_id"]
    call.state.federation.workspace(workspace_id)  # 404 when unknown
    return workspace_id


# ------------------------------------------------------------------------------ people


def list_users(call: Call) -> Response:
    email = call.query.one("email")
    roles = set(call.query.many("roles"))
    users = [
        u
        for u in call.state.org.users()
        if (not email or u["email"] == email) and (not roles or u["role"] in roles)
    ]
    return _page(users, call.query)


def _invite_status(invite: Json, now: datetime) -> Json:
    if invite["status"] == "pending" and parse_rfc3339(invite["expires_at"], field_name="") <= now:
        return {**invite, "status": "expired"}
    return invite


def list_invites(call: Call) -> Response:
    now = call.state.now()
    email = call.query.one("email")
    roles = set(call.query.many("roles"))
    statuses = set(call.query.many("statuses"))
    invites = [
        i
        for i in (_invite_status(i, now) for i in call.state.org.invites())
        if (not email or i["email"] == email)
        and (not roles or i["role"] in roles)
        and (not statuses or i["status"] in statuses)
    ]
    return _page(invites, call.query)


def delete_invite(call: Call) -> Response:
    return Response(200, call.state.org.delete_invite(call.params["invite_id"]))


def list_members(call: Call) -> Response:
    members = call.state.org.members(_known_workspace(call))
    return _page(members, call.query, id_field="user_id")


# ------------------------------------------------------------------------------ limits


def _group_type(query: Query) -> str | None:
    value = query.one("group_type") or None
    allowed = ("batch", "files", "model_group", "skills", "token_count", "web_search")
    if value is not None and value not in allowed:
        raise invalid_request(f"group_type: Input should be one of {', '.join(allowed)}")
    return value


def list_workspace_rate_limits(call: Call) -> Response:
    group_type = _group_type(call.query)
    inherited = (call.query.one("include_inherited") or "false").lower() == "true"
    limits = [
        limit
        for limit in call.state.org.workspace_rate_limits(
            _known_workspace(call), include_inherited=inherited
        )
        if group_type is None or limit["group"]["type"] == group_type
    ]
    return _cursor(limits, call.query, id_field="rate_limit_id")


def list_rate_limits(call: Call) -> Response:
    group_type = _group_type(call.query)
    model = call.query.one("model") or None
    limits = [
        limit
        for limit in call.state.org.rate_limits()
        if (group_type is None or limit["group"]["type"] == group_type)
        and (model is None or not limit["models"] or model in limit["models"])
    ]
    return _cursor(limits, call.query)


def list_spend_limits(call: Call) -> Response:
    scope_types = set(call.query.many("scope_type"))
    workspace_id = call.query.one("workspace_id") or None
    limits = [
        limit
        for limit in call.state.org.spend_limits()
        if (not scope_types or limit["scope"]["type"] in scope_types)
        and (workspace_id is None or limit["scope"].get("workspace_id") == workspace_id)
    ]
    return _cursor(limits, call.query)


def set_spend_limit(call: Call) -> Response:
    body = call.body if isinstance(call.body, dict) else None
    if body is None:
        raise invalid_request("Request body must be a JSON object")
    scope = body.get("scope")
    if not isinstance(scope, dict) or scope.get("type") not in (
        "organization",
        "workspace",
        "user",
    ):
        raise invalid_request("scope: Input should be an organization, workspace or user scope")
    if scope["type"] == "workspace":
        call.state.federation.workspace(str(scope.get("workspace_id")))
    amount = body.get("amount")
    # A non-negative integer in the currency's minor unit ("50000" is $500.00), as
    # BetaSpendLimit.amount says; "500.00" is not a valid amount.
    if amount is not None and not (
        isinstance(amount, str) and amount.isascii() and amount.isdigit()
    ):
        raise invalid_request(
            "amount: Input should be a non-negative integer string in the minor unit (cents)"
        )
    period = body.get("period") or "monthly"
    if period not in ("daily", "weekly", "monthly"):
        raise invalid_request("period: Input should be 'daily', 'monthly' or 'weekly'")
    record = call.state.org.set_spend_limit(
        scope, amount, period=period, is_enabled=bool(body.get("is_enabled", True))
    )
    return Response(200, record)


# ------------------------------------------------------------------------------ telemetry, hooks


def list_telemetry_destinations(call: Call) -> Response:
    return _cursor(call.state.org.telemetry_destinations(), call.query)


def list_webhooks(call: Call) -> Response:
    order = call.query.one("order") or "desc"
    if order not in ("asc", "desc"):
        raise invalid_request("order: Input should be 'asc' or 'desc'")
    hooks = call.state.org.webhooks()
    return _page(hooks if order == "asc" else hooks[::-1], call.query)


def compliance_settings(call: Call) -> Response:
    return Response(200, call.state.org.compliance())


# ------------------------------------------------------------------------------ external keys


def list_external_keys(call: Call) -> Response:
    return _cursor(call.state.org.external_keys(), call.query)


def validate_external_key(call: Call) -> Response:
    return Response(200, call.state.org.validate_external_key(call.params["external_key_id"]))


# ------------------------------------------------------------------------------ RBAC


def list_rbac_roles(call: Call) -> Response:
    return _cursor(call.state.org.rbac_roles(), call.query)


def list_rbac_groups(call: Call) -> Response:
    return _cursor(call.state.org.rbac_groups(), call.query)


def list_rbac_group_members(call: Call) -> Response:
    members = call.state.org.group_members(call.params["rbac_group_id"])
    return _cursor(members, call.query, id_field="user_id")


# ------------------------------------------------------------------------------ Claude Code


def claude_code_configuration(call: Call) -> Response:
    return Response(200, call.state.org.claude_code_configuration())


def claude_code_default(call: Call) -> Response:
    return Response(200, call.state.org.claude_code_default())


def list_claude_code_groups(call: Call) -> Response:
    return _cursor(call.state.org.claude_code_groups(), call.query, id_field="rbac_group_id")


def claude_code_group(call: Call) -> Response:
    return Response(200, call.state.org.claude_code_group(call.params["rbac_group_id"]))


_Handler = Callable[[Any], Response]
_ORG = "/v1/organizations"
_CC = f"{_ORG}/claude_code/managed_settings"

# (method, path, credential scope, handler): the server turns each into a route.
ROUTE_SPECS: tuple[tuple[str, str, Literal["admin"], _Handler], ...] = (
    ("GET", f"{_ORG}/users", "admin", list_users),
    ("GET", f"{_ORG}/invites", "admin", list_invites),
    ("DELETE", f"{_ORG}/invites/{{invite_id}}", "admin", delete_invite),
    ("GET", f"{_ORG}/workspaces/{{workspace_id}}/members", "admin", list_members),
    (
        "GET",
        f"{_ORG}/workspaces/{{workspace_id}}/rate_limits",
        "admin",
        list_workspace_rate_limits,
    ),
    ("GET", f"{_ORG}/rate_limits", "admin", list_rate_limits),
    ("GET", f"{_ORG}/spend_limits", "admin", list_spend_limits),
    ("POST", f"{_ORG}/spend_limits", "admin", set_spend_limit),
    ("GET", f"{_ORG}/telemetry_destinations", "admin", list_telemetry_destinations),
    ("GET", f"{_ORG}/webhooks", "admin", list_webhooks),
    ("GET", f"{_ORG}/compliance_settings", "admin", compliance_settings),
    ("GET", f"{_ORG}/external_keys", "admin", list_external_keys),
    (
        "POST",
        f"{_ORG}/external_keys/{{external_key_id}}/validate",
        "admin",
        validate_external_key,
    ),
    ("GET", f"{_ORG}/rbac_roles", "admin", list_rbac_roles),
    ("GET", f"{_ORG}/rbac_groups", "admin", list_rbac_groups),
    ("GET", f"{_ORG}/rbac_groups/{{rbac_group_id}}/members", "admin", list_rbac_group_members),
    ("GET", f"{_CC}/configuration", "admin", claude_code_configuration),
    ("GET", f"{_CC}/rbac_group_default", "admin", claude_code_default),
    ("GET", f"{_CC}/rbac_groups", "admin", list_claude_code_groups),
    ("GET", f"{_CC}/rbac_groups/{{rbac_group_id}}", "admin", claude_code_group),
)
