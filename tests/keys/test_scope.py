"""The scope policy builder and linter (moto does not enforce policies: the linter is ours)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from claudesec.errors import UsageError
from claudesec.keys.scope import ScopeSpec, build_policy, lint_policy
from tests.fixtures.cli import RunCli
from tests.keys.conftest import Rig

READER = "arn:aws:iam::111122223333:role/app-reader"
ROTATOR = "arn:aws:iam::111122223333:role/claudesec-rotator"
GLASS = "arn:aws:iam::111122223333:role/break-glass"


def _rules(policy: dict[str, object], **kwargs: object) -> set[str]:
    return {f.rule for f in lint_policy(policy, **kwargs) if f.severity == "error"}  # type: ignore[arg-type]


def test_built_policy_is_lint_clean_and_denies_everyone_else() -> None:
    spec = ScopeSpec(
        readers=(READER,), rotator=ROTATOR, break_glass=(GLASS,), source_vpce=("vpce-1",)
    )
    policy = build_policy(spec)
    assert lint_policy(policy, readers=[READER], break_glass=[GLASS]) == []
    deny = next(s for s in policy["Statement"] if s["Sid"] == "ClaudesecDenyEveryoneElse")
    assert deny["Condition"]["StringNotEquals"]["aws:PrincipalArn"] == sorted(
        [READER, ROTATOR, GLASS]
    )
    reads = next(s for s in policy["Statement"] if s["Sid"] == "ClaudesecReaders")
    assert reads["Condition"] == {"StringEquals": {"aws:SourceVpce": ["vpce-1"]}}
    assert not any("Put" in a for a in reads["Action"])


def test_builder_needs_a_rotator() -> None:
    with pytest.raises(UsageError):
        build_policy(ScopeSpec(readers=(), rotator="", break_glass=()))


@pytest.mark.parametrize(
    ("statement", "rule"),
    [
        (
            {"Effect": "Allow", "Principal": "*", "Action": "secretsmanager:GetSecretValue"},
            "public-principal",
        ),
        (
            {
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": "secretsmanager:GetSecretValue",
            },
            "public-principal",
        ),
        (
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::1:role/*"},
                "Action": "secretsmanager:GetSecretValue",
            },
            "wildcard-principal",
        ),
        ({"Effect": "Allow", "Principal": {"AWS": ROTATOR}, "Action": "*"}, "wildcard-action"),
        (
            {
                "Effect": "Allow",
                "Principal": {"AWS": READER},
                "Action": "secretsmanager:PutSecretValue",
            },
            "reader-can-write",
        ),
        (
            {
                "Effect": "Allow",
                "NotPrincipal": {"AWS": READER},
                "Action": "secretsmanager:GetSecretValue",
            },
            "not-principal-allow",
        ),
    ],
)
def test_linter_flags_each_bad_pattern(statement: dict[str, object], rule: str) -> None:
    policy = {"Version": "2012-10-17", "Statement": [statement]}
    assert rule in _rules(policy, readers=[READER])
    assert "missing-deny" in _rules(policy)


def test_break_glass_may_have_every_action() -> None:
    spec = ScopeSpec(readers=(), rotator=ROTATOR, break_glass=(GLASS,))
    assert "wildcard-action" not in _rules(build_policy(spec), break_glass=[GLASS])
    assert "wildcard-action" in _rules(build_policy(spec), break_glass=[])


def test_scope_plan_apply_lint_against_moto(
    rig: Rig, keys_config: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    assert run_cli("keys", "add", "app", input=rig.new_key().secret).exit_code == 0
    text = keys_config.read_text(encoding="utf-8")
    keys_config.write_text(
        text.replace(
            "[keys]\n",
            f'[keys]\nscope_rotator = "{ROTATOR}"\nscope_break_glass = ["{GLASS}"]\n'
            f'scope_secret_readers = {{ app = ["{READER}"] }}\n',
            1,
        ),
        encoding="utf-8",
    )
    plan = run_cli("keys", "scope", "plan", "--json")
    assert plan.exit_code == 0, plan.output
    (entry,) = json.loads(plan.stdout)
    assert entry["secret"] == "claudesec/app" and entry["changed"] and entry["findings"] == []

    assert run_cli("keys", "scope", "lint").exit_code == 1  # nothing applied yet
    applied = run_cli("keys", "scope", "apply", "--yes")
    assert applied.exit_code == 0, applied.output
    stored = json.loads(rig.sm.get_resource_policy(SecretId="claudesec/app")["ResourcePolicy"])
    assert stored["Statement"][0]["Principal"] == {"AWS": [READER]}
    assert run_cli("keys", "scope", "lint").exit_code == 0
    assert "up to date" in run_cli("keys", "scope", "plan").stdout

    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*"}]})
    )
    result = run_cli("keys", "scope", "lint", str(bad))
    assert result.exit_code == 1
    assert "public-principal" in result.stdout and "missing-deny" in result.stdout


def test_an_allow_for_a_principal_the_config_does_not_name_is_flagged() -> None:
    spec = ScopeSpec(readers=(READER,), rotator=ROTATOR, break_glass=(GLASS,))
    policy = build_policy(spec)
    stranger = READER.rsplit("/", 1)[0] + "/stranger"
    policy["Statement"][0]["Principal"]["AWS"].append(stranger)
    rules = _rules(policy, readers=[READER], break_glass=[GLASS], rotator=ROTATOR)
    assert "unlisted-principal" in rules
    # Without the rotator the linter cannot know the full set and stays quiet about it.
    assert "unlisted-principal" not in _rules(policy, readers=[READER], break_glass=[GLASS])


def test_widening_the_deny_exemptions_for_a_stranger_is_flagged_too() -> None:
    spec = ScopeSpec(readers=(READER,), rotator=ROTATOR, break_glass=(GLASS,))
    policy = build_policy(spec)
    stranger = READER.rsplit("/", 1)[0] + "/stranger"
    policy["Statement"][0]["Principal"]["AWS"].append(stranger)
    deny = next(s for s in policy["Statement"] if s["Sid"] == "ClaudesecDenyEveryoneElse")
    deny["Condition"]["StringNotEquals"]["aws:PrincipalArn"].append(stranger)
    rules = _rules(policy, readers=[READER], break_glass=[GLASS], rotator=ROTATOR)
    assert {"unlisted-principal", "unlisted-exemption"} <= rules


def test_the_built_policy_passes_the_full_lint() -> None:
    spec = ScopeSpec(
        readers=(READER,), rotator=ROTATOR, break_glass=(GLASS,), source_vpc=("vpc-1",)
    )
    assert (
        lint_policy(build_policy(spec), readers=[READER], break_glass=[GLASS], rotator=ROTATOR)
        == []
    )
