"""``keys exec --federation``: a command runs on workload identity federation, with no key.

The child is a real Python process with the real SDK: on the chain it exchanges its own
tokens; with ``--mint`` it gets one short-lived access token. No key reaches it, none is in
argv, and static credentials that would shadow the chain are not inherited."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.fixtures.cli import RunCli
from tests.fixtures.emulator import MODEL
from tests.fixtures.federation import FederationSetup

# The child proves the chain works by calling Messages through anthropic.Anthropic() with no
# argument; exit 3 if any static credential reached it.
CHILD = (
    "import os, sys, anthropic\n"
    "static = [v for v in ('ANTHROPIC_API_KEY', 'ANTHROPIC_ADMIN_KEY') if v in os.environ]\n"
    "if static: sys.exit(3)\n"
    "client = anthropic.Anthropic(max_retries=0)\n"
    f"client.messages.create(model={MODEL!r}, max_tokens=8,\n"
    "    messages=[{'role': 'user', 'content': 'hi'}])\n"
    "print('kind:', 'bearer' if os.environ.get('ANTHROPIC_AUTH_TOKEN') else 'chain')\n"
)


@pytest.fixture
def fed_env(federation: FederationSetup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    token_file = tmp_path / "token"
    token_file.write_text(federation.issuer.github_actions("acme/app", environment="prod"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "claudesec.toml").write_text(
        f'[anthropic]\nbase_url = "{federation.emulator.base_url}"\n'
    )
    monkeypatch.setenv("ANTHROPIC_BASE_URL", federation.emulator.base_url)
    monkeypatch.setenv("ANTHROPIC_CONFIG_DIR", str(tmp_path / "no-profiles"))
    # Present in the operator's shell: must not reach the child.
    monkeypatch.setenv("ANTHROPIC_API_KEY", "not-a-real-key-but-would-shadow-the-chain")
    monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", "not-a-real-admin-key")
    monkeypatch.setenv("ANTHROPIC_FEDERATION_RULE_ID", federation.rule_id)
    monkeypatch.setenv("ANTHROPIC_ORGANIZATION_ID", federation.organization_id)
    return token_file


def test_exec_on_the_chain_lets_the_child_exchange_its_own_tokens(
    federation: FederationSetup, fed_env: Path, run_cli: RunCli
) -> None:
    result = run_cli(
        "keys", "exec", "--federation", "--identity-token-file", str(fed_env),
        "--", sys.executable, "-c", CHILD,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    outcomes = [e.outcome for e in federation.emulator.state.tokens.events()]
    assert outcomes == ["minted"]
    [sent] = federation.emulator.state.requests(path="/v1/messages")
    assert sent.key_id is None and sent.status == 200


def test_exec_mint_hands_the_child_one_short_lived_token(
    federation: FederationSetup, fed_env: Path, run_cli: RunCli
) -> None:
    result = run_cli(
        "keys", "exec", "--federation", "--mint", "--identity-token-file", str(fed_env),
        "--", sys.executable, "-c", CHILD,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert [e.outcome for e in federation.emulator.state.tokens.events()] == ["minted"]
    [sent] = federation.emulator.state.requests(path="/v1/messages")
    assert (sent.credential_hint or "").startswith("sk-ant-oat01-")


def test_exec_federation_usage_errors(
    federation: FederationSetup, fed_env: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    assert run_cli("keys", "exec", "--", "true").exit_code == 2  # neither NAME nor --federation
    assert run_cli("keys", "exec", "--federation").exit_code == 2  # no command
    assert run_cli("keys", "exec", "--mint", "app", "--", "true").exit_code == 2
    missing = run_cli(
        "keys", "exec", "--federation", "--identity-token-file", str(tmp_path / "nope"),
        "--", "true",
    )  # fmt: skip
    assert missing.exit_code == 2 and "cannot be read" in missing.stderr


def test_exec_mint_refused_exchange_is_an_external_failure(
    federation: FederationSetup, fed_env: Path, run_cli: RunCli
) -> None:
    fed_env.write_text(federation.issuer.github_actions("evil/fork", environment="prod"))
    result = run_cli(
        "keys", "exec", "--federation", "--mint", "--identity-token-file", str(fed_env),
        "--", "true",
    )  # fmt: skip
    assert result.exit_code == 3
    assert "token exchange failed" in result.stderr
