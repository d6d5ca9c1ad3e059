"""Real clients (Claude Code, the TypeScript SDK, an MCP server) through a real proxy, in
front of the emulator, with the roles configured as docs/proxy.md tells a new user to."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from claudesec.config import Config, load_config
from tests.clients.npm import NpmClients, install, sentinel  # noqa: F401  (fixture)
from tests.proxy.conftest import KEY_VAR, RunningProxy, start_proxy  # noqa: F401  (fixture)

ROLES = """
[policy.roles.dev]
preset = "claude-code"

[policy.roles.redactor]
preset = "claude-code"
dlp = "redact"

[policy.roles.bot]
preset = "agent"
"""


def preset_config(tmp_path: Path) -> Config:
    (tmp_path / "claudesec.toml").write_text(
        ROLES
        + f'\n[audit]\nstore_path = "{tmp_path / "audit.db"}"\nsample_rates = {{}}\n'
        + f'\n[proxy]\nkey_source = "env:{KEY_VAR}"\ntoken_store = "{tmp_path / "tokens.json"}"\n',
        encoding="utf-8",
    )
    return load_config(tmp_path / "claudesec.toml", environ={}).config


@pytest.fixture
def preset_proxy(start_proxy: Callable[..., RunningProxy], tmp_path: Path) -> RunningProxy:  # noqa: F811
    return start_proxy(preset_config(tmp_path))


@pytest.fixture(scope="session")
def npm_clients() -> NpmClients:
    """Claude Code and the TypeScript SDK at their pinned versions, installed once per session."""
    return install()
