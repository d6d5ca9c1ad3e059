"""Role policy: every check allowed and denied, budgets over time, hours, role assignment."""

from __future__ import annotations

import calendar
import dataclasses
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claudesec.config import Config, IdentityConfig, PolicyConfig, RoleConfig
from claudesec.errors import ConfigError
from claudesec.guard.budget import InMemoryBudgetLedger
from claudesec.guard.identity import Identity, trusted_identity
from claudesec.guard.policy import (
    BINARY_BLOCK_TOKENS,
    Policy,
    PolicyRequest,
    Reason,
    estimate_input_tokens,
    hour_allowed,
    parse_hours,
    validate_policy,
)

NOON = float(calendar.timegm((2026, 3, 2, 12, 0, 0)))


def at(hour: int, minute: int = 0) -> float:
    return float(calendar.timegm((2026, 3, 2, hour, minute, 0)))


class Clock:
    def __init__(self, now: float = NOON) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


ROLES = {
    "analyst": RoleConfig(
        models=("claude-haiku-*", "claude-sonnet-4-[56]"),
        max_tokens=2048,
        max_input_tokens=1000,
        tokens_per_minute=1000,
        tokens_per_day=2500,
    ),
    "admin": RoleConfig(models=("claude-*",), max_tokens=8192, tools_allowed=True),
    "night": RoleConfig(models=("claude-haiku-*",), allowed_hours="22-06"),
}


def make_policy(
    users: dict[str, str] | None = None,
    roles: dict[str, RoleConfig] | None = None,
    clock: Clock | None = None,
) -> Policy:
    config = Config(
        policy=PolicyConfig(
            users={"alice": "analyst", "root": "admin", "owl": "night"} if users is None else users,
            roles=ROLES if roles is None else roles,
        )
    )
    return Policy.from_config(config, clock=clock or Clock())


def body(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "model": "claude-haiku-4-5",
        "max_tokens": 512,
        "messages": [{"role": "user", "content": "Summarise the incident report."}],
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def alice() -> Identity:
    return trusted_identity("alice")


def oidc(user: str, *roles: str) -> Identity:
    return Identity(user=user, roles=roles, source="oidc", issuer="https://idp", subject=user)


# --------------------------------------------------------------------------- checks


def test_allowed_request_runs_every_check() -> None:
    decision = make_policy().evaluate(alice(), body())
    assert decision.allowed
    assert decision.reason is Reason.ALLOWED
    assert decision.role == "analyst"
    assert [c.name for c in decision.checks] == [
        "identity",
        "model",
        "max_tokens",
        "input_tokens",
        "tools",
        "hours",
        "budget_minute",
        "budget_day",
    ]
    assert all(c.passed for c in decision.checks)
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.allowed = False  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"model": "claude-opus-4-1"}, Reason.MODEL_NOT_ALLOWED),
        ({"model": "claude-sonnet-4-7"}, Reason.MODEL_NOT_ALLOWED),
        ({"model": "CLAUDE-HAIKU-4-5"}, Reason.MODEL_NOT_ALLOWED),
        ({"max_tokens": 2049}, Reason.MAX_TOKENS_EXCEEDED),
        ({"messages": [{"role": "user", "content": "x" * 4004}]}, Reason.INPUT_TOO_LARGE),
        ({"tools": [{"name": "shell", "input_schema": {}}]}, Reason.TOOLS_NOT_ALLOWED),
        ({"mcp_servers": [{"type": "url", "url": "https://mcp"}]}, Reason.TOOLS_NOT_ALLOWED),
    ],
)
def test_each_check_denies(overrides: dict[str, Any], reason: Reason) -> None:
    decision = make_policy().evaluate(alice(), body(**overrides))
    assert not decision.allowed
    assert decision.reason is reason
    assert next(c for c in decision.checks if not c.passed).reason is reason
    assert reason.value in decision.message


def test_boundaries_are_inclusive() -> None:
    policy = make_policy()
    assert policy.evaluate(alice(), body(model="claude-sonnet-4-6", max_tokens=2048)).allowed
    exact = PolicyRequest(model="claude-haiku-4-5", max_tokens=2048, input_tokens=1000)
    assert policy.evaluate(alice(), exact).allowed


def test_a_role_with_tools_allowed_passes_tools() -> None:
    decision = make_policy().evaluate(
        trusted_identity("root"), body(model="claude-opus-4-1", tools=[{"name": "t"}])
    )
    assert decision.allowed, decision.message


def test_a_role_without_models_denies_everything() -> None:
    policy = make_policy(users={"u": "empty"}, roles={"empty": RoleConfig()})
    decision = policy.evaluate(trusted_identity("u"), body())
    assert decision.reason is Reason.MODEL_NOT_ALLOWED


@pytest.mark.parametrize(
    "bad",
    [
        {"max_tokens": 512, "messages": []},
        body(model=""),
        body(max_tokens=None),
        body(max_tokens="512"),
        body(max_tokens=True),
        body(max_tokens=0),
        body(messages="hello"),
    ],
)
def test_malformed_bodies_are_denied_not_raised(bad: dict[str, Any]) -> None:
    decision = make_policy().evaluate(alice(), bad)
    assert not decision.allowed
    assert decision.reason is Reason.MALFORMED_REQUEST


# --------------------------------------------------------------------------- who and which role


def test_unknown_trusted_user_is_denied() -> None:
    decision = make_policy().evaluate(trusted_identity("mallory"), body())
    assert decision.reason is Reason.UNKNOWN_USER
    assert [c.name for c in decision.checks] == ["identity"]


def test_trusted_caller_cannot_claim_roles_itself() -> None:
    forged = Identity(user="mallory", roles=("admin",), source="trusted")
    assert make_policy().evaluate(forged, body()).reason is Reason.UNKNOWN_USER


def test_asking_for_a_role_other_than_assigned_is_denied() -> None:
    policy = make_policy()
    assert policy.evaluate(alice(), body(), role="analyst").allowed
    decision = policy.evaluate(alice(), body(), role="admin")
    assert decision.reason is Reason.ROLE_NOT_ASSIGNED
    assert "'analyst'" in decision.message


def test_policy_users_override_token_groups() -> None:
    # alice's token says admin, but policy.users pins her to analyst.
    decision = make_policy().evaluate(oidc("alice", "admin"), body(model="claude-opus-4-1"))
    assert decision.reason is Reason.MODEL_NOT_ALLOWED
    assert decision.role == "analyst"


def test_oidc_user_not_in_policy_users_gets_mapped_roles() -> None:
    policy = make_policy()
    dana = oidc("dana@example.com", "analyst", "admin")
    # Several roles, none asked for: allowed when any of them allows it.
    decision = policy.evaluate(dana, body(model="claude-opus-4-1"))
    assert decision.allowed
    assert decision.role == "admin"
    assert policy.evaluate(dana, body(), role="analyst").role == "analyst"
    denied = policy.evaluate(dana, body(model="claude-opus-4-1"), role="analyst")
    assert denied.reason is Reason.MODEL_NOT_ALLOWED
    assert policy.evaluate(dana, body(), role="night").reason is Reason.ROLE_NOT_ASSIGNED


def test_oidc_user_without_mapped_roles_is_denied() -> None:
    assert make_policy().evaluate(oidc("eve"), body()).reason is Reason.UNKNOWN_USER


def test_role_from_token_that_policy_does_not_define_is_denied() -> None:
    decision = make_policy().evaluate(oidc("dana", "contractor"), body())
    assert decision.reason is Reason.UNKNOWN_ROLE


@settings(max_examples=200, deadline=None)
@given(
    role=st.text(min_size=1, max_size=30).filter(lambda r: r not in ROLES),
    user=st.text(min_size=1, max_size=30).filter(lambda u: u not in ("alice", "root", "owl")),
    model=st.text(max_size=40),
    max_tokens=st.integers(min_value=-5, max_value=10**6),
    source=st.sampled_from(["trusted", "oidc"]),
    ask=st.booleans(),
)
def test_an_unknown_role_is_always_denied(
    *, role: str, user: str, model: str, max_tokens: int, source: str, ask: bool
) -> None:
    if source == "oidc":
        policy = make_policy()
        identity = Identity(user=user, roles=(role,), source="oidc")
    else:
        # Built without validation: such a config never loads, but evaluation stays safe.
        policy = Policy(PolicyConfig(users={user: role}, roles=ROLES))
        identity = Identity(user=user, roles=(), source="trusted")
    decision = policy.evaluate(
        identity,
        {"model": model, "max_tokens": max_tokens, "messages": []},
        role=role if ask else None,
    )
    assert not decision.allowed
    assert decision.reason is Reason.UNKNOWN_ROLE


# --------------------------------------------------------------------------- hours


@pytest.mark.parametrize(
    ("spec", "allowed", "denied"),
    [
        ("08-19", [8, 12, 18], [7, 19, 23, 0]),
        ("22-06", [22, 23, 0, 3, 5], [6, 12, 21]),
        ("00-24", list(range(24)), []),
        ("9-17", [9, 16], [8, 17]),
        ("", list(range(24)), []),
    ],
)
def test_allowed_hours(spec: str, allowed: list[int], denied: list[int]) -> None:
    window = parse_hours(spec)
    assert all(hour_allowed(window, h) for h in allowed)
    assert not any(hour_allowed(window, h) for h in denied)


@pytest.mark.parametrize("spec", ["8", "08-08", "25-03", "08-25", "a-b", "08:00-19:00", "-1-5"])
def test_bad_hours_are_rejected(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_hours(spec)


def test_hours_are_checked_in_utc_with_wrap_around() -> None:
    clock = Clock()
    policy = make_policy(clock=clock)
    owl = trusted_identity("owl")
    for when, expected in [(at(23, 30), True), (at(2), True), (at(6), False), (NOON, False)]:
        clock.now = when
        decision = policy.evaluate(owl, body())
        assert decision.allowed is expected, decision.message
        if not expected:
            assert decision.reason is Reason.OUTSIDE_HOURS


# --------------------------------------------------------------------------- budgets


def test_minute_budget_slides_and_day_budget_spans_windows() -> None:
    clock = Clock()
    policy = make_policy(clock=clock)
    request = PolicyRequest(model="claude-haiku-4-5", max_tokens=100, input_tokens=100)
    policy.record_usage("alice", 950)
    assert policy.evaluate(alice(), request).reason is Reason.MINUTE_BUDGET_EXCEEDED
    small = dataclasses.replace(request, input_tokens=50)
    assert policy.evaluate(alice(), small).allowed  # 950 + 50 == 1000: at the cap
    clock.now += 59
    assert not policy.evaluate(alice(), request).allowed  # still inside the sliding minute
    clock.now += 2
    assert policy.evaluate(alice(), request).allowed
    # Spread usage over several minutes: each minute is fine, the day is not.
    for _ in range(2):
        policy.record_usage("alice", 800)
        clock.now += 61
    decision = policy.evaluate(alice(), request)
    assert decision.reason is Reason.DAY_BUDGET_EXCEEDED  # 2550 + 100 > 2500
    assert "2550 used" in decision.message
    clock.now += 86_400
    assert policy.evaluate(alice(), request).allowed


def test_budgets_are_per_user() -> None:
    policy = make_policy(users={"alice": "analyst", "bob": "analyst"})
    policy.record_usage("alice", 1000)
    assert not policy.evaluate(alice(), body()).allowed
    assert policy.evaluate(trusted_identity("bob"), body()).allowed


def test_unlimited_budgets_never_deny() -> None:
    policy = make_policy()
    policy.record_usage("root", 10**9)
    assert policy.evaluate(trusted_identity("root"), body()).allowed


def test_in_memory_ledger_is_thread_safe() -> None:
    ledger = InMemoryBudgetLedger()

    def spend() -> None:
        for i in range(500):
            ledger.charge("u", 2, NOON + (i % 30))

    threads = [threading.Thread(target=spend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert ledger.used("u", 60, NOON + 30) == 8 * 500 * 2


def test_in_memory_ledger_forgets_beyond_its_horizon() -> None:
    ledger = InMemoryBudgetLedger(horizon_s=100)
    ledger.charge("u", 5, 0)
    ledger.charge("u", 7, 50)
    assert ledger.used("u", 100, 99) == 12
    assert ledger.used("u", 100, 120) == 7
    ledger.charge("u", 0, 130)
    assert ledger.used("nobody", 60, 130) == 0


# --------------------------------------------------------------------------- estimation


def test_input_estimate_counts_every_text_part() -> None:
    request = {
        "model": "m",
        "max_tokens": 1,
        "system": [{"type": "text", "text": "s" * 40}],
        "messages": [
            {"role": "user", "content": "u" * 40},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "t" * 40, "signature": "sig" * 100},
                    {"type": "tool_use", "id": "1", "name": "calc", "input": {"q": "z" * 30}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "1",
                        "content": [{"type": "text", "text": "r" * 40}],
                    },
                    {"type": "image", "source": {"type": "base64", "data": "A" * 10_000}},
                    {"type": "document", "source": {"type": "text", "data": "d" * 40}},
                ],
            },
        ],
    }
    tool_use_chars = len('{"q":"' + "z" * 30 + '"}') + len("calc")
    expected_chars = 40 * 5 + tool_use_chars
    expected = -(-expected_chars // 4) + BINARY_BLOCK_TOKENS
    assert estimate_input_tokens(request) == expected
    assert PolicyRequest.from_body(request).input_tokens == expected


def test_tool_definitions_count_as_input() -> None:
    without = estimate_input_tokens(body())
    with_tools = estimate_input_tokens(body(tools=[{"name": "n", "description": "d" * 400}]))
    assert with_tools >= without + 100


def test_estimate_survives_odd_shapes() -> None:
    deep: Any = "x"
    for _ in range(100):
        deep = [{"type": "text", "content": deep}]
    assert estimate_input_tokens({"messages": [{"content": deep}, "junk", 3]}) >= 0
    assert estimate_input_tokens({"messages": "nope", "system": 42}) == 0


# --------------------------------------------------------------------------- config errors


@pytest.mark.parametrize(
    ("policy", "group_roles", "key"),
    [
        (PolicyConfig(users={"alice": "ghost"}, roles=ROLES), {}, "policy.users.alice"),
        (
            PolicyConfig(roles={"r": RoleConfig(allowed_hours="8 to 5")}),
            {},
            "policy.roles.r.allowed_hours",
        ),
        (PolicyConfig(roles={"r": RoleConfig(models=("claude-[",))}), {}, "policy.roles.r.models"),
        (PolicyConfig(roles={"r": RoleConfig(models=("",))}), {}, "policy.roles.r.models"),
        (PolicyConfig(roles={"r": RoleConfig(models=("a b",))}), {}, "policy.roles.r.models"),
        (PolicyConfig(roles={"r": RoleConfig(max_tokens=0)}), {}, "policy.roles.r.max_tokens"),
        (
            PolicyConfig(roles={"r": RoleConfig(max_input_tokens=-1)}),
            {},
            "policy.roles.r.max_input_tokens",
        ),
        (
            PolicyConfig(roles={"r": RoleConfig(tokens_per_day=-1)}),
            {},
            "policy.roles.r.tokens_per_day",
        ),
        (PolicyConfig(roles=ROLES), {"grp": "ghost"}, "identity.group_roles.grp"),
    ],
)
def test_policy_config_errors_name_the_key(
    policy: PolicyConfig, group_roles: dict[str, str], key: str
) -> None:
    with pytest.raises(ConfigError) as info:
        validate_policy(policy, group_roles, path="claudesec.toml")
    assert key in str(info.value)
    assert "\n" not in str(info.value)


def test_from_config_validates_identity_group_roles() -> None:
    config = Config(
        policy=PolicyConfig(roles=ROLES),
        identity=IdentityConfig(group_roles={"eng": "nope"}),
    )
    with pytest.raises(ConfigError, match=r"identity\.group_roles\.eng"):
        Policy.from_config(config)


def test_decision_to_dict_is_json_ready() -> None:
    import json

    data = make_policy().evaluate(alice(), body(model="claude-opus-4-1")).to_dict()
    assert json.loads(json.dumps(data))["reason"] == "model_not_allowed"
    assert data["checks"][1] == {
        "name": "model",
        "passed": False,
        "detail": data["checks"][1]["detail"],
    }
