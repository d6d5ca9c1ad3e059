"""Role presets: a preset fills in what a role leaves unset, an explicit setting wins, and a
misspelt preset is named with a suggestion."""

from __future__ import annotations

from pathlib import Path

import pytest

from claudesec.config import RoleConfig, load_config
from claudesec.errors import ConfigError
from claudesec.role_presets import PRESETS


def load(tmp_path: Path, roles: str) -> dict[str, RoleConfig]:
    (tmp_path / "claudesec.toml").write_text(roles, encoding="utf-8")
    return load_config(cwd=tmp_path, environ={}).config.policy.roles


def test_the_claude_code_preset_gives_what_claude_code_needs(tmp_path: Path) -> None:
    role = load(tmp_path, '[policy.roles.dev]\npreset = "claude-code"\n')["dev"]
    assert role.preset == "claude-code"
    assert role.tools_allowed and role.max_tokens_mode == "clamp"
    # Blocking stays on for what users paste; only the client's own fixed address is let
    # through (and still counted).
    assert role.dlp == "block" and role.models == ("claude-*",)
    assert role.dlp_allow_values == ("noreply@anthropic.com",)
    assert role.max_input_tokens >= 200_000


def test_an_explicit_setting_wins_over_the_preset(tmp_path: Path) -> None:
    roles = load(
        tmp_path,
        '[policy.roles.dev]\npreset = "claude-code"\ndlp = "block"\nmax_tokens = 8000\n'
        'models = ["claude-haiku-*"]\n',
    )
    assert (roles["dev"].dlp, roles["dev"].max_tokens) == ("block", 8000)
    assert roles["dev"].models == ("claude-haiku-*",)
    assert roles["dev"].tools_allowed  # still from the preset


def test_where_a_preset_value_came_from_is_recorded(tmp_path: Path) -> None:
    (tmp_path / "claudesec.toml").write_text(
        '[policy.roles.bot]\npreset = "workflow"\ntools_allowed = true\n', encoding="utf-8"
    )
    loaded = load_config(cwd=tmp_path, environ={})
    assert loaded.sources["policy.roles.bot.dlp"] == "preset workflow"
    assert loaded.sources["policy.roles.bot.tools_allowed"].endswith("claudesec.toml:3")


def test_a_misspelt_preset_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, '[policy.roles.dev]\npreset = "claude_code"\n')
    assert "unknown preset 'claude_code'" in caught.value.message
    assert caught.value.hint == "did you mean 'claude-code'?"
    assert caught.value.line == 2


def test_a_bad_max_tokens_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="max_tokens_mode"):
        load(tmp_path, '[policy.roles.dev]\nmax_tokens_mode = "trim"\n')


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_a_valid_role_and_documents_each_setting(
    tmp_path: Path, name: str
) -> None:
    from claudesec.config import Config, PolicyConfig
    from claudesec.guard.policy import Policy

    role = load(tmp_path, f'[policy.roles.r]\npreset = "{name}"\n')["r"]
    Policy.from_config(Config(policy=PolicyConfig(roles={"r": role})))
    docs = (Path(__file__).parents[1] / "docs" / "proxy.md").read_text(encoding="utf-8")
    assert f"`{name}`" in docs
    for key, setting in PRESETS[name].settings.items():
        assert getattr(role, key) == (
            tuple(setting.value) if isinstance(setting.value, list) else setting.value
        )
        assert setting.accepts
