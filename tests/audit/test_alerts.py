"""Alert rules, Slack/webhook delivery, de-duplication and rate limits."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest

from claudesec.audit.alerts import (
    AlertState,
    SlackTarget,
    WebhookTarget,
    evaluate,
    notify,
    sample_alert,
)
from claudesec.config import AlertsConfig
from tests.audit.export.helpers import register_commands, write_config
from tests.audit.helpers import event, open_store
from tests.fixtures.cli import RunCli
from tests.fixtures.sinks import WebhookServer

HOUR_NS = 3600 * 10**9


def at(hour: int) -> int:
    """Today at ``hour``:00 UTC, in ns (always in the past 24 h for an 'all day' query)."""
    midnight = (time.time_ns() // (24 * HOUR_NS)) * 24 * HOUR_NS
    moment = midnight + hour * HOUR_NS
    return moment if moment <= time.time_ns() else moment - 24 * HOUR_NS


def store_with_incidents(path: Path) -> None:
    now = time.time_ns()
    store = open_store(path)
    store.append_many(
        [
            event(1, time_ns=now - 5000, user="alice", input_tokens=12_000),
            event(
                2,
                time_ns=now - 4000,
                user="bob",
                type="denial",
                decision="deny",
                reason="model not allowed",
            ),
            event(
                3,
                time_ns=now - 3000,
                user="carol",
                type="dlp_hit",
                decision="deny",
                dlp_kinds=("anthropic-api-key",),
            ),
            *[
                event(
                    10 + i,
                    time_ns=now - 2000 + i,
                    user="mallory",
                    decision="error",
                    extra={"http_status": 401},
                )
                for i in range(5)
            ],
        ]
    )
    store.close()


def rules(**kw: object) -> AlertsConfig:
    return AlertsConfig(**kw)  # type: ignore[arg-type]


def test_rules_fire_for_each_kind_of_incident(tmp_path: Path) -> None:
    store_with_incidents(tmp_path / "audit.db")
    store = open_store(tmp_path / "audit.db")
    now = time.time_ns()
    alerts = evaluate(store, rules(user_token_budget=5000), since_ns=now - HOUR_NS, now_ns=now)
    found = {(a.rule, a.subject): a for a in alerts}
    assert found[("large_prompt", "alice")].detail["max_input_tokens"] == 12_000
    assert ("denial", "bob") in found and ("denial", "carol") in found
    assert found[("dlp", "carol")].detail["dlp_kinds"] == ["anthropic-api-key"]
    assert found[("token_budget", "alice")].detail["tokens"] == 12_011
    assert found[("auth_burst", "*")].count == 5
    assert not any(a.rule == "off_hours" for a in alerts)


def test_thresholds_are_respected(tmp_path: Path) -> None:
    store_with_incidents(tmp_path / "audit.db")
    store = open_store(tmp_path / "audit.db")
    now = time.time_ns()
    quiet = rules(prompt_tokens_over=20_000, on_denial=False, on_dlp=False, auth_failures=6)
    assert evaluate(store, quiet, since_ns=now - HOUR_NS, now_ns=now) == []


def test_calls_outside_allowed_hours(tmp_path: Path) -> None:
    store = open_store(tmp_path / "audit.db")
    store.append_many(
        [event(1, time_ns=at(3), user="night-owl"), event(2, time_ns=at(12), user="day")]
    )
    alerts = evaluate(store, rules(allowed_hours="08-18"), since_ns=0, now_ns=time.time_ns())
    assert [(a.rule, a.subject) for a in alerts] == [("off_hours", "night-owl")]


def test_slack_and_webhook_messages_carry_no_prompt_or_reason(
    tmp_path: Path, webhook_server: WebhookServer
) -> None:
    store_with_incidents(tmp_path / "audit.db")
    store = open_store(tmp_path / "audit.db")
    now = time.time_ns()
    alerts = evaluate(store, rules(), since_ns=now - HOUR_NS, now_ns=now)
    secret = "hook-signing-key-for-tests"
    targets = [
        SlackTarget("slack", webhook_server.slack_url),
        WebhookTarget("hook", f"{webhook_server.url}/hooks/claudesec", secret=secret),
    ]
    result = notify(alerts, targets, AlertState(tmp_path / "alerts.db"), rules(), now_ns=now)
    assert result.sent == 2 * len(alerts) and not result.failures
    texts = json.dumps(webhook_server.messages)
    assert "model not allowed" not in texts
    assert "prompt" not in texts.replace("large_prompt", "")
    hook = next(r for r in webhook_server.requests if r.path == "/hooks/claudesec")
    expected = hmac.new(secret.encode(), hook.body, hashlib.sha256).hexdigest()
    assert hook.headers["x-claudesec-signature"] == f"sha256={expected}"
    slack = [m for m in webhook_server.messages if "text" in m]
    assert any("dlp: user carol" in m["text"] for m in slack)


def test_duplicates_and_rate_limits_survive_restarts(
    tmp_path: Path, webhook_server: WebhookServer
) -> None:
    alert = sample_alert()
    target = [SlackTarget("slack", webhook_server.slack_url)]
    config = rules(max_per_minute=2)
    now = time.time_ns()
    first = notify([alert], target, AlertState(tmp_path / "a.db"), config, now_ns=now)
    again = notify([alert], target, AlertState(tmp_path / "a.db"), config, now_ns=now + 10**9)
    assert (first.sent, again.sent, again.duplicates) == (1, 0, 1)
    others = [type(alert)(f"r{i}", "u", 1, now, now) for i in range(3)]
    limited = notify(others, target, AlertState(tmp_path / "a.db"), config, now_ns=now + 2)
    assert (limited.sent, limited.rate_limited) == (1, 2)


def test_unreachable_target_is_reported_without_its_url(tmp_path: Path) -> None:
    result = notify(
        [sample_alert()],
        [SlackTarget("slack", "http://127.0.0.1:9/services/T/B/very-secret")],
        None,
        rules(),
    )
    assert result.sent == 0 and "very-secret" not in result.failures[0]


def test_cli_alerts_and_alerts_test(
    tmp_path: Path,
    webhook_server: WebhookServer,
    monkeypatch: pytest.MonkeyPatch,
    run_cli: RunCli,
) -> None:
    register_commands()
    monkeypatch.setenv("TEST_SLACK_URL", webhook_server.slack_url)
    write_config(
        Path.cwd(),
        f"""
[audit]
store_path = "{tmp_path / "audit.db"}"
[alerts.targets.slack]
type = "slack"
url_source = "env:TEST_SLACK_URL"
""",
    )
    sample = run_cli("logs", "alerts", "test")
    assert sample.exit_code == 0 and "sent a test alert to 1 of 1" in sample.stdout
    store_with_incidents(tmp_path / "audit.db")
    fired = run_cli("logs", "alerts", "--format", "json")
    assert fired.exit_code == 1, fired.output
    rules_fired = {json.loads(line)["rule"] for line in fired.stdout.splitlines()}
    assert rules_fired == {"large_prompt", "denial", "dlp", "auth_burst"}
    again = run_cli("logs", "alerts", "--format", "json")
    assert "0 sent, 5 already sent" in again.stderr
    assert len(webhook_server.messages) == 1 + 5
