"""Live drills against stand-ins for the real endpoints: the Anthropic emulator for the API
and moto for Secrets Manager (its IAM has no policy simulator, so the simulator is a stub
that honours an explicit deny for everyone else, as IAM does)."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import pytest

from claudesec.anthropic_admin import AdminClient, probe_key
from claudesec.config import AnthropicConfig, Config, KeysConfig
from claudesec.drill.catalogue import select
from claudesec.drill.model import Status
from claudesec.drill.runner import run_drills
from claudesec.drill.settings import DrillSettings
from claudesec.emulator import Emulator
from claudesec.keys import scope
from claudesec.keys.model import utcnow
from claudesec.keys.rotation import KeyManager, Settings
from claudesec.stores.secretsmanager import SecretsManagerStore

ROTATOR = "arn:aws:iam::123456789012:role/rotator"


class FakeIam:
    def simulate_custom_policy(self, **kwargs: Any) -> dict[str, Any]:
        policy = json.loads(kwargs["ResourcePolicy"])
        caller = kwargs["CallerArn"]
        for statement in policy["Statement"]:
            allowed = statement.get("Condition", {}).get("StringNotEquals", {})
            if statement["Effect"] == "Deny" and caller not in allowed.get("aws:PrincipalArn", []):
                return {"EvaluationResults": [{"EvalDecision": "explicitDeny"}]}
        return {"EvaluationResults": [{"EvalDecision": "allowed"}]}


@pytest.fixture
def live(
    emulator: Emulator,
    aws_client: Callable[..., Any],
    aws_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[DrillSettings, Emulator, Any]:
    admin = emulator.state.add_key("admin")
    monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", admin.secret)
    sm = aws_client("secretsmanager")
    offset = {"value": timedelta()}

    def clock() -> datetime:
        return utcnow() + offset["value"]

    manager = KeyManager(
        SecretsManagerStore(sm),
        Settings(test_attempts=1, test_delay_s=0.0),
        admin=AdminClient(emulator.base_url, admin.secret, max_retries=0),
        probe=partial(probe_key, emulator.base_url, timeout_s=5),
        clock=clock,
        sleep=lambda _: None,
    )
    manager.add("app", emulator.state.add_key("api").secret)
    for _ in range(2):
        manager.pool_add(emulator.state.add_key("api").secret)
    manager.rotate(["app"], force=True)
    offset["value"] = timedelta(hours=25)  # past the overlap: the next run retires the old key
    manager.rotate(["app"])
    spec = scope.ScopeSpec(readers=(), rotator=ROTATOR, break_glass=())
    store = SecretsManagerStore(sm)
    for name in ("claudesec/app", "claudesec/pool"):
        store.put_policy(name, json.dumps(scope.build_policy(spec)))
    config = Config(
        anthropic=AnthropicConfig(base_url=emulator.base_url),
        keys=KeysConfig(aws_region="us-east-1", aws_endpoint_url=aws_endpoint, aws_max_attempts=1),
    )
    settings = DrillSettings(config=config, client_factory=lambda service: FakeIam())
    return settings, emulator, sm


def test_live_drills_pass_against_the_stand_ins(live: tuple[DrillSettings, Emulator, Any]) -> None:
    settings, _, _ = live
    report = run_drills(select((), ("live",)), settings)
    outcome = {r.name: (r.status, r.message) for r in report.results}
    if importlib.util.find_spec("claudesec.org.inventory") is None:
        # The live org reader is built on another branch: until it lands, that drill says so.
        status, message = outcome.pop("live-org-posture")
        assert status is Status.SKIPPED and "claudesec.org.inventory" in message
    assert all(status is Status.BLOCKED for status, _ in outcome.values()), outcome
    assert report.exit_code == 0


def test_live_drills_catch_a_stray_key_and_an_open_policy(
    live: tuple[DrillSettings, Emulator, Any],
) -> None:
    settings, emulator, sm = live
    emulator.state.add_key("api", name="made-by-hand")
    sm.put_resource_policy(
        SecretId="claudesec/app",
        ResourcePolicy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}
                ],
            }
        ),
    )
    report = run_drills(select((), ("live",)), settings)
    statuses = {r.name: r.status for r in report.results}
    assert statuses["live-no-unmanaged-active-key"] is Status.FAILED
    assert statuses["live-secret-policy-denies-unlisted"] is Status.FAILED
    assert statuses["live-rotated-out-key-rejected"] is Status.BLOCKED
    assert report.exit_code == 1
