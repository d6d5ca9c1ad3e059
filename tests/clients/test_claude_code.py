"""Claude Code's own CLI (from npm, pinned) through the proxy, against the emulator: the first
call works with the documented preset, a tool turn completes, a planted key is redacted or
blocked as the role says, every call is audited, and nothing leaves loopback."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from faker import Faker

from claudesec.emulator import Emulator, generate_secret
from claudesec.guard.dlp import placeholder
from tests.clients.npm import NpmClients, Sentinel, loopback_env, run_json
from tests.proxy.conftest import RunningProxy
from tests.proxy.test_server import events

pytestmark = pytest.mark.timeout(600)


def claude(
    clients: NpmClients,
    proxy: RunningProxy,
    sentinel: Sentinel,
    tmp_path: Path,
    prompt: str,
    *,
    role: str = "dev",
    extra: tuple[str, ...] = (),
    device_id: str = "",
) -> dict[str, Any]:
    home, project = tmp_path / "cc-home", tmp_path / "project"
    home.mkdir(exist_ok=True)
    project.mkdir(exist_ok=True)
    if device_id:
        # Where Claude Code keeps the device id it sends as metadata.user_id's device_id.
        (home / ".claude.json").write_text(json.dumps({"userID": device_id}), encoding="utf-8")
    env = loopback_env(
        home,
        sentinel,
        ANTHROPIC_BASE_URL=proxy.base_url,
        ANTHROPIC_API_KEY=proxy.token(user="alice", role=role),
    )
    argv = [str(clients.claude), "-p", prompt, "--output-format", "json", *extra]
    return run_json(argv, env, project)


def proxied_calls(proxy: RunningProxy) -> list[Any]:
    return [e for e in events(proxy) if e.extra.get("via") == "proxy"]


def test_a_first_call_works_with_the_claude_code_preset(
    npm_clients: NpmClients,
    preset_proxy: RunningProxy,
    emulator: Emulator,
    sentinel: Sentinel,
    tmp_path: Path,
) -> None:
    result = claude(npm_clients, preset_proxy, sentinel, tmp_path, "say hello")
    assert result["is_error"] is False, result
    assert result["result"] == "Emulated reply to: say hello"
    sent = emulator.state.requests(path="/v1/messages")
    assert sent and all(r.status == 200 for r in sent)  # no retry on a refused shape
    recorded = proxied_calls(preset_proxy)
    assert [e.type for e in recorded] == ["call"] * len(sent)  # every call is in the log
    assert {(e.user, e.role) for e in recorded} == {("alice", "dev")}
    # Claude Code asks for more than the preset's cap: clamped, not refused.
    assert all(r.body["max_tokens"] <= 32_000 for r in sent)
    assert any("max_tokens_clamped" in e.extra for e in recorded)
    assert sentinel.seen == []  # nothing tried to leave loopback


def test_a_device_id_whose_digits_pass_a_card_check_is_not_blocked(
    npm_clients: NpmClients,
    preset_proxy: RunningProxy,
    emulator: Emulator,
    sentinel: Sentinel,
    tmp_path: Path,
) -> None:
    # 1 machine in 440 has such an id; every call from it was refused as holding a card number.
    fake = Faker()
    fake.seed_instance(secrets.randbits(32))
    device_id = ("f" + fake.credit_card_number("visa16") + "e" + secrets.token_hex(32))[:64]
    result = claude(npm_clients, preset_proxy, sentinel, tmp_path, "say hi", device_id=device_id)
    assert result["is_error"] is False, result
    sent = emulator.state.requests(path="/v1/messages")
    assert device_id in sent[0].body["metadata"]["user_id"]  # the id went out, unchanged
    assert all(e.type == "call" for e in proxied_calls(preset_proxy))


def test_a_tool_using_turn_completes(
    npm_clients: NpmClients,
    preset_proxy: RunningProxy,
    emulator: Emulator,
    sentinel: Sentinel,
    tmp_path: Path,
) -> None:
    notes = tmp_path / "project" / "notes.txt"
    notes.parent.mkdir()
    notes.write_text("the answer is 42\n", encoding="utf-8")
    prompt = f'[[tool:Read {{"file_path": "{notes}"}}]]'
    result = claude(
        npm_clients, preset_proxy, sentinel, tmp_path, prompt, extra=("--allowedTools", "Read")
    )
    assert result["is_error"] is False, result
    assert result["num_turns"] == 2
    assert "the answer is 42" in str(result["result"])
    recorded = proxied_calls(preset_proxy)
    assert len(recorded) == len(emulator.state.requests(path="/v1/messages")) >= 2
    assert all(e.type == "call" for e in recorded)
    assert sentinel.seen == []


def test_a_planted_key_is_redacted_for_a_redacting_role_on_the_preset(
    npm_clients: NpmClients,
    preset_proxy: RunningProxy,
    emulator: Emulator,
    sentinel: Sentinel,
    tmp_path: Path,
) -> None:
    planted = generate_secret("api")
    result = claude(
        npm_clients, preset_proxy, sentinel, tmp_path, f"why is {planted} refused", role="redactor"
    )
    assert result["is_error"] is False, result
    assert planted not in str(result)
    assert placeholder("anthropic-api-key") in str(result["result"])
    for request in emulator.state.requests():
        assert planted not in str(request.body)
    recorded = proxied_calls(preset_proxy)
    assert any(e.decision == "redact" and "anthropic-api-key" in e.dlp_kinds for e in recorded)
    assert sentinel.seen == []


def test_a_planted_key_is_blocked_and_claude_code_shows_why(
    npm_clients: NpmClients,
    preset_proxy: RunningProxy,
    emulator: Emulator,
    sentinel: Sentinel,
    tmp_path: Path,
) -> None:
    planted = generate_secret("api")
    result = claude(npm_clients, preset_proxy, sentinel, tmp_path, f"why is {planted} refused")
    assert result["is_error"] is True
    shown = str(result["result"])
    assert "claudesec: dlp.blocked" in shown and "fix:" in shown, shown
    assert "authenticate" not in shown.lower()
    assert planted not in str(result)
    assert emulator.state.requests(path="/v1/messages") == []
    # Claude Code tries a 400 three times, then once more in another shape: each attempt is
    # refused and recorded.
    recorded = proxied_calls(preset_proxy)
    assert recorded
    for denial in recorded:
        assert (denial.type, denial.reason, denial.extra["http_status"]) == (
            "denial",
            "dlp.blocked",
            400,
        )
        assert "anthropic-api-key" in denial.dlp_kinds
    assert sentinel.seen == []
