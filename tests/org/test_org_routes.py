"""Who may call the organisation posture routes: an Admin key, and nothing less."""

from __future__ import annotations

import re

import pytest

from claudesec.emulator.org_api import ROUTE_SPECS
from tests.fixtures.emulator import SeededEmulator, http_request

SPECS = [(method, path) for method, path, _, _ in ROUTE_SPECS]


def _concrete(org: SeededEmulator, path: str) -> str:
    state = org.emulator.state
    values = {
        "workspace_id": org.org.workspace_ids[0],
        "invite_id": state.org.invites()[0]["id"],
        "external_key_id": state.org.external_keys()[0]["id"],
        "rbac_group_id": state.org.rbac_groups()[0]["id"],
    }
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


@pytest.mark.parametrize(("method", "path"), SPECS)
def test_an_api_key_or_no_key_is_refused(
    emulator_org: SeededEmulator, method: str, path: str
) -> None:
    url = _concrete(emulator_org, path)
    api_key = emulator_org.emulator.state.add_key("api", name="workload").secret

    anonymous = http_request(emulator_org.emulator, method, url)
    workload = http_request(emulator_org.emulator, method, url, api_key=api_key)

    assert anonymous.status == 401
    assert workload.status == 403
    assert workload.json()["error"]["type"] == "permission_error"
    assert len(emulator_org.emulator.state.org.invites()) == 2  # nothing was deleted


@pytest.mark.parametrize(("method", "path"), [s for s in SPECS if s[0] == "GET"])
def test_the_admin_key_reads_every_route(
    emulator_org: SeededEmulator, method: str, path: str
) -> None:
    url = _concrete(emulator_org, path)
    if path.endswith("/rbac_groups/{rbac_group_id}") and "claude_code" in path:
        state = emulator_org.emulator.state
        state.org.set_claude_code_group(state.org.rbac_groups()[0]["id"], {"permissions": {}})

    answer = http_request(emulator_org.emulator, method, url, api_key=emulator_org.admin_key.secret)

    assert answer.status == 200, answer.body


def test_an_unknown_workspace_is_404(emulator_org: SeededEmulator) -> None:
    answer = http_request(
        emulator_org.emulator,
        "GET",
        "/v1/organizations/workspaces/wrkspc_01nope/members",
        api_key=emulator_org.admin_key.secret,
    )
    assert answer.status == 404


def test_an_unknown_page_cursor_is_400(emulator_org: SeededEmulator) -> None:
    answer = http_request(
        emulator_org.emulator,
        "GET",
        "/v1/organizations/rbac_roles?page=cur_forged",
        api_key=emulator_org.admin_key.secret,
    )
    assert answer.status == 400


@pytest.mark.parametrize(("amount", "status"), [("500.00", 400), ("-5", 400), ("50000", 200)])
def test_a_spend_limit_amount_is_whole_cents(
    emulator_org: SeededEmulator, amount: str, status: int
) -> None:
    """BetaSpendLimit.amount is an integer in the minor unit: "50000" is $500.00."""
    answer = http_request(
        emulator_org.emulator,
        "POST",
        "/v1/organizations/spend_limits",
        body={"scope": {"type": "organization"}, "amount": amount},
        api_key=emulator_org.admin_key.secret,
    )
    assert answer.status == status, answer.body
