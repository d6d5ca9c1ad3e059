"""The identity endpoints through the SDK's own resources: who may call them, and their rules.

``client.beta.organization.federation.issuers/rules``, ``.service_accounts`` and
``.workspaces`` run unchanged against the emulator; the credential each endpoint takes, and
the error for the wrong one, are what the SDK's docstrings state.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import anthropic
import pytest

from claudesec.emulator import Emulator, IssuedKey
from claudesec.emulator.oidc_issuer import OidcIssuer
from tests.fixtures.emulator import http_request
from tests.fixtures.federation import PROD_SUBJECT, FederationSetup

GITHUB = "https://token.actions.githubusercontent.com"


def _target(account_id: str) -> dict[str, Any]:
    return {"type": "service_account", "service_account_id": account_id}


@pytest.fixture
def org(org_admin_client: anthropic.Anthropic) -> Any:
    return org_admin_client.beta.organization


# ------------------------------------------------------------------------------ credentials


def test_admin_key_on_a_federation_endpoint_names_the_credential_it_needs(
    emulator_admin_client: anthropic.Anthropic,
) -> None:
    with pytest.raises(anthropic.PermissionDeniedError) as raised:
        emulator_admin_client.beta.organization.federation.issuers.list()
    message = str(raised.value)
    assert "org:admin" in message
    assert "Admin API keys are not accepted" in message


def test_api_key_on_a_service_account_endpoint_is_refused(
    emulator_client: anthropic.Anthropic,
) -> None:
    with pytest.raises(anthropic.PermissionDeniedError, match="org:admin"):
        emulator_client.beta.organization.service_accounts.list()


def test_org_admin_token_on_an_admin_key_endpoint_names_the_credential_it_needs(
    org_admin_client: anthropic.Anthropic,
) -> None:
    with pytest.raises(anthropic.PermissionDeniedError, match="requires an Admin API key"):
        org_admin_client.organization.api_keys.list()


def test_org_admin_token_without_the_oauth_beta_is_not_authenticated(
    emulator: Emulator, org_admin_token: str
) -> None:
    client = anthropic.Anthropic(
        auth_token=org_admin_token, base_url=emulator.base_url, max_retries=0
    )
    with client, pytest.raises(anthropic.AuthenticationError, match="OAuth"):
        client.beta.organization.federation.rules.list()


def test_expired_org_admin_token_is_refused(
    emulator: Emulator, org_admin_client: anthropic.Anthropic
) -> None:
    org_admin_client.beta.organization.service_accounts.list()
    emulator.state.advance_clock(3600)
    with pytest.raises(anthropic.AuthenticationError):
        org_admin_client.beta.organization.service_accounts.list()


def test_workspaces_take_an_admin_key_or_an_org_admin_token(
    emulator_admin_client: anthropic.Anthropic, org_admin_client: anthropic.Anthropic
) -> None:
    made = emulator_admin_client.beta.organization.workspaces.create(name="by-key")
    seen = org_admin_client.beta.organization.workspaces.retrieve(made.id)
    assert seen.name == "by-key"
    names = [
        w.name for w in org_admin_client.beta.organization.workspaces.list(include_default=True)
    ]
    assert names == ["Default", "by-key"]


# ------------------------------------------------------------------------------ issuers


def test_issuer_lifecycle(org: Any, ci_issuer: OidcIssuer) -> None:
    issuer = org.federation.issuers.create(
        name="ci",
        issuer_url=ci_issuer.issuer,
        jwks={"type": "discovery", "ca_cert_pem": ci_issuer.ca_pem},
    )
    assert issuer.id.startswith("fdis_")
    assert issuer.check_jti is True
    assert issuer.max_jwt_lifetime_seconds == 3600
    assert issuer.jwks.type == "discovery"
    updated = org.federation.issuers.update(issuer.id, max_jwt_lifetime_seconds=600, name="ci-2")
    assert (updated.name, updated.max_jwt_lifetime_seconds) == ("ci-2", 600)
    archived = org.federation.issuers.archive(issuer.id)
    assert archived.archived_at is not None
    again = org.federation.issuers.archive(issuer.id)
    assert again.archived_at == archived.archived_at  # idempotent, original time kept
    assert [i.id for i in org.federation.issuers.list()] == []
    assert [i.id for i in org.federation.issuers.list(include_archived=True)] == [issuer.id]
    with pytest.raises(anthropic.BadRequestError, match="Archived issuers"):
        org.federation.issuers.update(issuer.id, name="back")


def test_jwks_polling_pauses_after_repeated_failures_and_an_update_resumes_it(
    org: Any, ci_issuer: OidcIssuer, emulator: Emulator
) -> None:
    from claudesec.emulator.federation import JWKS_POLL_PAUSE_AFTER

    issuer = org.federation.issuers.create(
        name="ci",
        issuer_url=ci_issuer.issuer,
        jwks={"type": "discovery", "ca_cert_pem": ci_issuer.ca_pem},
    )
    for _ in range(JWKS_POLL_PAUSE_AFTER - 1):
        emulator.state.federation.record_poll(issuer.id, ok=False)
    assert org.federation.issuers.retrieve(issuer.id).jwks_polling_disabled_at is None
    emulator.state.federation.record_poll(issuer.id, ok=False)
    paused = org.federation.issuers.retrieve(issuer.id)
    assert paused.jwks_polling_disabled_at is not None
    assert paused.poll_status is not None
    assert paused.poll_status.consecutive_failures == JWKS_POLL_PAUSE_AFTER
    resumed = org.federation.issuers.update(issuer.id, jwks_polling_disabled=False)
    assert resumed.jwks_polling_disabled_at is None
    assert resumed.poll_status is not None and resumed.poll_status.consecutive_failures == 0


def test_issuer_names_are_unique_slugs(org: Any, ci_issuer: OidcIssuer) -> None:
    org.federation.issuers.create(name="ci", issuer_url=ci_issuer.issuer)
    with pytest.raises(anthropic.ConflictError):
        org.federation.issuers.create(name="ci", issuer_url=ci_issuer.issuer)
    with pytest.raises(anthropic.BadRequestError, match="slug"):
        org.federation.issuers.create(name="Not A Slug", issuer_url=ci_issuer.issuer)


@pytest.mark.parametrize(
    ("issuer_url", "jwks"),
    [
        ("http://idp.example", None),
        ("https://idp.example", {"type": "explicit_url", "url": "http://idp.example/keys"}),
        ("https://idp.example", {"type": "inline", "keys": []}),
    ],
)
def test_issuer_keys_must_come_over_https_or_inline(
    org: Any, issuer_url: str, jwks: dict[str, Any] | None
) -> None:
    kwargs = {"jwks": jwks} if jwks is not None else {}
    with pytest.raises(anthropic.BadRequestError):
        org.federation.issuers.create(name="bad", issuer_url=issuer_url, **kwargs)


def test_issuer_lifetime_bounds(org: Any, ci_issuer: OidcIssuer) -> None:
    for bad in (0, 176_401):
        with pytest.raises(anthropic.BadRequestError, match="between"):
            org.federation.issuers.create(
                name="ci", issuer_url=ci_issuer.issuer, max_jwt_lifetime_seconds=bad
            )


def test_issuer_list_walks_pages(org: Any, ci_issuer: OidcIssuer) -> None:
    made = [
        org.federation.issuers.create(name=f"ci-{n}", issuer_url=ci_issuer.issuer).id
        for n in range(5)
    ]
    first = org.federation.issuers.list(limit=2)
    assert first.next_page
    walked = [i.id for i in org.federation.issuers.list(limit=2)]  # auto-pagination
    assert walked == list(reversed(made))
    with pytest.raises(anthropic.BadRequestError, match="page"):
        org.federation.issuers.list(page="cur_nonsense")


# ------------------------------------------------------------------------------ rules


@pytest.fixture
def issuer_and_account(org: Any, ci_issuer: OidcIssuer) -> tuple[str, str]:
    issuer = org.federation.issuers.create(name="ci", issuer_url=ci_issuer.issuer)
    account = org.service_accounts.create(name="bot")
    return issuer.id, account.id


def _rule(org: Any, issuer_id: str, account_id: str, emulator: Emulator, **overrides: Any) -> Any:
    kwargs: dict[str, Any] = {
        "name": "rule",
        "issuer_id": issuer_id,
        "match": {"subject_prefix": PROD_SUBJECT},
        "oauth_scope": "workspace:inference",
        "target": _target(account_id),
        "workspace_id": emulator.state.default_workspace_id,
    }
    kwargs.update(overrides)
    return org.federation.rules.create(**kwargs)


def test_rule_lifecycle(org: Any, issuer_and_account: tuple[str, str], emulator: Emulator) -> None:
    issuer_id, account_id = issuer_and_account
    rule = _rule(org, issuer_id, account_id, emulator, description="prod deploys")
    assert rule.id.startswith("fdrl_")
    assert rule.issuer_name == "ci"
    assert rule.target.service_account_name == "bot"
    assert rule.token_lifetime_seconds == 3600
    assert rule.workspace_ids == [emulator.state.default_workspace_id]
    assert rule.attributes is None
    listed = org.federation.rules.workspaces.list(rule.id)
    assert [w.workspace_name for w in listed] == ["Default"]
    updated = org.federation.rules.update(rule.id, token_lifetime_seconds=900, description=None)
    assert (updated.token_lifetime_seconds, updated.description) == (900, "")
    assert [r.id for r in org.federation.rules.list(issuer_id=issuer_id)] == [rule.id]
    archived = org.federation.rules.archive(rule.id)
    assert archived.workspace_ids == [] and archived.workspace_id is None
    with pytest.raises(anthropic.BadRequestError):
        org.federation.rules.update(rule.id, name="again")


@pytest.mark.parametrize(
    "match",
    [
        {"audience": "https://api.anthropic.com"},  # audience alone
        {"subject_prefix": "*"},  # a bare wildcard
        {"subject_prefix": "**", "audience": "x"},
        {"condition": "true"},  # constant true
        {"condition": "1 == 1"},
        {"condition": 'request.path == "/"'},  # only `claims` may be referenced
        {"condition": "claims.sub =="},  # not CEL
        {"claims": {"run_number": 42}},  # claims match strings only
    ],
)
def test_rule_match_must_constrain_the_token(
    org: Any, issuer_and_account: tuple[str, str], emulator: Emulator, match: dict[str, Any]
) -> None:
    issuer_id, account_id = issuer_and_account
    with pytest.raises(anthropic.BadRequestError, match="match"):
        _rule(org, issuer_id, account_id, emulator, match=match)


def test_oauth_callers_cannot_grant_org_admin(
    org: Any, issuer_and_account: tuple[str, str], emulator: Emulator
) -> None:
    issuer_id, account_id = issuer_and_account
    with pytest.raises(anthropic.PermissionDeniedError, match="Console"):
        _rule(org, issuer_id, account_id, emulator, oauth_scope="org:admin")
    with pytest.raises(anthropic.BadRequestError, match="oauth_scope"):
        _rule(org, issuer_id, account_id, emulator, oauth_scope="workspace:everything")


def test_rule_references_must_be_live(
    org: Any, issuer_and_account: tuple[str, str], emulator: Emulator
) -> None:
    issuer_id, account_id = issuer_and_account
    with pytest.raises(anthropic.BadRequestError, match="issuer_id"):
        _rule(org, "fdis_01missing", account_id, emulator)
    with pytest.raises(anthropic.BadRequestError, match="service_account"):
        _rule(org, issuer_id, "svac_01missing", emulator)
    with pytest.raises(anthropic.BadRequestError, match="workspace_id"):
        _rule(org, issuer_id, account_id, emulator, workspace_id=None)
    with pytest.raises(anthropic.BadRequestError, match="attributes"):
        _rule(org, issuer_id, account_id, emulator, attributes={"team": "claims.team"})
    for bad in (59, 86_401):
        with pytest.raises(anthropic.BadRequestError, match="token_lifetime_seconds"):
            _rule(org, issuer_id, account_id, emulator, token_lifetime_seconds=bad)


def test_rules_on_a_shared_issuer_must_pin_the_tenant(org: Any, emulator: Emulator) -> None:
    github = org.federation.issuers.create(name="github", issuer_url=GITHUB)
    account = org.service_accounts.create(name="bot")
    with pytest.raises(anthropic.BadRequestError, match="tenant"):
        _rule(org, github.id, account.id, emulator, match={"subject_prefix": "repo:*"})
    with pytest.raises(anthropic.BadRequestError, match="tenant"):
        _rule(org, github.id, account.id, emulator, match={"claims": {"ref": "refs/heads/main"}})
    for n, match in enumerate(
        (
            {"subject_prefix": "repo:acme/*"},
            {"claims": {"repository_owner": "acme"}},
            {"condition": 'claims.repository_owner == "acme"'},
        )
    ):
        _rule(org, github.id, account.id, emulator, name=f"ok-{n}", match=match)


def test_archiving_an_issuer_or_account_with_live_rules_is_refused(
    org: Any, issuer_and_account: tuple[str, str], emulator: Emulator
) -> None:
    issuer_id, account_id = issuer_and_account
    rule = _rule(org, issuer_id, account_id, emulator)
    with pytest.raises(anthropic.BadRequestError, match="archive them first"):
        org.federation.issuers.archive(issuer_id)
    with pytest.raises(anthropic.BadRequestError, match="archive them first"):
        org.service_accounts.archive(account_id)
    org.federation.rules.archive(rule.id)
    assert org.federation.issuers.archive(issuer_id).archived_at is not None
    assert org.service_accounts.archive(account_id).archived_at is not None


def test_rule_workspaces_are_idempotent(
    org: Any, issuer_and_account: tuple[str, str], emulator: Emulator
) -> None:
    issuer_id, account_id = issuer_and_account
    rule = _rule(org, issuer_id, account_id, emulator)
    extra = org.workspaces.create(name="extra").id
    first = org.federation.rules.workspaces.add(rule.id, workspace_id=extra)
    second = org.federation.rules.workspaces.add(rule.id, workspace_id=extra)
    assert first.created_at == second.created_at
    assert org.federation.rules.retrieve(rule.id).workspace_ids == [
        emulator.state.default_workspace_id,
        extra,
    ]
    with pytest.raises(anthropic.BadRequestError, match="several workspaces"):
        org.federation.rules.update(rule.id, workspace_id=extra)
    for _ in range(2):
        gone = org.federation.rules.workspaces.remove(extra, federation_rule_id=rule.id)
        assert gone.type == "federation_rule_workspace_deleted"


# ------------------------------------------------------------------------------ service accounts


def test_service_account_lifecycle_and_memberships(org: Any, emulator: Emulator) -> None:
    account = org.service_accounts.create(name="bot", description="deploys")
    assert (account.organization_role, account.type) == ("developer", "service_account")
    assert account.created_by_actor_id == emulator.state.default_user_id
    implicit = list(org.service_accounts.workspaces.list(account.id))
    assert [(m.workspace_id, m.implicit, m.workspace_role) for m in implicit] == [
        (emulator.state.default_workspace_id, True, "workspace_user")
    ]
    team = org.workspaces.create(name="team").id
    org.workspaces.service_accounts.add(
        team, service_account_id=account.id, workspace_role="workspace_developer"
    )
    member = org.workspaces.service_accounts.retrieve(account.id, workspace_id=team)
    assert member.workspace_role == "workspace_developer"
    org.workspaces.service_accounts.update(
        account.id, workspace_id=team, workspace_role="workspace_user"
    )
    assert [m.service_account_id for m in org.workspaces.service_accounts.list(team)] == [
        account.id
    ]
    with pytest.raises(anthropic.BadRequestError, match="workspace_role"):
        org.service_accounts.workspaces.add(
            account.id, workspace_id=team, workspace_role="workspace_billing"
        )
    org.service_accounts.workspaces.remove(team, service_account_id=account.id)
    org.service_accounts.workspaces.remove(team, service_account_id=account.id)  # idempotent
    assert org.workspaces.service_accounts.list(team).data == []
    # The implicit default membership cannot be removed.
    org.service_accounts.workspaces.remove(
        emulator.state.default_workspace_id, service_account_id=account.id
    )
    assert len(list(org.service_accounts.workspaces.list(account.id))) == 1
    archived = org.service_accounts.archive(account.id)
    assert archived.archived_at is not None
    assert list(org.service_accounts.workspaces.list(account.id)) == []
    with pytest.raises(anthropic.BadRequestError):
        org.service_accounts.update(account.id, description="x")


def test_archived_workspace_refuses_membership_changes(org: Any) -> None:
    account = org.service_accounts.create(name="bot")
    team = org.workspaces.create(name="team").id
    org.workspaces.archive(team)
    with pytest.raises(anthropic.BadRequestError, match="archived"):
        org.workspaces.service_accounts.add(
            team, service_account_id=account.id, workspace_role="workspace_user"
        )


# ------------------------------------------------------------------------------ API keys


def test_api_keys_report_scope_principal_and_expiry(
    emulator: Emulator, emulator_admin_client: anthropic.Anthropic
) -> None:
    registry = emulator.state.federation
    account = registry.create_service_account("bot")
    expires = emulator.state.now() + timedelta(hours=1)
    bound = emulator.state.add_key(
        "api", scope="organization", service_account_id=account.id, expires_at=expires
    )
    plain: IssuedKey = emulator.state.add_key("api")
    api_keys = emulator_admin_client.beta.organization.api_keys
    seen = api_keys.retrieve(bound.id)
    assert seen.scope.type == "organization"
    assert seen.principal is not None and seen.principal.type == "service_account_actor"
    assert seen.expires_at is not None and seen.status == "active"
    other = api_keys.retrieve(plain.id)
    assert other.scope.type == "workspace" and other.principal is None
    assert other.expires_at is None
    emulator.state.advance_clock(3600)
    assert api_keys.retrieve(bound.id).status == "expired"
    answer = http_request(
        emulator,
        "POST",
        "/v1/messages/count_tokens",
        api_key=bound.secret,
        body={"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "x"}]},
    )
    assert answer.status == 401
    with pytest.raises(ValueError, match="principal"):
        emulator.state.add_key("api", scope="organization")


def test_a_workload_cannot_create_an_admin_service_account(
    federation: FederationSetup,
) -> None:
    org = federation.admin.beta.organization
    admin_bot = org.service_accounts.create(name="admin-bot", organization_role="admin")
    registry = federation.emulator.state.federation
    rule = registry.create_rule(
        name="admin-rule",
        issuer_id=federation.issuer_id,
        match=registry.rule(federation.rule_id).match,
        oauth_scope="org:admin",
        service_account_id=admin_bot.id,
        workspace_id=federation.emulator.state.default_workspace_id,
        console=True,
    )
    token = federation.emulator.state.tokens  # minted through the real exchange below
    answer = http_request(
        federation.emulator,
        "POST",
        "/v1/oauth/token",
        body=federation.exchange_body(
            federation.issuer.github_actions("acme/app", environment="prod"),
            federation_rule_id=rule.id,
        ),
        headers={"anthropic-beta": "oauth-2025-04-20,oidc-federation-2026-04-01"},
        version=None,
    )
    assert answer.status == 200, answer.body
    assert token.events()[-1].outcome == "minted"
    workload = anthropic.Anthropic(
        auth_token=answer.json()["access_token"],
        base_url=federation.emulator.base_url,
        max_retries=0,
        default_headers={"anthropic-beta": "oauth-2025-04-20"},
    )
    with workload:
        made = workload.beta.organization.service_accounts.create(name="made-by-workload")
        assert made.created_by_actor_id == admin_bot.id
        with pytest.raises(anthropic.BadRequestError, match="interactive"):
            workload.beta.organization.service_accounts.create(
                name="escalate", organization_role="admin"
            )
    # Demoting the target stops the org:admin rule at exchange.
    org.service_accounts.update(admin_bot.id, organization_role="developer")
    again = http_request(
        federation.emulator,
        "POST",
        "/v1/oauth/token",
        body=federation.exchange_body(
            federation.issuer.github_actions("acme/app", environment="prod"),
            federation_rule_id=rule.id,
        ),
        headers={"anthropic-beta": "oauth-2025-04-20,oidc-federation-2026-04-01"},
        version=None,
    )
    assert again.status == 401
    assert federation.last_outcome() == "role_demoted"
