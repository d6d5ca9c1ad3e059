"""From leak to dead key: `scan --verify --revoke` identifies a live Anthropic key through the
Admin API and deactivates it through the `keys revoke` path (issue 16 item 8).

moto's server holds the managed secrets and the pool, the emulator is the Anthropic API; the
consumer's calls go through the real SDK.
"""

from __future__ import annotations

import json
import random
import string
from pathlib import Path
from typing import Any

import pytest

from claudesec.audit.store import AuditStore
from claudesec.config import load_config
from claudesec.keys.consumer import current_key
from tests.fixtures.cli import RunCli
from tests.fixtures.emulator import MODEL
from tests.fixtures.sinks import WebhookServer
from tests.keys.conftest import Rig


def _leak(tmp_path: Path, *keys: str) -> Path:
    repo = tmp_path / "leaky"
    repo.mkdir(exist_ok=True)
    lines = "".join(f'ANTHROPIC_API_KEY_{i} = "{key}"\n' for i, key in enumerate(keys))
    (repo / "settings.py").write_text(lines)
    return repo


def _scan(run_cli: RunCli, repo: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    result = run_cli("scan", str(repo), "--no-git", "-f", "json", *extra)
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else {}


def _calls(rig: Rig, key: str) -> int:
    """HTTP status of one real SDK call with ``key``."""
    import anthropic

    client = anthropic.Anthropic(api_key=key, base_url=rig.emulator.base_url, max_retries=0)
    with client:
        try:
            client.messages.create(
                model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}]
            )
        except anthropic.APIStatusError as exc:
            return exc.status_code
    return 200


def _key_events() -> list[dict[str, Any]]:
    """Every key event the CLI wrote to the audit store, in order."""
    store = AuditStore.from_config(load_config().config.audit)
    try:
        stored = [store.get(seq) for seq in range(1, store.head().seq + 1)]
    finally:
        store.close()
    return [
        {**e.event.extra, "step": e.event.reason}
        for e in stored
        if e is not None and "key_event" in e.event.extra
    ]


def _leak_events() -> list[dict[str, Any]]:
    return [e for e in _key_events() if e["key_event"] == "leak_response"]


def test_an_unmanaged_live_key_is_identified_and_revoked(
    rig: Rig, keys_config: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    leaked = rig.new_key()
    assert _calls(rig, leaked.secret) == 200
    code, report = _scan(run_cli, _leak(tmp_path, leaked.secret), "--revoke")

    assert code == 1  # the leak is still in the code: the scan fails
    (finding,) = report["findings"]
    assert finding["verification"] == "live"
    assert finding["response"]["action"] == "revoked"
    detail = finding["response"]["detail"]
    assert leaked.id in detail and "not managed by claudesec" in detail
    assert "now answers 401" in detail
    assert leaked.secret not in json.dumps(report)
    assert rig.emulator.state.get_key(leaked.id).status == "inactive"
    assert _calls(rig, leaked.secret) == 401
    (event,) = _leak_events()
    assert event["action"] == "revoked" and event["key_id"] == leaked.id
    assert event["found_at"] == "settings.py:1"


def test_a_managed_key_is_rotated_to_a_spare_and_consumers_keep_working(
    rig: Rig, keys_config: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    leaked = rig.managed("app")
    (spare,) = rig.spares(1)
    config = load_config().config
    assert current_key("app", config, ttl_s=0) == leaked.secret

    code, report = _scan(run_cli, _leak(tmp_path, leaked.secret), "--revoke")

    assert code == 1
    (finding,) = report["findings"]
    assert finding["response"]["action"] == "rotated"
    assert "claudesec manages it as app AWSCURRENT" in finding["response"]["detail"]
    assert _calls(rig, leaked.secret) == 401
    # A consumer that re-reads the secret (as on a 401) gets the spare, which works.
    assert current_key("app", config, ttl_s=0) == spare.secret
    assert _calls(rig, current_key("app", config, ttl_s=0)) == 200
    assert leaked.id in rig.manager.pool.read().revoked  # `keys revoke`'s durable record
    steps = [e["step"] for e in _key_events()]
    # `keys revoke`'s steps in its order: recorded, deactivated and proved, then rotated.
    assert steps.index("revoke_marked") < steps.index("revoke") < steps.index("leak_response")
    assert [e["action"] for e in _leak_events()] == ["rotated"]


def test_a_dead_key_is_reported_and_not_failed(
    rig: Rig, keys_config: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    dead = rig.new_key(status="inactive")
    code, report = _scan(run_cli, _leak(tmp_path, dead.secret), "--revoke", "--fail-on", "live")

    assert code == 0
    (finding,) = report["findings"]
    assert finding["verification"] == "invalid"
    assert finding["response"] is None  # nothing to revoke, nothing asked of the Admin API
    assert _leak_events() == []


def _same_hint_secrets() -> tuple[str, str]:
    rng = random.Random("same-hint")
    alphabet = string.ascii_letters + string.digits + "_-"

    def body() -> str:
        return "Qz7" + "".join(rng.choice(alphabet) for _ in range(88)) + "k2"

    prefix = "sk-ant-" + "api03-"
    return prefix + body() + "AA", prefix + body() + "AA"


def test_a_hint_two_keys_share_is_refused_not_guessed(
    rig: Rig, keys_config: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    first, second = _same_hint_secrets()
    one = rig.emulator.state.add_key("api", secret=first)
    two = rig.emulator.state.add_key("api", secret=second)

    code, report = _scan(run_cli, _leak(tmp_path, first), "--revoke")

    assert code == 1
    (finding,) = report["findings"]
    assert finding["response"]["action"] == "refused"
    detail = finding["response"]["detail"]
    assert "2 keys share the hint" in detail and "will not guess" in detail
    assert one.id in detail and two.id in detail
    assert rig.emulator.state.get_key(one.id).status == "active"
    assert rig.emulator.state.get_key(two.id).status == "active"


def test_a_shared_hint_is_no_obstacle_when_claudesec_holds_the_very_key(
    rig: Rig, keys_config: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    first, second = _same_hint_secrets()
    managed = rig.emulator.state.add_key("api", secret=first)
    other = rig.emulator.state.add_key("api", secret=second)
    rig.manager.add("app", first, key_id=managed.id)
    rig.spares(1)

    code, report = _scan(run_cli, _leak(tmp_path, first), "--revoke")

    assert report["findings"][0]["response"]["action"] == "rotated"
    assert rig.emulator.state.get_key(managed.id).status == "inactive"
    assert rig.emulator.state.get_key(other.id).status == "active"
    assert code == 1


def test_revoke_without_an_admin_key_fails_closed_before_scanning(
    rig: Rig, keys_config: Path, tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    leaked = rig.new_key()
    monkeypatch.delenv("ANTHROPIC_ADMIN_KEY")
    result = run_cli("scan", str(_leak(tmp_path, leaked.secret)), "--no-git", "--revoke")

    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "--revoke needs an Anthropic Admin API key" in lines[0]
    assert "anthropic.admin_key_source" in lines[0]
    assert rig.emulator.state.get_key(leaked.id).status == "active"


def test_on_live_key_revoke_in_config_revokes_and_alerts(
    rig: Rig,
    keys_config: Path,
    tmp_path: Path,
    run_cli: RunCli,
    webhook_server: WebhookServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEAK_HOOK_URL", f"{webhook_server.url}/hooks/leaks")
    with keys_config.open("a", encoding="utf-8") as handle:
        handle.write(
            '\n[scan]\non_live_key = "revoke"\n\n'
            '[alerts.targets.hook]\ntype = "webhook"\nurl_source = "env:LEAK_HOOK_URL"\n'
        )
    leaked = rig.new_key()
    code, report = _scan(run_cli, _leak(tmp_path, leaked.secret))

    assert code == 1
    assert report["findings"][0]["response"]["action"] == "revoked"
    assert rig.emulator.state.get_key(leaked.id).status == "inactive"
    (message,) = webhook_server.messages
    text = json.dumps(message)
    assert "leaked_key" in text and leaked.id in text and "revoked" in text
    assert leaked.secret not in text
    # --no-revoke overrides the configuration: identified only.
    again = rig.new_key()
    code, report = _scan(run_cli, _leak(tmp_path, again.secret), "--no-revoke", "--verify")
    assert report["findings"][0]["response"] is None
    assert rig.emulator.state.get_key(again.id).status == "active"
