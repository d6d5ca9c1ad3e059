"""`claudesec policy check` and `claudesec policy show`, run as a user would."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from claudesec.errors import ExitCode
from claudesec.redact import redact
from tests.fixtures.cli import REPO_ROOT, RunCli
from tests.fixtures.oidc import AUDIENCE, FakeIdp

POLICY = """
[policy.users]
alice = "analyst"
root = "admin"

[policy.roles.analyst]
models = ["claude-haiku-*", "claude-sonnet-*"]
max_tokens = 2048
max_input_tokens = 8000
tokens_per_minute = 20000

[policy.roles.admin]
models = ["claude-*"]
max_tokens = 8192
tools_allowed = true
allowed_hours = "00-24"

[identity]
issuer = "https://idp.example.com/oauth2/default"
audience = "api://claudesec"
group_roles = { "eng-analysts" = "analyst" }
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "claudesec.toml"
    path.write_text(POLICY, encoding="utf-8")
    return path


def check(run_cli: RunCli, config: Path, *args: str) -> tuple[int, str, str]:
    result = run_cli("--config", str(config), "policy", "check", *args)
    return result.exit_code, result.stdout, result.stderr


# --------------------------------------------------------------------------- check


def test_check_allowed_explains_every_check_and_exits_0(run_cli: RunCli, config: Path) -> None:
    code, out, err = check(
        run_cli, config, "--user", "alice", "--model", "claude-haiku-4-5", "--max-tokens", "1000"
    )
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "ALLOWED alice as analyst"
    names = [line.split()[1] for line in lines[1:]]
    assert names == [
        "identity",
        "model",
        "max_tokens",
        "input_tokens",
        "tools",
        "hours",
        "budget_minute",
        "budget_day",
    ]
    assert all(line.split()[0] == "pass" for line in lines[1:])


@pytest.mark.parametrize(
    ("args", "headline", "failing"),
    [
        (["--model", "claude-opus-4-1"], "alice as analyst (model_not_allowed)", "model"),
        (
            ["--model", "claude-haiku-4-5", "--max-tokens", "4096"],
            "alice as analyst (max_tokens_exceeded)",
            "max_tokens",
        ),
        (
            ["--model", "claude-haiku-4-5", "--input-tokens", "9000"],
            "alice as analyst (input_too_large)",
            "input_tokens",
        ),
        (
            ["--model", "claude-haiku-4-5", "--tools"],
            "alice as analyst (tools_not_allowed)",
            "tools",
        ),
        (
            ["--model", "claude-haiku-4-5", "--role", "admin"],
            "alice as admin (role_not_assigned)",
            "identity",
        ),
    ],
)
def test_check_denied_exits_1_and_names_the_failing_check(
    run_cli: RunCli, config: Path, args: list[str], headline: str, failing: str
) -> None:
    code, out, _ = check(run_cli, config, "--user", "alice", *args)
    assert code == ExitCode.FOUND
    assert out.splitlines()[0] == f"DENIED {headline}"
    fails = [line.split()[1] for line in out.splitlines()[1:] if line.split()[0] == "FAIL"]
    assert fails[0] == failing


def test_check_unknown_user_is_denied(run_cli: RunCli, config: Path) -> None:
    code, out, _ = check(run_cli, config, "--user", "mallory", "--model", "claude-haiku-4-5")
    assert code == ExitCode.FOUND
    assert "unknown_user" in out
    assert "mallory has no role in policy.users" in out


def test_check_json_output(run_cli: RunCli, config: Path) -> None:
    code, out, _ = check(
        run_cli,
        config,
        "--user",
        "root",
        "--role",
        "admin",
        "--model",
        "claude-opus-4-1",
        "--tools",
        "--format",
        "json",
    )
    assert code == 0
    data = json.loads(out)
    assert data["allowed"] is True
    assert data["role"] == "admin"
    assert {c["name"]: c["passed"] for c in data["checks"]}["tools"] is True


def test_check_with_no_config_denies_everyone(run_cli: RunCli) -> None:
    result = run_cli("policy", "check", "--user", "alice", "--model", "claude-haiku-4-5")
    assert result.exit_code == ExitCode.FOUND
    assert "unknown_user" in result.stdout


def test_check_bad_format_is_a_usage_error(run_cli: RunCli, config: Path) -> None:
    code, _, err = check(run_cli, config, "--user", "a", "--model", "m", "--format", "xml")
    assert code == ExitCode.USAGE
    assert "unknown format" in err


# --------------------------------------------------------------------------- show


def test_show_json_prints_roles_users_and_identity(run_cli: RunCli, config: Path) -> None:
    result = run_cli("--config", str(config), "policy", "show", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["users"] == {"alice": "analyst", "root": "admin"}
    assert data["roles"]["analyst"]["models"] == ["claude-haiku-*", "claude-sonnet-*"]
    assert data["roles"]["admin"]["tools_allowed"] is True
    assert data["identity"]["audience"] == "api://claudesec"
    assert data["identity"]["group_roles"] == {"eng-analysts": "analyst"}


def test_show_table(run_cli: RunCli, config: Path) -> None:
    result = run_cli("--config", str(config), "policy", "show", "--format", "table")
    assert result.exit_code == 0, result.stderr
    assert "analyst\tclaude-haiku-*, claude-sonnet-*\t2048\t8000\tno\t20000\tunlimited" in (
        result.stdout
    )
    assert "alice\tanalyst" in result.stdout
    assert "audience\tapi://claudesec" in result.stdout


def test_show_redacts_secret_looking_values(run_cli: RunCli, tmp_path: Path) -> None:
    # Someone pasted an API key where a user id or an audience belongs.
    secret = "sk-ant-api03-" + "Q7" * 46 + "zAA"
    path = tmp_path / "claudesec.toml"
    path.write_text(
        POLICY.replace('alice = "analyst"', f'"{secret}" = "analyst"').replace(
            'audience = "api://claudesec"', f'audience = "{secret}"'
        ),
        encoding="utf-8",
    )
    for fmt in ("json", "table"):
        result = run_cli("--config", str(path), "policy", "show", "--format", fmt)
        assert result.exit_code == 0, result.stderr
        assert secret not in result.output
        assert redact(secret) in result.stdout


# --------------------------------------------------------------------------- config errors


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        (('root = "admin"', 'root = "superuser"'), "policy.users.root"),
        (('allowed_hours = "00-24"', 'allowed_hours = "9am-5pm"'), "policy.roles.admin"),
        (('models = ["claude-*"]', 'models = ["claude-[opus"]'), "policy.roles.admin.models"),
        (("max_tokens = 8192", "max_tokens = 0"), "policy.roles.admin.max_tokens"),
        (('"eng-analysts" = "analyst"', '"eng" = "ghost"'), "identity.group_roles.eng"),
    ],
)
@pytest.mark.parametrize("command", ["check", "show"])
def test_policy_config_errors_are_one_line_exit_2(
    run_cli: RunCli, tmp_path: Path, edit: tuple[str, str], key: str, command: str
) -> None:
    path = tmp_path / "claudesec.toml"
    assert edit[0] in POLICY
    path.write_text(POLICY.replace(*edit), encoding="utf-8")
    args = ["--user", "alice", "--model", "claude-haiku-4-5"] if command == "check" else []
    result = run_cli("--config", str(path), "policy", command, *args)
    assert result.exit_code == ExitCode.USAGE
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    # The file, and its line where the loader can point at one.
    assert re.match(rf"claudesec: error: {re.escape(str(path))}(:\d+)?: ", lines[0]), lines[0]
    assert key in lines[0]
    assert result.stdout == ""


def test_show_refuses_an_http_jwks_url(run_cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "claudesec.toml"
    path.write_text(POLICY + 'jwks_url = "http://idp.example.com/keys"\n', encoding="utf-8")
    result = run_cli("--config", str(path), "policy", "show")
    assert result.exit_code == ExitCode.USAGE
    assert "identity.jwks_url must be an https:// URL" in result.stderr


# --------------------------------------------------------------------------- start-up cost


@pytest.mark.parametrize("argv", [["--help"], ["policy", "--help"], ["policy", "check", "--help"]])
def test_help_does_not_import_jwt_or_sdks(argv: list[str]) -> None:
    heavy = ("jwt", "cryptography", "anthropic", "boto3", "keyring")
    code = (
        "import sys\n"
        "from claudesec.cli.main import invoke\n"
        f"rc = invoke({argv!r})\n"
        f"print('LOADED=' + ','.join(m for m in {heavy!r} if m in sys.modules))\n"
        "sys.exit(rc)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "LOADED=\n" in proc.stdout, proc.stdout.splitlines()[-1]


# --------------------------------------------------------------------------- OIDC callers


def idp_config(tmp_path: Path, idp: FakeIdp) -> Path:
    path = tmp_path / "claudesec.toml"
    path.write_text(
        POLICY.replace(
            'issuer = "https://idp.example.com/oauth2/default"', f'issuer = "{idp.issuer}"'
        ).replace('audience = "api://claudesec"', f'audience = "{AUDIENCE}"')
        + f'ca_bundle = "{idp.tls.ca_file}"\n',
        encoding="utf-8",
    )
    return path


def test_check_token_file_maps_groups_to_roles(
    run_cli: RunCli, tmp_path: Path, oidc_idp: FakeIdp
) -> None:
    path = idp_config(tmp_path, oidc_idp)
    token_file = tmp_path / "token.jwt"
    token_file.write_text(oidc_idp.token(sub="dana@example.com") + "\n", encoding="utf-8")
    result = run_cli(
        "--config", str(path), "policy", "check", "--token-file", str(token_file),
        "--model", "claude-sonnet-4-6",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == "ALLOWED dana@example.com as analyst"
    assert "token groups grant 'analyst'" in result.stdout


def test_check_rejected_token_is_exit_1_one_line_without_the_token(
    run_cli: RunCli, tmp_path: Path, oidc_idp: FakeIdp
) -> None:
    path = idp_config(tmp_path, oidc_idp)
    token = oidc_idp.token(aud="another-app")
    result = run_cli(
        "--config", str(path), "policy", "check", "--token-file", "-", "--model", "m",
        input=token,
    )  # fmt: skip
    assert result.exit_code == ExitCode.FOUND
    assert result.stderr.strip().splitlines() == [
        "claudesec: error: identity rejected (wrong_audience): "
        "the token was issued for another audience"
    ]
    assert token not in result.output


def test_check_token_with_idp_down_is_exit_3(
    run_cli: RunCli, tmp_path: Path, oidc_idp: FakeIdp
) -> None:
    path = idp_config(tmp_path, oidc_idp)
    oidc_idp.fail_status = 500
    result = run_cli(
        "--config", str(path), "policy", "check", "--token-file", "-", "--model", "m",
        input=oidc_idp.token(),
    )  # fmt: skip
    assert result.exit_code == ExitCode.EXTERNAL
    assert "HTTP 500" in result.stderr


def test_check_needs_a_user_or_a_token(run_cli: RunCli, config: Path) -> None:
    result = run_cli("--config", str(config), "policy", "check", "--model", "m")
    assert result.exit_code == ExitCode.USAGE
    assert "--user or --token-file" in result.stderr
