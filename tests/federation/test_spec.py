"""[federation] tables into specs: presets turn three lines into an exact match, and every
problem is reported at once with its file line (``config validate``, exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from claudesec.config import load_config
from claudesec.federation.spec import FederationSpec, load_spec
from tests.fixtures.cli import RunCli


def spec_of(tmp_path: Path, text: str) -> FederationSpec:
    path = tmp_path / "claudesec.toml"
    path.write_text(text)
    spec, problems = load_spec(load_config(path, collect=True))
    assert problems == ()
    return spec


BASE = """
[[federation.service_accounts]]
name = "bot"
workspaces = [{ workspace = "prod" }]
"""


def test_github_three_lines_make_an_exact_subject_and_pinned_claims(tmp_path: Path) -> None:
    spec = spec_of(
        tmp_path,
        BASE
        + """
[[federation.issuers]]
name = "github-actions"
preset = "github-actions"

[[federation.rules]]
name = "api"
issuer = "github-actions"
service_account = "bot"
workspace = "prod"
repository = "acme/api"
ref = "refs/heads/main"
environment = "production"
""",
    )
    (issuer,) = spec.issuers
    assert issuer.issuer_url == "https://token.actions.githubusercontent.com"
    assert issuer.jwks == {"type": "discovery"} and issuer.check_jti is True
    (rule,) = spec.rules
    assert rule.match == {
        "subject_prefix": "repo:acme/api:environment:production",
        "claims": {"repository": "acme/api", "ref": "refs/heads/main", "environment": "production"},
    }
    assert rule.oauth_scope == "workspace:inference" and rule.workspaces == ("prod",)


def test_gitlab_and_kubernetes_presets(tmp_path: Path) -> None:
    spec = spec_of(
        tmp_path,
        BASE
        + """
[[federation.issuers]]
name = "gitlab"
preset = "gitlab-ci"

[[federation.issuers]]
name = "eks-prod"
preset = "kubernetes"
issuer_url = "https://oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF0123456789"
max_jwt_lifetime_seconds = 600

[[federation.rules]]
name = "gl"
issuer = "gitlab"
service_account = "bot"
workspace = "prod"
project_path = "acme/platform/api"
ref = "main"
ref_protected = true

[[federation.rules]]
name = "k8s"
issuer = "eks-prod"
service_account = "bot"
workspaces = ["prod", "default"]
namespace = "payments"
service_account_name = "invoice-writer"
audience = "https://api.anthropic.com"
""",
    )
    gl, k8s = spec.rules
    assert gl.match == {
        "subject_prefix": "project_path:acme/platform/api:ref_type:branch:ref:main",
        "claims": {"project_path": "acme/platform/api", "ref": "main", "ref_protected": "true"},
    }
    assert k8s.match == {
        "subject_prefix": "system:serviceaccount:payments:invoice-writer",
        "audience": "https://api.anthropic.com",
    }
    assert k8s.workspaces == ("prod", "default")
    assert spec.issuer("eks-prod") is not None
    assert spec.issuer("eks-prod").max_jwt_lifetime_seconds == 600  # type: ignore[union-attr]


def test_inline_jwks_file_and_rule_level_issuer_settings(tmp_path: Path) -> None:
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [{"kty": "EC", "kid": "k1"}]}))
    spec = spec_of(
        tmp_path,
        BASE
        + """
[[federation.issuers]]
name = "idp"
issuer_url = "https://idp.example.test"
jwks = { inline_file = "jwks.json" }

[[federation.rules]]
name = "svc"
issuer = "idp"
service_account = "bot"
workspace = "prod"
subject_prefix = "svc:billing"
check_jti = false
max_jwt_lifetime_seconds = 300
""",
    )
    (issuer,) = spec.issuers
    assert issuer.jwks == {"type": "inline", "keys": [{"kty": "EC", "kid": "k1"}]}
    assert (issuer.check_jti, issuer.max_jwt_lifetime_seconds) == (False, 300)


def test_config_validate_lists_every_federation_problem_with_its_line(
    tmp_path: Path, run_cli: RunCli
) -> None:
    path = tmp_path / "claudesec.toml"
    path.write_text(
        """[[federation.issuers]]
name = "gh"
preset = "github-action"

[[federation.issuers]]
name = "k8s"
preset = "kubernetes"

[[federation.service_accounts]]
name = "bot"

[[federation.rules]]
name = "r1"
issuer = "nope"
service_account = "bot"
workspace = "prod"
repositry = "acme/api"
scopes = ["org:admin"]

[[federation.rules]]
name = "r1"
issuer = "k8s"
service_account = "bot"
workspace = "default"
audience = "https://api.anthropic.com"
"""
    )
    result = run_cli("-c", str(path), "config", "validate")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    expected = [
        (3, "unknown preset 'github-action'"),
        (5, "issuer_url is required for the kubernetes preset"),
        (17, "unknown key 'repositry'"),
        (14, "issuer 'nope' is not a [[federation.issuers]] name"),
        (16, "mints into workspace 'prod', where service account 'bot' is not a member"),
        (18, "org:admin rules are managed in the Console"),
        (21, "name 'r1' is used twice"),
    ]
    for line, text in expected:
        assert any(f"{path}:{line}: " in entry and text in entry for entry in lines), (line, text)


def test_issuer_settings_asked_differently_by_two_rules_are_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "claudesec.toml"
    path.write_text(
        BASE
        + """
[[federation.issuers]]
name = "idp"
issuer_url = "https://idp.example.test"
check_jti = true

[[federation.rules]]
name = "a"
issuer = "idp"
service_account = "bot"
workspace = "prod"
subject_prefix = "svc:a"
check_jti = false
"""
    )
    _, problems = load_spec(load_config(path, collect=True))
    assert len(problems) == 1 and "contradicts issuer 'idp'" in str(problems[0])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ('audience = "x"', "needs repository"),
        ('repository = "acme/api"\nsubject_prefix = "repo:acme/api:*"', "both set the subject"),
        ('subject_prefix = "svc"\ncondition = "claims.sub =="', "invalid CEL"),
        ('subject_prefix = "svc"\ntoken_lifetime_seconds = 30', "from 60 to 86400"),
        ('repository = "acme/api"\nclaims = { repository = "other/api" }', "contradicts the sugar"),
    ],
)
def test_rule_problems(tmp_path: Path, fields: str, message: str) -> None:
    path = tmp_path / "claudesec.toml"
    path.write_text(
        BASE
        + f"""
[[federation.issuers]]
name = "gh"
preset = "github-actions"

[[federation.rules]]
name = "r"
issuer = "gh"
service_account = "bot"
workspace = "prod"
{fields}
"""
    )
    _, problems = load_spec(load_config(path, collect=True))
    assert any(message in str(p) for p in problems), problems
