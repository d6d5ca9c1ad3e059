"""The TypeScript SDK (@anthropic-ai/sdk from npm, pinned) through the proxy: a call works with
the preset (clamped, audited), a planted key is redacted, and a refusal reaches the SDK as a
BadRequestError that names the reason, not as an authentication or permission failure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from claudesec.emulator import Emulator, generate_secret
from claudesec.guard.dlp import placeholder
from tests.clients.npm import NpmClients, Sentinel, loopback_env, run_json
from tests.fixtures.emulator import MODEL
from tests.proxy.conftest import RunningProxy
from tests.proxy.test_server import events

pytestmark = pytest.mark.timeout(600)
SCRIPT = Path(__file__).with_name("ts_client.cjs")


def ts_client(
    clients: NpmClients,
    proxy: RunningProxy,
    sentinel: Sentinel,
    tmp_path: Path,
    prompt: str,
    role: str = "bot",
) -> dict[str, Any]:
    env = loopback_env(
        tmp_path,
        sentinel,
        ANTHROPIC_BASE_URL=proxy.base_url,
        ANTHROPIC_API_KEY=proxy.token(user="svc", role=role),
        SDK_DIR=str(clients.node_modules / "@anthropic-ai" / "sdk"),
    )
    return run_json(["node", str(SCRIPT), MODEL, prompt], env, tmp_path)


def test_a_call_works_is_clamped_and_audited(
    npm_clients: NpmClients,
    preset_proxy: RunningProxy,
    emulator: Emulator,
    sentinel: Sentinel,
    tmp_path: Path,
) -> None:
    answer = ts_client(npm_clients, preset_proxy, sentinel, tmp_path, "hello from node")
    assert answer == {"ok": True, "text": "Emulated reply to: hello from node"}
    [sent] = emulator.state.requests(path="/v1/messages")
    assert sent.body["max_tokens"] == 16_000  # the agent preset's cap
    [call] = events(preset_proxy)
    assert (call.type, call.user, call.role) == ("call", "svc", "bot")
    assert call.extra["max_tokens_clamped"] == {"requested": 20_000, "cap": 16_000}
    assert sentinel.seen == []


def test_a_planted_key_is_redacted(
    npm_clients: NpmClients,
    preset_proxy: RunningProxy,
    emulator: Emulator,
    sentinel: Sentinel,
    tmp_path: Path,
) -> None:
    planted = generate_secret("api")
    answer = ts_client(npm_clients, preset_proxy, sentinel, tmp_path, f"check {planted}")
    assert answer["ok"] is True and planted not in str(answer)
    assert placeholder("anthropic-api-key") in answer["text"]
    [sent] = emulator.state.requests(path="/v1/messages")
    assert planted not in str(sent.body)
    [call] = events(preset_proxy)
    assert call.decision == "redact" and call.dlp_kinds == ("anthropic-api-key",)


def test_a_refusal_is_a_bad_request_naming_the_reason(
    npm_clients: NpmClients,
    preset_proxy: RunningProxy,
    emulator: Emulator,
    sentinel: Sentinel,
    tmp_path: Path,
) -> None:
    planted = generate_secret("api")
    answer = ts_client(
        npm_clients, preset_proxy, sentinel, tmp_path, f"check {planted}", role="dev"
    )
    assert (answer["ok"], answer["class"], answer["status"], answer["type"]) == (
        False,
        "BadRequestError",
        400,
        "invalid_request_error",
    )
    assert "claudesec: dlp.blocked: " in answer["message"] and "fix: " in answer["message"]
    assert planted not in str(answer)
    assert emulator.state.requests(path="/v1/messages") == []
    [denial] = events(preset_proxy)
    assert (denial.type, denial.reason) == ("denial", "dlp.blocked")
