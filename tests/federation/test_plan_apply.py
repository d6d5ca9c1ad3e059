"""plan / apply / list end to end: the CLI, the real SDK, the emulator's HTTP surface."""

from __future__ import annotations

import json

from tests.federation.conftest import GITHUB_LIKE, FedConfig
from tests.fixtures.cli import RunCli


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
