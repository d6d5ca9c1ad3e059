from __future__ import annotations

import os
from pathlib import Path

import pytest
import tomlkit
from hypothesis import given
from hypothesis import strategies as st

from claudesec.config import Config, load_config, template
from claudesec.config_load import find_config_file
from claudesec.errors import ConfigError, ExitCode
from tests.fixtures.cli import RunCli


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_no_file_means_embedded_defaults(tmp_path: Path) -> None:
    loaded = load_config(cwd=tmp_path, environ={})
    assert loaded.path is None
    assert loaded.config == Config()
    assert loaded.sources == {}


def test_file_is_found_from_a_subdirectory_upwards(tmp_path: Path) -> None:
    write(tmp_path / "claudesec.toml", "[keys]\nmax_age_days = 30\n")
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    loaded = load_config(cwd=nested, environ={})
    assert loaded.path == tmp_path / "claudesec.toml"
    assert loaded.config.keys.max_age_days == 30
    assert loaded.sources["keys.max_age_days"] == f"{tmp_path / 'claudesec.toml'}:2"


def test_pyproject_tool_table_is_used(tmp_path: Path) -> None:
    write(
        tmp_path / "pyproject.toml",
        '[project]\nname = "x"\n\n[tool.claudesec.scan]\ndisabled_rules = ["jwt"]\n',
    )
    loaded = load_config(cwd=tmp_path, environ={})
    assert loaded.config.scan.disabled_rules == ("jwt",)


def test_pyproject_without_tool_table_is_skipped(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n')
    assert find_config_file(tmp_path) is None or find_config_file(tmp_path) != (
        tmp_path / "pyproject.toml"
    )


def test_explicit_path_wins(tmp_path: Path) -> None:
    write(tmp_path / "claudesec.toml", "[keys]\nmax_age_days = 30\n")
    other = write(tmp_path / "other.toml", "[keys]\nmax_age_days = 7\n")
    assert load_config(other, cwd=tmp_path, environ={}).config.keys.max_age_days == 7


def test_environment_overrides_file_and_is_named_as_source(tmp_path: Path) -> None:
    write(tmp_path / "claudesec.toml", "[keys]\nmax_age_days = 30\n")
    env = {"CLAUDESEC_KEYS_MAX_AGE_DAYS": "5", "CLAUDESEC_SCAN_DISABLED_RULES": "a, b"}
    loaded = load_config(cwd=tmp_path, environ=env)
    assert loaded.config.keys.max_age_days == 5
    assert loaded.config.scan.disabled_rules == ("a", "b")
    assert loaded.sources["keys.max_age_days"] == "env CLAUDESEC_KEYS_MAX_AGE_DAYS"


def test_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"CLAUDESEC_KEYS_MAX_AGE_DAYS: expected an integer"):
        load_config(cwd=tmp_path, environ={"CLAUDESEC_KEYS_MAX_AGE_DAYS": "soon"})


def test_unknown_environment_override_suggests_the_right_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean CLAUDESEC_KEYS_MAX_AGE_DAYS"):
        load_config(cwd=tmp_path, environ={"CLAUDESEC_KEYS_MAX_AGE_DAY": "5"})


def test_broken_toml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "claudesec.toml", "[keys]\nmax_age_days = 30\nstore = \n")
    with pytest.raises(ConfigError) as info:
        load_config(cwd=tmp_path, environ={})
    assert info.value.line == 3
    assert str(path) in info.value.user_message()
    assert info.value.exit_code == ExitCode.USAGE


def test_unknown_key_says_did_you_mean_with_line(tmp_path: Path) -> None:
    write(tmp_path / "claudesec.toml", "[keys]\n\nmax_age_dayz = 30\n")
    with pytest.raises(ConfigError) as info:
        load_config(cwd=tmp_path, environ={})
    message = info.value.user_message()
    assert "unknown key 'keys.max_age_dayz'" in message
    assert "did you mean 'max_age_days'" in message
    assert info.value.line == 3


def test_unknown_section_is_named(tmp_path: Path) -> None:
    write(tmp_path / "claudesec.toml", "[scna]\njobs = 2\n")
    with pytest.raises(ConfigError, match=r"unknown key 'scna'.*did you mean 'scan'"):
        load_config(cwd=tmp_path, environ={})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[keys]\nmax_age_days = "90"\n',
            "'keys.max_age_days' must be an integer, got string '90'",
        ),
        ("[audit]\nfail_closed = 1\n", "'audit.fail_closed' must be true or false, got integer 1"),
        ('[keys]\nstore = "vault"\n', "'keys.store' must be one of 'secretsmanager', 'keyring'"),
        ('[scan]\ndisabled_rules = "jwt"\n', "'scan.disabled_rules' must be an array of strings"),
        ("keys = 3\n", "'keys' must be a table"),
    ],
)
def test_wrong_type_names_key_and_expected_type(tmp_path: Path, text: str, expected: str) -> None:
    write(tmp_path / "claudesec.toml", text)
    with pytest.raises(ConfigError) as info:
        load_config(cwd=tmp_path, environ={})
    assert expected in info.value.user_message()


def test_roles_are_typed(tmp_path: Path) -> None:
    write(
        tmp_path / "claudesec.toml",
        '[policy.users]\nalice = "analyst"\n\n[policy.roles.analyst]\n'
        'models = ["claude-haiku-*"]\nmax_tokens = 512\n',
    )
    policy = load_config(cwd=tmp_path, environ={}).config.policy
    assert policy.users == {"alice": "analyst"}
    assert policy.roles["analyst"].models == ("claude-haiku-*",)
    assert policy.roles["analyst"].max_tokens == 512
    assert policy.roles["analyst"].dlp == "block"


def test_role_with_unknown_key_is_rejected_with_its_line(tmp_path: Path) -> None:
    write(tmp_path / "claudesec.toml", "[policy.roles.analyst]\nmax_token = 5\n")
    with pytest.raises(ConfigError) as info:
        load_config(cwd=tmp_path, environ={})
    assert "policy.roles.analyst.max_token" in info.value.message
    assert info.value.line == 2


def test_unreadable_config_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path / "claudesec.toml", "[keys]\n")
    path.write_bytes(b'[keys]\nstore = "\xff"\n')
    with pytest.raises(ConfigError, match="not valid UTF-8"):
        load_config(cwd=tmp_path, environ={})


def test_missing_explicit_config_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml", environ={})


def test_template_parses_to_the_defaults(tmp_path: Path) -> None:
    path = write(tmp_path / "claudesec.toml", template())
    assert load_config(path, environ={}).config == Config()


def test_template_keeps_comments_when_edited_with_tomlkit() -> None:
    doc = tomlkit.parse(template())
    doc["keys"]["max_age_days"] = 30  # type: ignore[index]
    edited = tomlkit.dumps(doc)
    assert "# Rotate keys older than this (0 = every run: every key is due)." in edited
    assert "max_age_days = 30" in edited


@given(st.integers(min_value=-(2**40), max_value=2**40))
def test_any_integer_in_the_domain_round_trips_and_any_other_is_refused(value: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.toml"
        path.write_text(f"[keys]\noverlap_hours = {value}\n", encoding="utf-8")
        if value >= 0:
            assert load_config(path, environ={}).config.keys.overlap_hours == value
        else:
            with pytest.raises(ConfigError, match=r"'keys\.overlap_hours' must be 0 or more"):
                load_config(path, environ={})
        path.write_text(f"[keys]\naws_max_attempts = {value}\n", encoding="utf-8")
        if value > 0:
            assert load_config(path, environ={}).config.keys.aws_max_attempts == value
        else:
            with pytest.raises(ConfigError, match=r"'keys\.aws_max_attempts' must be greater"):
                load_config(path, environ={})
        assert path.exists()


def test_negative_numbers_are_refused_and_zero_only_where_it_means_something(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[audit]\nretention_days = 0\n", encoding="utf-8")  # 0 = keep forever
    assert load_config(path, environ={}).config.audit.retention_days == 0
    path.write_text("[audit]\nretention_days = -1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"c\.toml:2: 'audit\.retention_days' must be 0 or more"):
        load_config(path, environ={})


def test_validate_lists_every_problem_in_one_run(tmp_path: Path, run_cli: RunCli) -> None:
    (tmp_path / "claudesec.toml").write_text(
        "[policy.roles.dev]\n"
        "max_tokens = -5\n"
        'models = ["claude-*"]\n'
        'dlp = "blok"\n'
        "\n"
        "[keys]\n"
        "max_age_dayz = 30\n"
        "aws_timeout_s = 0\n"
        "\n"
        "[dlp]\n"
        'custom_patterns = { "employee-id" = "E(" }\n',
        encoding="utf-8",
    )
    os.chdir(tmp_path)
    result = run_cli("config", "validate")
    assert result.exit_code == ExitCode.USAGE
    lines = result.stderr.splitlines()
    assert lines[-1].endswith("claudesec.toml: 5 problems")
    for expected in (
        "claudesec.toml:7: unknown key 'keys.max_age_dayz' (did you mean 'max_age_days'?)",
        "claudesec.toml:8: 'keys.aws_timeout_s' must be greater than 0",
        "claudesec.toml:2: 'policy.roles.dev.max_tokens' must be greater than 0, got -5",
        "claudesec.toml:4: 'policy.roles.dev.dlp' must be one of",
        "dlp.custom_patterns.employee-id: invalid regular expression",
    ):
        assert sum(expected in line for line in lines) == 1, (expected, lines)
    # Everything else still fails at its first problem, with the same line.
    with pytest.raises(ConfigError, match="max_age_dayz"):
        load_config(tmp_path / "claudesec.toml", environ={})


@given(st.one_of(st.text(max_size=20), st.booleans(), st.floats(allow_nan=False)))
def test_non_integer_values_are_always_rejected_for_integer_keys(value: object) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.toml"
        doc = tomlkit.document()
        doc["keys"] = {"max_age_days": value}
        path.write_text(tomlkit.dumps(doc), encoding="utf-8")
        with pytest.raises(ConfigError, match="must be an integer"):
            load_config(path, environ={})


def test_readme_config_reference_is_current() -> None:
    from claudesec.config import reference_markdown
    from tests.fixtures.cli import REPO_ROOT

    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert reference_markdown() in readme, (
        "README config reference is stale: run scripts/update-readme"
    )


def test_validate_names_every_missing_federation_setting_of_the_proxy(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in (
        "ANTHROPIC_FEDERATION_RULE_ID",
        "ANTHROPIC_ORGANIZATION_ID",
        "ANTHROPIC_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(var, raising=False)
    # A federated proxy holds no key: a key_source that could not be read is no problem.
    (tmp_path / "claudesec.toml").write_text(
        '[proxy]\nupstream_credential = "federation"\nfederation_rule_id = "fdrl_1"\n'
        'key_source = "file:/nonexistent/key"\n',
        encoding="utf-8",
    )
    os.chdir(tmp_path)
    result = run_cli("config", "validate")
    assert result.exit_code == ExitCode.USAGE
    lines = result.stderr.splitlines()
    assert lines[-1].endswith("claudesec.toml: 2 problems"), lines
    assert sum("proxy.federation_organization_id is not set" in line for line in lines) == 1
    assert sum("proxy.federation_identity_token_file is not set" in line for line in lines) == 1
    # The SDK's own variables count as set.
    monkeypatch.setenv("ANTHROPIC_ORGANIZATION_ID", "org-uuid")
    monkeypatch.setenv("ANTHROPIC_IDENTITY_TOKEN_FILE", str(tmp_path / "token"))
    assert run_cli("config", "validate").exit_code == ExitCode.OK
