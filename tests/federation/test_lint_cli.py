"""`federation lint` of the config (file lines) and of the organisation (Console-made rules),
in text, JSON and schema-valid SARIF, with the --severity threshold deciding exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from claudesec.federation.lint_catalogue import CATALOGUE
from tests.federation.conftest import GITHUB_LIKE, FedConfig
from tests.fixtures.cli import RunCli

SARIF_SCHEMA = Path(__file__).parents[1] / "scan" / "data" / "sarif-schema-2.1.0.json"

RISKY = (
    GITHUB_LIKE
    + """
[[federation.rules]]
name = "whole-org"
issuer = "github-actions"
service_account = "deploy-bot"
workspace = "prod"
subject_prefix = "repo:acme/*"
token_lifetime_seconds = 7200
"""
)


def test_config_lint_names_the_rule_line_and_exits_1(
    fed_config: FedConfig, run_cli: RunCli
) -> None:
    config = fed_config.write(RISKY)
    result = run_cli("-c", str(config), "federation", "lint", "--source", "config", "-f", "json")
    assert result.exit_code == 1, result.output
    findings = json.loads(result.stdout)["findings"]
    by_rule = {(f["rule_id"], f["object"]["name"]): f for f in findings}
    wide = by_rule[("FED001", "whole-org")]
    assert wide["severity"] == "critical" and wide["source"] == "config"
    assert wide["path"] == str(config)
    # The line of the rule's own [[federation.rules]] table (the second one in the file).
    headers = [
        n
        for n, line in enumerate(config.read_text().splitlines(), 1)
        if line.strip() == "[[federation.rules]]"
    ]
    assert wide["line"] == headers[1]
    assert ("FED008", "whole-org") in by_rule
    assert not [f for f in findings if f["object"]["name"] == "api-deploy-main"]


def test_severity_threshold_decides_the_exit_code(fed_config: FedConfig, run_cli: RunCli) -> None:
    risky_but_medium = GITHUB_LIKE.replace(
        "token_lifetime_seconds = 900", "token_lifetime_seconds = 7200"
    )
    config = fed_config.write(risky_but_medium)
    args = ("-c", str(config), "federation", "lint", "--source", "config", "-f", "text")
    assert run_cli(*args, "--severity", "medium").exit_code == 1
    high = run_cli(*args, "--severity", "high")
    assert high.exit_code == 0
    assert "FED008 [medium] rule api-deploy-main" in high.stdout
    assert f"{config}:" in high.stdout and "fix:" in high.stdout
    assert run_cli(*args, "--severity", "bogus").exit_code == 2


def test_org_lint_catches_a_rule_made_in_the_console(
    fed_config: FedConfig, run_cli: RunCli
) -> None:
    config = fed_config.write(GITHUB_LIKE)
    assert run_cli("-c", str(config), "federation", "apply", "--yes").exit_code == 0
    registry = fed_config.emulator.state.federation
    issuer = registry.list_issuers()[0]
    admin_bot = registry.create_service_account("admin-bot", organization_role="admin")
    from claudesec.emulator.federation import RuleMatch

    registry.create_rule(  # only a Console session can grant org:admin
        name="console-admin",
        issuer_id=issuer.id,
        match=RuleMatch(subject_prefix="repo:acme/*"),
        oauth_scope="org:admin",
        service_account_id=admin_bot.id,
        applies_to_all_workspaces=True,
        console=True,
    )
    result = run_cli("-c", str(config), "federation", "lint", "--source", "org", "-f", "json")
    assert result.exit_code == 1, result.output
    found = {(f["rule_id"], f["object"]["name"]) for f in json.loads(result.stdout)["findings"]}
    assert {
        ("FED001", "console-admin"),
        ("FED009", "console-admin"),
        ("FED011", "console-admin"),
    } <= found
    assert all(f["source"] == "organization" for f in json.loads(result.stdout)["findings"])
    # The config's own rule is clean live as in the file.
    assert not [name for _, name in found if name == "api-deploy-main"]


def test_sarif_is_valid_against_the_official_schema(
    fed_config: FedConfig, run_cli: RunCli, tmp_path: Path
) -> None:
    config = fed_config.write(RISKY)
    run_cli("-c", str(config), "federation", "apply", "--yes")
    out = tmp_path / "federation.sarif"
    result = run_cli("-c", str(config), "federation", "lint", "-f", "sarif", "-o", str(out))
    assert result.exit_code == 1 and result.stdout == ""
    document = json.loads(out.read_text())
    schema = json.loads(SARIF_SCHEMA.read_text())
    jsonschema.validate(document, schema, cls=jsonschema.Draft4Validator)
    run = document["runs"][0]
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == [e.id for e in CATALOGUE]
    sources = {r["properties"]["source"] for r in run["results"]}
    assert sources == {"config", "organization"}
    config_result = next(r for r in run["results"] if r["properties"]["source"] == "config")
    physical = config_result["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == "claudesec.toml"
    assert physical["region"]["startLine"] >= 1
    org_result = next(r for r in run["results"] if r["properties"]["source"] == "organization")
    assert org_result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"].startswith(
        "federation_rule/"
    )


def test_a_clean_config_lints_clean(fed_config: FedConfig, run_cli: RunCli) -> None:
    config = fed_config.write(GITHUB_LIKE)
    result = run_cli("-c", str(config), "federation", "lint", "--source", "config", "-f", "text")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "No findings."
