"""Which credential: federation commands need an org:admin OAuth token from the SDK's own
chain; the Admin API's key endpoints need an Admin API key. Each mismatch is one line naming
what is needed (exit 2 when claudesec can tell beforehand, 3 when Anthropic refuses)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from claudesec.anthropic_admin import AdminClient
from claudesec.emulator import Emulator
from claudesec.errors import ConfigError
from tests.federation.conftest import GITHUB_LIKE, FedConfig
from tests.fixtures.cli import RunCli


def test_an_api_key_in_the_environment_is_named_not_sent(
    fed_config: FedConfig, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin_key = fed_config.emulator.state.add_key("admin", name="ci-admin").secret
    monkeypatch.setenv("ANTHROPIC_API_KEY", admin_key)
    config = fed_config.write(GITHUB_LIKE)
    before = len(fed_config.emulator.state.requests())
    result = run_cli("-c", str(config), "federation", "list")
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "needs an OAuth access token with the org:admin scope" in line
    assert "ANTHROPIC_API_KEY (an Admin API key" in line
    assert admin_key not in result.output
    assert len(fed_config.emulator.state.requests()) == before  # nothing was sent


def test_an_admin_key_pasted_into_the_auth_token_variable_is_named(
    fed_config: FedConfig, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin_key = fed_config.emulator.state.add_key("admin", name="pasted").secret
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", admin_key)
    result = run_cli("-c", str(fed_config.write(GITHUB_LIKE)), "federation", "plan")
    assert result.exit_code == 2
    assert "ANTHROPIC_AUTH_TOKEN holds an Admin API key" in result.stderr
    assert admin_key not in result.output


def test_no_credential_at_all_says_how_to_get_one(
    fed_config: FedConfig, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN")
    monkeypatch.delenv("ANTHROPIC_CONFIG_DIR")  # the test's own HOME has no profile either
    result = run_cli("-c", str(fed_config.write(GITHUB_LIKE)), "federation", "list")
    assert result.exit_code == 2
    assert "no credential found" in result.stderr
    assert "ant auth login --scope org:admin" in result.stderr


def test_a_token_without_org_admin_is_refused_by_anthropic_with_what_is_needed(
    fed_config: FedConfig, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    inference = fed_config.emulator.state.add_oauth_token(scopes=("workspace:inference",))
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", inference.access_token)
    result = run_cli("-c", str(fed_config.write(GITHUB_LIKE)), "federation", "list")
    assert result.exit_code == 3, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "needs an OAuth access token with the org:admin scope" in line
    assert "ANTHROPIC_AUTH_TOKEN" in line
    assert inference.access_token not in result.output


def _write_profile(config_dir: Path, name: str, token: str, emulator: Emulator) -> None:
    (config_dir / "configs").mkdir(parents=True, exist_ok=True)
    (config_dir / "credentials").mkdir(parents=True, exist_ok=True)
    config = config_dir / "configs" / f"{name}.json"
    config.write_text(
        json.dumps(
            {
                "authentication": {"type": "user_oauth"},
                "organization_id": emulator.state.organization_id,
                "base_url": emulator.base_url,
            }
        )
    )
    config.chmod(0o644)
    credentials = config_dir / "credentials" / f"{name}.json"
    credentials.write_text(json.dumps({"type": "oauth_token", "access_token": token}))
    credentials.chmod(0o600)


def test_a_named_profile_is_used_even_beside_an_api_key(
    fed_config: FedConfig, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `ant auth login --scope org:admin --profile admin` writes these two files.
    token = os.environ["ANTHROPIC_AUTH_TOKEN"]
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN")
    monkeypatch.setenv("ANTHROPIC_API_KEY", fed_config.emulator.state.add_key("api").secret)
    _write_profile(Path(os.environ["ANTHROPIC_CONFIG_DIR"]), "admin", token, fed_config.emulator)
    config = fed_config.write(GITHUB_LIKE, extra='oauth_profile = "admin"')
    result = run_cli("-c", str(config), "federation", "apply", "--yes", "-f", "json")
    assert result.exit_code == 0, result.output
    missing = fed_config.write(GITHUB_LIKE, extra='oauth_profile = "nobody"')
    refused = run_cli("-c", str(missing), "federation", "list")
    assert refused.exit_code == 2 and "anthropic.oauth_profile 'nobody'" in refused.stderr


def test_the_admin_key_client_names_an_oauth_token_it_was_given(emulator: Emulator) -> None:
    token = emulator.state.add_oauth_token(scopes=("org:admin",)).access_token
    with pytest.raises(ConfigError) as caught:
        AdminClient(emulator.base_url, token, max_retries=0)
    message = str(caught.value)
    assert "need an Admin API key" in message and "OAuth access token" in message
    assert token not in message
