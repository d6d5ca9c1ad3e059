"""plan / apply / list end to end: the CLI, the real SDK, the emulator's HTTP surface."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from tests.federation.conftest import GITHUB_LIKE, FedConfig
from tests.fixtures.cli import RunCli
from tests.fixtures.emulator import MODEL

if TYPE_CHECKING:
    import anthropic


def test_plan_shows_creates_then_apply_makes_them_and_a_second_apply_is_a_no_op(
    fed_config: FedConfig, run_cli: RunCli
) -> None:
    config = fed_config.write(GITHUB_LIKE)
    plan = run_cli("-c", str(config), "federation", "plan", "-f", "json")
    assert plan.exit_code == 0, plan.stderr
    changes = json.loads(plan.stdout)["changes"]
    assert [(c["kind"], c["action"], c["name"]) for c in changes] == [
        ("issuer", "create", "github-actions"),
        ("service_account", "create", "deploy-bot"),
        ("membership", "add", "deploy-bot in prod"),
        ("rule", "create", "api-deploy-main"),
    ]
    applied = run_cli("-c", str(config), "federation", "apply", "--yes", "-f", "json")
    assert applied.exit_code == 0, applied.output
    assert json.loads(applied.stdout)["applied"] == 4
    again = run_cli("-c", str(config), "federation", "apply", "--yes", "-f", "json")
    assert again.exit_code == 0 and json.loads(again.stdout)["in_sync"] is True
    check = run_cli("-c", str(config), "federation", "plan", "--check", "-f", "text")
    assert check.exit_code == 0 and "no changes" in check.stdout


def _apply(run_cli: RunCli, config: object) -> dict[str, Any]:
    result = run_cli("-c", str(config), "federation", "apply", "--yes", "-f", "json")
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def _live_rule(admin: anthropic.Anthropic, name: str) -> Any:
    return next(r for r in admin.beta.organization.federation.rules.list() if r.name == name)


def test_a_rule_changed_in_the_console_shows_as_drift_and_apply_puts_it_back(
    fed_config: FedConfig, run_cli: RunCli, org_admin_client: anthropic.Anthropic
) -> None:
    config = fed_config.write(GITHUB_LIKE)
    _apply(run_cli, config)
    rule = _live_rule(org_admin_client, "api-deploy-main")
    # Someone widens the rule by hand, straight through the API (as the Console would).
    org_admin_client.beta.organization.federation.rules.update(
        rule.id, match={"subject_prefix": "repo:acme/*"}, token_lifetime_seconds=7200
    )
    drift = run_cli("-c", str(config), "federation", "plan", "--check", "-f", "json")
    assert drift.exit_code == 1
    (change,) = json.loads(drift.stdout)["changes"]
    assert (change["kind"], change["action"], change["id"]) == ("rule", "update", rule.id)
    fields = {c["field"]: c for c in change["changes"]}
    assert fields["match"]["before"] == {"subject_prefix": "repo:acme/*"}
    assert fields["match"]["after"]["subject_prefix"] == "repo:acme/api:environment:production"
    assert (
        fields["token_lifetime_seconds"]["before"],
        fields["token_lifetime_seconds"]["after"],
    ) == (
        7200,
        900,
    )
    text = run_cli("-c", str(config), "federation", "plan", "-f", "text")
    assert "~ update rule api-deploy-main" in text.stdout and "repo:acme/*" in text.stdout
    _apply(run_cli, config)
    assert _live_rule(org_admin_client, "api-deploy-main").match.subject_prefix == (
        "repo:acme/api:environment:production"
    )
    assert run_cli("-c", str(config), "federation", "plan", "--check").exit_code == 0


def test_objects_made_outside_the_config_are_archived_rules_first(
    fed_config: FedConfig, run_cli: RunCli, org_admin_client: anthropic.Anthropic
) -> None:
    config = fed_config.write(GITHUB_LIKE)
    _apply(run_cli, config)
    org = org_admin_client.beta.organization
    stray = org.service_accounts.create(name="stray-bot")
    issuer = next(i for i in org.federation.issuers.list() if i.name == "github-actions")
    org.federation.rules.create(
        name="hand-made",
        issuer_id=issuer.id,
        match={"subject_prefix": "repo:acme/other:ref:refs/heads/main"},
        oauth_scope="workspace:inference",
        target={"type": "service_account", "service_account_id": stray.id},
        workspace_id=fed_config.emulator.state.default_workspace_id,
    )
    plan = json.loads(run_cli("-c", str(config), "federation", "plan", "-f", "json").stdout)
    assert [(c["kind"], c["action"], c["name"]) for c in plan["changes"]] == [
        ("rule", "archive", "hand-made"),
        ("service_account", "archive", "stray-bot"),
    ]
    _apply(run_cli, config)
    assert [r.name for r in org.federation.rules.list()] == ["api-deploy-main"]
    assert org.service_accounts.retrieve(stray.id).archived_at is not None


def test_the_sdk_mints_with_the_rule_apply_created_and_calls_messages(
    fed_config: FedConfig, run_cli: RunCli, org_admin_client: anthropic.Anthropic
) -> None:
    import anthropic
    from anthropic.lib.credentials import WorkloadIdentityCredentials

    config = fed_config.write(GITHUB_LIKE)
    _apply(run_cli, config)
    rule = _live_rule(org_admin_client, "api-deploy-main")
    idp = fed_config.issuer
    workload = anthropic.Anthropic(
        base_url=fed_config.emulator.base_url,
        max_retries=0,
        credentials=WorkloadIdentityCredentials(
            identity_token_provider=lambda: idp.github_actions(
                "acme/api", environment="production", ref="refs/heads/main"
            ),
            federation_rule_id=rule.id,
            organization_id=fed_config.emulator.state.organization_id,
            workspace_id=fed_config.prod_workspace_id,
        ),
    )
    with workload:
        message = workload.messages.create(
            model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "hello"}]
        )
    assert message.content
    assert fed_config.emulator.state.tokens.events()[-1].outcome == "minted"
    # The same repository on a feature branch, or a fork's repository, cannot mint.
    for token in (
        idp.github_actions("acme/api", ref="refs/heads/feature"),
        idp.github_actions("evil/api", environment="production"),
    ):
        stranger = anthropic.Anthropic(
            base_url=fed_config.emulator.base_url,
            max_retries=0,
            credentials=WorkloadIdentityCredentials(
                identity_token_provider=lambda token=token: token,  # type: ignore[misc]
                federation_rule_id=rule.id,
                organization_id=fed_config.emulator.state.organization_id,
                workspace_id=fed_config.prod_workspace_id,
            ),
        )
        with stranger, pytest.raises(anthropic.AnthropicError):
            stranger.messages.create(
                model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "hi"}]
            )


def test_a_failed_step_leaves_the_rest_applied_and_exits_4(
    fed_config: FedConfig, run_cli: RunCli, org_admin_client: anthropic.Anthropic
) -> None:
    # The API refuses discovery over cleartext: that issuer fails, its rule is skipped, the
    # rest is applied and the report says which is which.
    broken = (
        GITHUB_LIKE
        + """
[[federation.issuers]]
name = "plain"
issuer_url = "http://idp.example.test"

[[federation.rules]]
name = "plain-rule"
issuer = "plain"
service_account = "deploy-bot"
workspace = "prod"
subject_prefix = "svc:app"
"""
    )
    config = fed_config.write(broken)
    result = run_cli("-c", str(config), "federation", "apply", "--yes", "-f", "json")
    assert result.exit_code == 4, result.output
    report = json.loads(result.stdout)
    outcomes = {(s["kind"], s["name"]): s["outcome"] for s in report["steps"]}
    assert outcomes[("issuer", "plain")] == "failed"
    assert outcomes[("rule", "plain-rule")] == "skipped"
    assert outcomes[("rule", "api-deploy-main")] == "applied"
    failed = next(s for s in report["steps"] if s["outcome"] == "failed")
    assert "https" in failed["detail"]
    assert [r.name for r in org_admin_client.beta.organization.federation.rules.list()] == [
        "api-deploy-main"
    ]


def test_apply_refuses_without_a_terminal_and_without_yes(
    fed_config: FedConfig, run_cli: RunCli
) -> None:
    config = fed_config.write(GITHUB_LIKE)
    result = run_cli("-c", str(config), "federation", "apply")
    assert result.exit_code == 2
    assert "apply needs --yes when not run on a terminal" in result.stderr
    assert fed_config.emulator.state.federation.list_issuers() == []


def test_plan_names_a_workspace_the_organisation_does_not_have(
    fed_config: FedConfig, run_cli: RunCli
) -> None:
    config = fed_config.write(GITHUB_LIKE.replace('"prod"', '"staging"'))
    result = run_cli("-c", str(config), "federation", "plan")
    assert result.exit_code == 2
    assert "workspace 'staging' does not exist in the organisation" in result.stderr


def test_an_empty_federation_config_never_plans_to_archive_the_organisation(
    fed_config: FedConfig, run_cli: RunCli, org_admin_client: anthropic.Anthropic
) -> None:
    org_admin_client.beta.organization.service_accounts.create(name="console-bot")
    config = fed_config.write("")
    result = run_cli("-c", str(config), "federation", "apply", "--yes")
    assert result.exit_code == 2 and "no [[federation.issuers]]" in result.stderr
    assert [a.name for a in org_admin_client.beta.organization.service_accounts.list()] == [
        "console-bot"
    ]


def test_list_shows_what_is_live(fed_config: FedConfig, run_cli: RunCli) -> None:
    config = fed_config.write(GITHUB_LIKE)
    _apply(run_cli, config)
    listed = json.loads(run_cli("-c", str(config), "federation", "list", "-f", "json").stdout)
    assert [i["name"] for i in listed["issuers"]] == ["github-actions"]
    assert [r["name"] for r in listed["rules"]] == ["api-deploy-main"]
    (account,) = listed["service_accounts"]
    assert account["name"] == "deploy-bot"
    explicit = {m["workspace_id"] for m in account["workspaces"] if not m["implicit"]}
    assert explicit == {fed_config.prod_workspace_id}
    text = run_cli("-c", str(config), "federation", "list", "-f", "text")
    assert text.exit_code == 0
    assert "api-deploy-main" in text.stdout and "prod:workspace_user" in text.stdout


def test_workspaces_roles_and_issuer_changes_follow_the_config(
    fed_config: FedConfig, run_cli: RunCli, org_admin_client: anthropic.Anthropic
) -> None:
    config = fed_config.write(GITHUB_LIKE)
    _apply(run_cli, config)
    first = _live_rule(org_admin_client, "api-deploy-main")
    second_issuer = """
[[federation.issuers]]
name = "github-enterprise"
preset = "github-actions"
issuer_url = "@ISSUER@"
ca_cert_file = "loopback-ca.pem"
"""
    changed = (
        GITHUB_LIKE.replace(
            'workspace = "prod"\nrepository', 'workspaces = ["prod", "default"]\nrepository'
        )
        .replace('role = "workspace_user"', 'role = "workspace_developer"')
        .replace(
            'issuer = "github-actions"\nservice_account',
            'issuer = "github-enterprise"\nservice_account',
        )
        .replace("scopes", "scopes")
        + second_issuer
    )
    config = fed_config.write(
        changed.replace(
            "token_lifetime_seconds = 900",
            'token_lifetime_seconds = 900\nscopes = ["workspace:developer"]',
        )
    )
    plan = json.loads(run_cli("-c", str(config), "federation", "plan", "-f", "json").stdout)
    assert [(c["kind"], c["action"], c["name"]) for c in plan["changes"]] == [
        ("issuer", "create", "github-enterprise"),
        ("membership", "update", "deploy-bot in prod"),
        ("rule", "replace", "api-deploy-main"),
    ]
    _apply(run_cli, config)
    rule = _live_rule(org_admin_client, "api-deploy-main")
    assert rule.id != first.id and rule.issuer_name == "github-enterprise"
    assert set(rule.workspace_ids) == {
        fed_config.prod_workspace_id,
        fed_config.emulator.state.default_workspace_id,
    }
    assert rule.oauth_scope == "workspace:developer"
    assert org_admin_client.beta.organization.federation.rules.retrieve(first.id).archived_at
    assert run_cli("-c", str(config), "federation", "plan", "--check").exit_code == 0
    # Back to inference only: an update in place (same issuer), scope narrowed.
    config = fed_config.write(changed)
    _apply(run_cli, config)
    narrowed = _live_rule(org_admin_client, "api-deploy-main")
    assert narrowed.id == rule.id and narrowed.oauth_scope == "workspace:inference"
    # One workspace again: the other one is disabled on the same rule.
    config = fed_config.write(
        changed.replace('workspaces = ["prod", "default"]', 'workspace = "prod"')
    )
    _apply(run_cli, config)
    single = _live_rule(org_admin_client, "api-deploy-main")
    assert single.id == rule.id and single.workspace_ids == [fed_config.prod_workspace_id]


def test_a_console_org_admin_rule_is_listed_as_blocked_and_never_touched(
    fed_config: FedConfig, run_cli: RunCli
) -> None:
    from claudesec.emulator.federation import RuleMatch

    config = fed_config.write(GITHUB_LIKE)
    _apply(run_cli, config)
    registry = fed_config.emulator.state.federation
    issuer = registry.list_issuers()[0]
    admin_bot = registry.create_service_account("admin-bot", organization_role="admin")
    console_rule = registry.create_rule(
        name="console-admin",
        issuer_id=issuer.id,
        match=RuleMatch(subject_prefix="repo:acme/infra:environment:admin"),
        oauth_scope="org:admin",
        service_account_id=admin_bot.id,
        workspace_id=fed_config.emulator.state.default_workspace_id,
        console=True,
    )
    plan = json.loads(run_cli("-c", str(config), "federation", "plan", "-f", "json").stdout)
    blocked = {c["name"]: c["blocked"] for c in plan["changes"]}
    assert "managed in the Console" in blocked["console-admin"]
    assert "still referenced by Console-managed rule(s) console-admin" in blocked["admin-bot"]
    result = run_cli("-c", str(config), "federation", "apply", "--yes", "-f", "json")
    assert result.exit_code == 3  # nothing could be applied
    assert {s["outcome"] for s in json.loads(result.stdout)["steps"]} == {"skipped"}
    assert registry.rule(console_rule.id).archived_at is None


def _on_a_terminal(args: list[str], answer: bytes) -> tuple[int, str]:
    """Run ``claudesec ARGS`` with a pseudo-terminal as stdin, answering its prompt."""
    import os
    import pty
    import subprocess
    import sys

    from tests.fixtures.cli import REPO_ROOT

    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "claudesec", *args],
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    os.close(slave)
    try:
        os.write(master, answer)
        out, _ = proc.communicate(timeout=120)
    finally:
        os.close(master)
    return proc.returncode, out.decode()


def test_apply_on_a_terminal_asks_and_applies_only_on_yes(fed_config: FedConfig) -> None:
    config = fed_config.write(GITHUB_LIKE)
    code, out = _on_a_terminal(["-c", str(config), "federation", "apply", "-f", "text"], b"n\n")
    assert code == 130 and "Apply these changes?" in out
    assert fed_config.emulator.state.federation.list_issuers() == []
    code, out = _on_a_terminal(["-c", str(config), "federation", "apply", "-f", "text"], b"y\n")
    assert code == 0, out
    assert "applied: create rule api-deploy-main" in out
    assert [i.name for i in fed_config.emulator.state.federation.list_issuers()] == [
        "github-actions"
    ]
