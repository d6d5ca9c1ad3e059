"""Every lint rule: a true positive, and a near miss that must stay clean.

The inputs are the Admin API's JSON shapes (what ``model_dump(mode="json")`` gives), so these
are the cases ``org check`` and the live lint judge; a clean organisation has no finding.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from claudesec.federation.lint import LintFinding, lint_rules
from claudesec.federation.lint_catalogue import CATALOGUE

Org = dict[str, Any]
GITHUB = "https://token.actions.githubusercontent.com"


def clean_org() -> Org:
    return {
        "issuers": [
            {
                "id": "fdis_gh",
                "name": "github-actions",
                "issuer_url": GITHUB,
                "jwks": {"type": "discovery"},
                "check_jti": True,
                "max_jwt_lifetime_seconds": 600,
                "archived_at": None,
            }
        ],
        "accounts": [{"id": "svac_1", "name": "deploy-bot", "archived_at": None}],
        "rules": [
            {
                "id": "fdrl_1",
                "name": "api-deploy-main",
                "issuer_id": "fdis_gh",
                "match": {
                    "subject_prefix": "repo:acme/api:environment:production",
                    "claims": {"repository": "acme/api", "ref": "refs/heads/main"},
                    "condition": None,
                    "audience": None,
                },
                "oauth_scope": "workspace:inference",
                "target": {"type": "service_account", "service_account_id": "svac_1"},
                "token_lifetime_seconds": 900,
                "applies_to_all_workspaces": False,
                "workspace_ids": ["wrkspc_prod"],
                "workspace_id": None,
                "archived_at": None,
            }
        ],
        "members": {
            "svac_1": [
                {
                    "workspace_id": "wrkspc_default",
                    "workspace_role": "workspace_user",
                    "implicit": True,
                },
                {
                    "workspace_id": "wrkspc_prod",
                    "workspace_role": "workspace_user",
                    "implicit": False,
                },
            ]
        },
    }


def run(org: Org) -> list[LintFinding]:
    return lint_rules(org["issuers"], org["rules"], org["accounts"], memberships=org["members"])


def match(**fields: Any) -> Callable[[Org], None]:
    def change(org: Org) -> None:
        org["rules"][0]["match"] = {
            "subject_prefix": None,
            "claims": None,
            "condition": None,
            "audience": None,
            **fields,
        }

    return change


def rule(**fields: Any) -> Callable[[Org], None]:
    return lambda org: org["rules"][0].update(fields)


def issuer(**fields: Any) -> Callable[[Org], None]:
    return lambda org: org["issuers"][0].update(fields)


def member(workspace: str, role: str) -> Callable[[Org], None]:
    return lambda org: org["members"]["svac_1"].append(
        {"workspace_id": workspace, "workspace_role": role, "implicit": False}
    )


def role_in_prod(role: str) -> Callable[[Org], None]:
    return lambda org: org["members"]["svac_1"][1].update(workspace_role=role)


def archived_issuer(org: Org) -> None:
    org["issuers"][0]["archived_at"] = "2026-12-01T00:00:00Z"


def kubernetes(subject: str) -> Callable[[Org], None]:
    def change(org: Org) -> None:
        org["issuers"][0]["issuer_url"] = (
            "https://oidc.eks.eu-west-1.amazonaws.com/id/ABCDEF0123456789"
        )
        match(subject_prefix=subject)(org)

    return change


def gitlab(**fields: Any) -> Callable[[Org], None]:
    def change(org: Org) -> None:
        org["issuers"][0]["issuer_url"] = "https://gitlab.com"
        match(**fields)(org)

    return change


# rule id -> (true positives, near misses that are clean for that rule)
CASES: dict[str, tuple[list[Callable[[Org], None]], list[Callable[[Org], None]]]] = {
    "FED001": (
        [
            match(subject_prefix="repo:acme/*"),
            match(subject_prefix="repo:acme/api*"),
            match(subject_prefix="repo:*"),
            match(claims={"repository_owner": "acme", "environment": "production"}),
            kubernetes("system:serviceaccount:prod:*"),
        ],
        [
            match(subject_prefix="repo:acme/api:*", claims={"ref": "refs/heads/main"}),
            match(
                subject_prefix="repo:acme/*",
                claims={"repository": "acme/api", "environment": "prod"},
            ),
            kubernetes("system:serviceaccount:prod:deployer"),
        ],
    ),
    "FED002": (
        [
            match(subject_prefix="repo:acme/api:*"),
            match(claims={"repository": "acme/api"}),
            gitlab(subject_prefix="project_path:group/api:*"),
        ],
        [
            match(subject_prefix="repo:acme/api:*", claims={"environment": "production"}),
            match(subject_prefix="repo:acme/api:*", condition="claims.ref == 'refs/heads/main'"),
            gitlab(subject_prefix="project_path:group/api:ref_type:branch:ref:main"),
        ],
    ),
    "FED003": (
        [
            match(subject_prefix="repo:acme/api:pull_request"),
            match(claims={"repository": "acme/api", "event_name": "pull_request_target"}),
            gitlab(claims={"project_path": "g/api", "pipeline_source": "merge_request_event"}),
        ],
        [match(subject_prefix="repo:acme/api:ref:refs/heads/main")],
    ),
    "FED004": (
        [match(audience="https://api.anthropic.com"), match(subject_prefix="*", audience="x")],
        [
            match(
                subject_prefix="repo:acme/api:environment:prod",
                audience="https://api.anthropic.com",
            )
        ],
    ),
    "FED005": (
        [match(subject_prefix="repo:acme/api:ref:refs/heads/main")],
        [
            match(subject_prefix="repo:acme/api:environment:production"),
            gitlab(
                subject_prefix="project_path:g/api:ref_type:branch:ref:main",
                claims={"ref_protected": "true"},
            ),
        ],
    ),
    "FED006": ([issuer(check_jti=False)], [issuer(check_jti=True)]),
    "FED007": (
        [issuer(max_jwt_lifetime_seconds=3601), issuer(max_jwt_lifetime_seconds=176400)],
        [issuer(max_jwt_lifetime_seconds=3600)],
    ),
    "FED008": ([rule(token_lifetime_seconds=3601)], [rule(token_lifetime_seconds=3600)]),
    "FED009": ([rule(applies_to_all_workspaces=True)], [rule(applies_to_all_workspaces=False)]),
    "FED010": (
        [
            rule(oauth_scope="workspace:developer"),
            rule(oauth_scope="workspace:inference workspace:developer"),
        ],
        [rule(oauth_scope="workspace:inference")],
    ),
    "FED011": (
        [rule(oauth_scope="org:admin"), rule(oauth_scope="workspace:inference org:admin")],
        [rule(oauth_scope="workspace:developer")],
    ),
    "FED012": (
        [
            issuer(issuer_url="http://idp.example.test"),
            issuer(jwks={"type": "explicit_url", "url": "http://idp.example.test/jwks"}),
        ],
        [issuer(jwks={"type": "explicit_url", "url": "https://idp.example.test/jwks"})],
    ),
    "FED013": (
        [issuer(jwks={"type": "inline", "keys": [{"kty": "EC", "kid": "k1"}]})],
        [issuer(jwks={"type": "discovery", "discovery_base": None, "ca_cert_pem": None})],
    ),
    "FED014": (
        [member("wrkspc_staging", "workspace_user"), role_in_prod("workspace_developer")],
        [
            role_in_prod("workspace_user"),
            lambda org: (
                role_in_prod("workspace_developer")(org),
                rule(oauth_scope="workspace:developer")(org),
            ),
        ],
    ),
    "FED015": (
        [
            archived_issuer,
            lambda org: org["accounts"][0].update(archived_at="2026-12-01T00:00:00Z"),
        ],
        [lambda org: org["issuers"][0].update(archived_at=None)],
    ),
}


def test_every_catalogue_entry_has_cases() -> None:
    assert sorted(CASES) == [entry.id for entry in CATALOGUE]


def test_a_clean_organisation_has_no_finding() -> None:
    assert run(clean_org()) == []


@pytest.mark.parametrize(
    ("rule_id", "index"),
    [(rule_id, i) for rule_id, (positives, _) in CASES.items() for i in range(len(positives))],
)
def test_true_positive(rule_id: str, index: int) -> None:
    org = copy.deepcopy(clean_org())
    CASES[rule_id][0][index](org)
    found = [f for f in run(org) if f.rule_id == rule_id]
    assert found, f"{rule_id} case {index} not reported: {run(org)}"
    assert found[0].message and found[0].fix and found[0].object_name


@pytest.mark.parametrize(
    ("rule_id", "index"),
    [(rule_id, i) for rule_id, (_, clean) in CASES.items() for i in range(len(clean))],
)
def test_near_miss_is_clean(rule_id: str, index: int) -> None:
    org = copy.deepcopy(clean_org())
    CASES[rule_id][1][index](org)
    assert [f for f in run(org) if f.rule_id == rule_id] == []


def test_archived_rules_are_not_judged() -> None:
    org = copy.deepcopy(clean_org())
    org["rules"][0].update(oauth_scope="org:admin", archived_at="2026-12-01T00:00:00Z")
    assert [f.rule_id for f in run(org)] == ["FED014"]  # its membership is now unused


def test_findings_are_sorted_most_severe_first() -> None:
    org = copy.deepcopy(clean_org())
    rule(oauth_scope="org:admin workspace:developer", token_lifetime_seconds=7200)(org)
    severities = [f.severity for f in run(org)]
    assert severities == ["critical", "medium", "medium"]
