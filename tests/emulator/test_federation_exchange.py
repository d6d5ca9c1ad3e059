"""The jwt-bearer token exchange, from a workload's side and from an attacker's.

Every assertion comes from the loopback OIDC issuer (real HTTPS discovery, real signatures);
the SDK's own ``WorkloadIdentityCredentials`` does the exchange where a workload would. Time
moves through the emulator's clock, never by sleeping.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import anthropic
import jwt
import pytest
from anthropic.lib.credentials import WorkloadIdentityCredentials, WorkloadIdentityError

from claudesec.emulator import Emulator
from claudesec.emulator.oidc_issuer import OidcIssuer, make_signing_key
from tests.fixtures.emulator import MODEL, RawResponse, http_request
from tests.fixtures.federation import PROD_SUBJECT, TOKEN_BETAS, FederationSetup

TOKEN_PATH = "/v1/oauth/token"
MESSAGE = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


def _exchange(setup: FederationSetup, assertion: str, **extra: Any) -> RawResponse:
    return http_request(
        setup.emulator,
        "POST",
        TOKEN_PATH,
        body=setup.exchange_body(assertion, **extra),
        headers={"anthropic-beta": TOKEN_BETAS},
        version=None,  # the token endpoint needs no anthropic-version
    )


def _prod_token(setup: FederationSetup, **overrides: Any) -> str:
    return setup.issuer.github_actions("acme/app", environment="prod", **overrides)


def _now(setup: FederationSetup) -> int:
    return int(setup.emulator.state.now().timestamp())


def _refused(setup: FederationSetup, assertion: str, reason: str, **extra: Any) -> None:
    answer = _exchange(setup, assertion, **extra)
    assert answer.status == 401, answer.body
    # The answer itself is RFC 6749 shaped and says nothing about which check failed ...
    assert answer.json()["error"] == "invalid_grant"
    assert reason not in answer.json()["error_description"]
    # ... the organisation's authentication events do.
    assert setup.last_outcome() == reason


def _message_with(emulator: Emulator, token: str, **headers: str) -> RawResponse:
    return http_request(
        emulator,
        "POST",
        "/v1/messages",
        body=MESSAGE,
        headers={
            "authorization": f"Bearer {token}",
            "anthropic-beta": "oauth-2025-04-20",
            **headers,
        },
    )


@pytest.fixture
def workload_client(federation: FederationSetup) -> Iterator[anthropic.Anthropic]:
    credentials = WorkloadIdentityCredentials(
        identity_token_provider=lambda: _prod_token(federation),
        federation_rule_id=federation.rule_id,
        organization_id=federation.organization_id,
    )
    client = anthropic.Anthropic(
        credentials=credentials, base_url=federation.emulator.base_url, max_retries=0
    )
    with client:
        yield client


# ------------------------------------------------------------------------------ the workload


def test_sdk_workload_credentials_mint_and_call_messages(
    federation: FederationSetup, workload_client: anthropic.Anthropic
) -> None:
    reply = workload_client.messages.create(**MESSAGE)
    assert reply.content
    events = federation.emulator.state.tokens.events()
    assert [e.outcome for e in events] == ["minted"]
    assert events[0].subject == PROD_SUBJECT
    usage = federation.emulator.state.usage()[-1]
    assert usage.workspace_id == federation.emulator.state.default_workspace_id
    # The workload's own credential never lands in the emulator's request log.
    logged = federation.emulator.state.requests(path=TOKEN_PATH)[0]
    assert logged.body["assertion"] == "[redacted]"
    assert "anthropic-version" not in logged.headers


def test_exchange_answers_an_rfc6749_token_response(federation: FederationSetup) -> None:
    answer = _exchange(federation, _prod_token(federation))
    assert answer.status == 200, answer.body
    body = answer.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "workspace:inference"
    assert answer.headers["cache-control"] == "no-store"
    assert _message_with(federation.emulator, body["access_token"]).status == 200


def test_exchange_accepts_a_form_encoded_request(federation: FederationSetup) -> None:
    from urllib.parse import urlencode

    answer = http_request(
        federation.emulator,
        "POST",
        TOKEN_PATH,
        raw_body=urlencode(federation.exchange_body(_prod_token(federation))).encode(),
        headers={
            "anthropic-beta": TOKEN_BETAS,
            "content-type": "application/x-www-form-urlencoded",
        },
        version=None,
    )
    assert answer.status == 200, answer.body


def test_exchange_without_the_federation_beta_is_a_bad_request(federation: FederationSetup) -> None:
    answer = http_request(
        federation.emulator,
        "POST",
        TOKEN_PATH,
        body=federation.exchange_body(_prod_token(federation)),
        headers={"anthropic-beta": "oauth-2025-04-20"},
        version=None,
    )
    assert answer.status == 400
    assert answer.json()["error"] == "invalid_request"


def test_exchange_with_another_grant_type_is_unsupported(federation: FederationSetup) -> None:
    body = federation.exchange_body(_prod_token(federation), grant_type="client_credentials")
    answer = http_request(
        federation.emulator,
        "POST",
        TOKEN_PATH,
        body=body,
        headers={"anthropic-beta": TOKEN_BETAS},
        version=None,
    )
    assert answer.status == 400
    assert answer.json()["error"] == "unsupported_grant_type"


def test_sdk_reports_a_refusal_as_workload_identity_error(federation: FederationSetup) -> None:
    foreign = federation.issuer.github_actions("evil/app", environment="prod")
    credentials = WorkloadIdentityCredentials(
        identity_token_provider=lambda: foreign,
        federation_rule_id=federation.rule_id,
        organization_id=federation.organization_id,
    )
    credentials.bind_base_url(federation.emulator.base_url)
    with pytest.raises(WorkloadIdentityError) as raised:
        credentials()
    assert raised.value.status_code == 401
    assert raised.value.body["error"] == "invalid_grant"
    assert raised.value.request_id


# ------------------------------------------------------------------------------ replay


def test_replayed_assertion_is_refused(federation: FederationSetup) -> None:
    assertion = _prod_token(federation)
    assert _exchange(federation, assertion).status == 200
    _refused(federation, assertion, "jti_replayed")


def test_racing_replays_mint_exactly_once(federation: FederationSetup) -> None:
    assertion = _prod_token(federation)
    statuses: list[int] = []
    start = threading.Barrier(8)

    def attempt() -> None:
        start.wait()
        statuses.append(_exchange(federation, assertion).status)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200] + [401] * 7


def test_a_refused_attempt_does_not_burn_the_workloads_token(federation: FederationSetup) -> None:
    assertion = _prod_token(federation)
    _refused(federation, assertion, "organization_mismatch", organization_id="another-org")
    assert _exchange(federation, assertion).status == 200


def test_check_jti_off_lets_the_same_assertion_mint_again(federation: FederationSetup) -> None:
    federation.admin.beta.organization.federation.issuers.update(
        federation.issuer_id, check_jti=False
    )
    assertion = _prod_token(federation)
    assert _exchange(federation, assertion).status == 200
    assert _exchange(federation, assertion).status == 200


def test_assertion_without_jti_is_accepted_without_single_use(federation: FederationSetup) -> None:
    assertion = _prod_token(federation, jti=None)
    assert "jti" not in jwt.decode(assertion, options={"verify_signature": False})
    assert _exchange(federation, assertion).status == 200
    assert _exchange(federation, assertion).status == 200


# ------------------------------------------------------------------------------ audience


def test_wrong_audience_is_refused(federation: FederationSetup) -> None:
    _refused(
        federation, _prod_token(federation, audience="https://evil.example"), "audience_mismatch"
    )


def test_audience_list_matches_on_any_element(federation: FederationSetup) -> None:
    token = _prod_token(federation, audience=["https://other.example", "https://api.anthropic.com"])
    assert _exchange(federation, token).status == 200


def test_rule_without_audience_requires_the_default_audience(federation: FederationSetup) -> None:
    federation.admin.beta.organization.federation.rules.update(
        federation.rule_id, match={"subject_prefix": PROD_SUBJECT}
    )
    _refused(federation, _prod_token(federation, audience="acme"), "audience_mismatch")
    default = federation.emulator.state.default_audience
    assert _exchange(federation, _prod_token(federation, audience=default)).status == 200


# ------------------------------------------------------------------------------ time


def test_expired_assertion_is_refused(federation: FederationSetup) -> None:
    _refused(federation, _prod_token(federation, now=_now(federation) - 400), "expired")


def test_assertion_expiring_under_the_emulators_clock_is_refused(
    federation: FederationSetup,
) -> None:
    assertion = _prod_token(federation)  # valid 300 s
    federation.emulator.state.advance_clock(300)
    _refused(federation, assertion, "expired")


def test_too_long_lived_assertion_is_refused(federation: FederationSetup) -> None:
    # The issuer allows 3600 s between iat and exp by default.
    _refused(federation, _prod_token(federation, lifetime=3601), "lifetime_too_long")
    assert _exchange(federation, _prod_token(federation, lifetime=3600)).status == 200


def test_assertion_without_iat_is_refused(federation: FederationSetup) -> None:
    _refused(federation, _prod_token(federation, iat=None), "missing_iat")


def test_assertion_from_the_future_is_refused(federation: FederationSetup) -> None:
    later = _now(federation) + 120
    _refused(federation, _prod_token(federation, now=later), "issued_in_future")


# ------------------------------------------------------------------------------ keys


def test_unknown_kid_is_refused(federation: FederationSetup) -> None:
    forger = make_signing_key("rsa", kid="attacker-1")
    _refused(federation, _prod_token(federation, key=forger), "unknown_kid")


def test_published_kid_with_a_forged_signature_is_refused(federation: FederationSetup) -> None:
    forger = make_signing_key("rsa", kid=federation.issuer.current_key.kid)
    _refused(federation, _prod_token(federation, key=forger), "bad_signature")


def test_missing_kid_is_refused_even_when_one_key_would_verify(federation: FederationSetup) -> None:
    _refused(federation, _prod_token(federation, headers={"kid": None}), "missing_kid")


def test_kid_matching_is_exact(federation: FederationSetup) -> None:
    kid = federation.issuer.current_key.kid
    _refused(federation, _prod_token(federation, headers={"kid": kid.upper()}), "unknown_kid")


def test_unsigned_and_shared_secret_assertions_are_refused(federation: FederationSetup) -> None:
    claims = jwt.decode(_prod_token(federation), options={"verify_signature": False})
    kid = federation.issuer.current_key.kid
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": kid})
    _refused(federation, unsigned, "unsupported_alg")
    # HS256 keyed with the published public key: the classic algorithm-confusion attack.
    public_jwk = federation.issuer.jwks()["keys"][0]
    hmac_token = jwt.encode(
        {**claims, "jti": "other"},
        str(public_jwk["n"]).encode(),
        algorithm="HS256",
        headers={"kid": kid},
    )
    _refused(federation, hmac_token, "unsupported_alg")


def test_rotated_key_is_seen_at_once_and_retired_key_stops_minting(
    federation: FederationSetup,
) -> None:
    old = _prod_token(federation)
    old_kid = federation.issuer.current_key.kid
    federation.issuer.rotate()
    assert _exchange(federation, _prod_token(federation)).status == 200
    federation.issuer.retire(old_kid)
    _refused(federation, old, "unknown_kid")


def test_token_of_an_untrusted_issuer_cannot_mint(federation: FederationSetup) -> None:
    with OidcIssuer(key_type="ec") as stranger:
        token = stranger.github_actions("acme/app", environment="prod")
        _refused(federation, token, "unknown_kid")
        # Even claiming our issuer's iss and kid does not help without our key.
        spoofed = stranger.github_actions(
            "acme/app",
            environment="prod",
            iss=federation.issuer.issuer,
            headers={"kid": federation.issuer.current_key.kid},
        )
        _refused(federation, spoofed, "unsupported_alg")  # ES256 against our RSA key


def test_iss_must_equal_the_issuer_url_exactly(federation: FederationSetup) -> None:
    _refused(
        federation, _prod_token(federation, iss=federation.issuer.issuer + "/"), "issuer_mismatch"
    )


def test_jwks_outage_refuses_and_is_counted(federation: FederationSetup) -> None:
    federation.issuer.fail_status = 503
    _refused(federation, _prod_token(federation), "jwks_unavailable")
    issuer = federation.admin.beta.organization.federation.issuers.retrieve(federation.issuer_id)
    assert issuer.poll_status is not None
    assert issuer.poll_status.consecutive_failures == 1


def test_inline_and_explicit_url_jwks_verify_too(federation: FederationSetup) -> None:
    org = federation.admin.beta.organization.federation
    for name, jwks in (
        ("inline-ci", {"type": "inline", "keys": federation.issuer.jwks()["keys"]}),
        (
            "url-ci",
            {
                "type": "explicit_url",
                "url": federation.issuer.jwks_url,
                "ca_cert_pem": federation.issuer.ca_pem,
            },
        ),
    ):
        org.rules.archive(federation.rule_id)
        org.issuers.archive(federation.issuer_id)
        issuer = org.issuers.create(name=name, issuer_url=federation.issuer.issuer, jwks=jwks)
        rule = org.rules.create(
            name=f"{name}-rule",
            issuer_id=issuer.id,
            match={"subject_prefix": PROD_SUBJECT},
            oauth_scope="workspace:inference",
            target={"type": "service_account", "service_account_id": federation.service_account_id},
            workspace_id=federation.emulator.state.default_workspace_id,
        )
        answer = _exchange(federation, _prod_token(federation), federation_rule_id=rule.id)
        assert answer.status == 200, (name, answer.body)
        federation = FederationSetup(
            federation.emulator,
            federation.issuer,
            federation.admin,
            federation.service_account_id,
            issuer.id,
            rule.id,
        )


# ------------------------------------------------------------------------------ matching


def test_subject_prefix_without_star_is_an_exact_match(federation: FederationSetup) -> None:
    _refused(
        federation,
        federation.issuer.github_actions("acme/app", environment="prod-2"),
        "subject_mismatch",
    )
    _refused(
        federation,
        federation.issuer.github_actions("evil/app", environment="prod"),
        "subject_mismatch",
    )


def test_subject_prefix_with_star_matches_the_prefix(federation: FederationSetup) -> None:
    federation.admin.beta.organization.federation.rules.update(
        federation.rule_id,
        match={"subject_prefix": "repo:acme/app:*", "audience": "https://api.anthropic.com"},
    )
    pull_request = federation.issuer.github_actions("acme/app", event_name="pull_request")
    assert _exchange(federation, pull_request).status == 200
    _refused(
        federation,
        federation.issuer.github_actions("acme/app-fork", environment="prod"),
        "subject_mismatch",
    )


def test_claims_match_exact_strings_only(federation: FederationSetup) -> None:
    federation.admin.beta.organization.federation.rules.update(
        federation.rule_id,
        match={
            "subject_prefix": "repo:acme/*",
            "claims": {"repository_owner": "acme", "ref": "refs/heads/main"},
        },
    )
    main = federation.issuer.github_actions("acme/tools", ref="refs/heads/main")
    assert _exchange(federation, main).status == 200
    branch = federation.issuer.github_actions("acme/tools", ref="refs/heads/dev")
    _refused(federation, branch, "claim_mismatch")
    listed = federation.issuer.github_actions("acme/tools", repository_owner=["acme"])
    _refused(federation, listed, "claim_mismatch")


def test_cel_condition_must_hold(federation: FederationSetup) -> None:
    federation.admin.beta.organization.federation.rules.update(
        federation.rule_id,
        match={
            "subject_prefix": "repo:acme/*",
            "condition": 'claims.repository_owner == "acme"'
            ' && claims.ref.startsWith("refs/heads/release/")',
        },
    )
    release = federation.issuer.github_actions("acme/app", ref="refs/heads/release/1.0")
    assert _exchange(federation, release).status == 200
    _refused(federation, federation.issuer.github_actions("acme/app"), "condition_false")


def test_cel_condition_on_a_missing_claim_fails_closed(federation: FederationSetup) -> None:
    federation.admin.beta.organization.federation.rules.update(
        federation.rule_id,
        match={"subject_prefix": PROD_SUBJECT, "condition": 'claims.environment_url != "x"'},
    )
    _refused(federation, _prod_token(federation), "condition_false")


# ------------------------------------------------------------------------------ lifetime


@pytest.mark.parametrize(
    ("rule_lifetime", "assertion_left", "expected"),
    [
        (600, 300, 600),  # min(600, 2 x 300)
        (3600, 300, 600),  # capped at twice the assertion's remaining validity
        (600, 100, 200),
        (600, 20, 60),  # never below 60 s
        (120, 3000, 120),  # the rule's own lifetime
    ],
)
def test_token_lifetime_is_capped_by_the_assertion(
    federation: FederationSetup, rule_lifetime: int, assertion_left: int, expected: int
) -> None:
    federation.admin.beta.organization.federation.rules.update(
        federation.rule_id, token_lifetime_seconds=rule_lifetime
    )
    federation.emulator.state.freeze_clock()  # exact arithmetic, however slow the machine
    answer = _exchange(federation, _prod_token(federation, lifetime=assertion_left))
    assert answer.json()["expires_in"] == expected


def test_minted_token_stops_working_at_its_expiry(federation: FederationSetup) -> None:
    federation.admin.beta.organization.federation.rules.update(
        federation.rule_id, token_lifetime_seconds=60
    )
    federation.emulator.state.freeze_clock()
    token = _exchange(federation, _prod_token(federation)).json()["access_token"]
    assert _message_with(federation.emulator, token).status == 200
    federation.emulator.state.advance_clock(59)
    assert _message_with(federation.emulator, token).status == 200
    federation.emulator.state.advance_clock(1)
    answer = _message_with(federation.emulator, token)
    assert answer.status == 401
    assert answer.json()["error"]["type"] == "authentication_error"


def test_leaked_token_used_through_the_sdk_fails_after_expiry(federation: FederationSetup) -> None:
    token = _exchange(federation, _prod_token(federation)).json()["access_token"]
    thief = anthropic.Anthropic(
        auth_token=token,
        base_url=federation.emulator.base_url,
        max_retries=0,
        default_headers={"anthropic-beta": "oauth-2025-04-20"},
    )
    with thief:
        thief.messages.create(**MESSAGE)
        federation.emulator.state.advance_clock(3600)
        with pytest.raises(anthropic.AuthenticationError):
            thief.messages.create(**MESSAGE)


def test_oauth_token_without_the_oauth_beta_is_refused(federation: FederationSetup) -> None:
    token = _exchange(federation, _prod_token(federation)).json()["access_token"]
    answer = http_request(
        federation.emulator,
        "POST",
        "/v1/messages",
        body=MESSAGE,
        headers={"authorization": f"Bearer {token}"},
    )
    assert answer.status == 401
    assert "OAuth authentication is currently not supported" in answer.json()["error"]["message"]


# ------------------------------------------------------------------------------ archive


def test_archived_rule_stops_minting_but_minted_tokens_live_on(federation: FederationSetup) -> None:
    token = _exchange(federation, _prod_token(federation)).json()["access_token"]
    archived = federation.admin.beta.organization.federation.rules.archive(federation.rule_id)
    assert archived.workspace_ids == []
    _refused(federation, _prod_token(federation), "rule_archived")
    assert _message_with(federation.emulator, token).status == 200


def test_archived_issuer_stops_minting(federation: FederationSetup) -> None:
    org = federation.admin.beta.organization.federation
    with pytest.raises(anthropic.BadRequestError, match="live federation rules"):
        org.issuers.archive(federation.issuer_id)
    # A rule seeded past the API's guard (as a Console race could leave it) still cannot mint.
    registry = federation.emulator.state.federation
    org.rules.archive(federation.rule_id)
    org.issuers.archive(federation.issuer_id)
    live_issuer = registry.create_issuer(
        name="fresh",
        issuer_url=federation.issuer.issuer,
        jwks=registry.issuer(federation.issuer_id).jwks,
    )
    rule = registry.create_rule(
        name="fresh-rule",
        issuer_id=live_issuer.id,
        match=registry.rule(federation.rule_id).match,
        oauth_scope="workspace:inference",
        service_account_id=federation.service_account_id,
        workspace_id=federation.emulator.state.default_workspace_id,
    )
    assert _exchange(federation, _prod_token(federation), federation_rule_id=rule.id).status == 200
    registry.force_archive_issuer(live_issuer.id)  # the inconsistency a race could leave
    _refused(federation, _prod_token(federation), "issuer_archived", federation_rule_id=rule.id)


def test_unknown_rule_is_refused(federation: FederationSetup) -> None:
    _refused(
        federation, _prod_token(federation), "rule_not_found", federation_rule_id="fdrl_01nope"
    )


# ------------------------------------------------------------------------------ workspaces


@pytest.fixture
def two_workspaces(federation: FederationSetup) -> tuple[str, str]:
    org = federation.admin.beta.organization
    first = org.workspaces.create(name="ci-one").id
    second = org.workspaces.create(name="ci-two").id
    for workspace_id in (first, second):
        org.service_accounts.workspaces.add(
            federation.service_account_id,
            workspace_id=workspace_id,
            workspace_role="workspace_developer",
        )
        org.federation.rules.workspaces.add(federation.rule_id, workspace_id=workspace_id)
    org.federation.rules.workspaces.remove(
        federation.emulator.state.default_workspace_id, federation_rule_id=federation.rule_id
    )
    return first, second


def test_token_is_tied_to_its_workspace(
    federation: FederationSetup, two_workspaces: tuple[str, str]
) -> None:
    first, second = two_workspaces
    answer = _exchange(federation, _prod_token(federation), workspace_id=first)
    token = answer.json()["access_token"]
    assert _message_with(federation.emulator, token).status == 200
    assert (
        _message_with(federation.emulator, token, **{"anthropic-workspace-id": first}).status == 200
    )
    other = _message_with(federation.emulator, token, **{"anthropic-workspace-id": second})
    assert other.status == 403
    assert federation.emulator.state.usage()[-1].workspace_id == first


def test_several_workspaces_need_an_explicit_choice(
    federation: FederationSetup, two_workspaces: tuple[str, str]
) -> None:
    _refused(federation, _prod_token(federation), "workspace_required")
    _refused(federation, _prod_token(federation), "workspace_not_enabled", workspace_id="default")
    second = two_workspaces[1]
    assert _exchange(federation, _prod_token(federation), workspace_id=second).status == 200


def test_target_must_be_a_member_of_the_workspace(federation: FederationSetup) -> None:
    org = federation.admin.beta.organization
    lonely = org.workspaces.create(name="no-members").id
    org.federation.rules.workspaces.add(federation.rule_id, workspace_id=lonely)
    _refused(federation, _prod_token(federation), "not_a_member", workspace_id=lonely)


def test_legacy_workspace_binding_does_not_enforce_membership(
    federation: FederationSetup,
) -> None:
    registry = federation.emulator.state.federation
    legacy = registry.create_workspace("legacy-ws")
    rule = registry.create_rule(
        name="legacy-rule",
        issuer_id=federation.issuer_id,
        match=registry.rule(federation.rule_id).match,
        oauth_scope="workspace:inference",
        service_account_id=federation.service_account_id,
        legacy_workspace_id=legacy.id,
    )
    answer = _exchange(federation, _prod_token(federation), federation_rule_id=rule.id)
    assert answer.status == 200, answer.body
    record = federation.emulator.state.tokens.lookup(answer.json()["access_token"])
    assert record is not None and record.workspace_id == legacy.id


def test_default_keyword_and_default_choice_pick_the_default_workspace(
    federation: FederationSetup,
) -> None:
    default = federation.emulator.state.default_workspace_id
    org = federation.admin.beta.organization
    org.federation.rules.update(federation.rule_id, applies_to_all_workspaces=True)
    org.workspaces.create(name="elsewhere")
    for extra in ({}, {"workspace_id": "default"}):
        token = _exchange(federation, _prod_token(federation), **extra).json()["access_token"]
        record = federation.emulator.state.tokens.lookup(token)
        assert record is not None and record.workspace_id == default


def test_archived_workspace_refuses_its_tokens(
    federation: FederationSetup, two_workspaces: tuple[str, str]
) -> None:
    first = two_workspaces[0]
    token = _exchange(federation, _prod_token(federation), workspace_id=first).json()[
        "access_token"
    ]
    federation.admin.beta.organization.workspaces.archive(first)
    assert _message_with(federation.emulator, token).status == 403
    _refused(federation, _prod_token(federation), "workspace_not_enabled", workspace_id=first)


def test_minted_inference_token_cannot_manage_federation(federation: FederationSetup) -> None:
    token = _exchange(federation, _prod_token(federation)).json()["access_token"]
    workload = anthropic.Anthropic(
        auth_token=token,
        base_url=federation.emulator.base_url,
        max_retries=0,
        default_headers={"anthropic-beta": "oauth-2025-04-20"},
    )
    with workload, pytest.raises(anthropic.PermissionDeniedError, match="org:admin"):
        workload.beta.organization.federation.rules.list()


# ------------------------------------------------------------------------------ SDK chain


def test_sdk_env_chain_exchanges_a_projected_kubernetes_token_file(
    federation: FederationSetup,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
) -> None:
    """The credential chain a pod uses: ANTHROPIC_IDENTITY_TOKEN_FILE and the rule's ids."""
    org = federation.admin.beta.organization.federation
    rule = org.rules.create(
        name="payments-api",
        issuer_id=federation.issuer_id,
        match={"subject_prefix": "system:serviceaccount:payments:api"},
        oauth_scope="workspace:inference",
        target={"type": "service_account", "service_account_id": federation.service_account_id},
        workspace_id=federation.emulator.state.default_workspace_id,
    )
    token_file = tmp_path / "token"
    token_file.write_text(federation.issuer.kubernetes("payments", "api"))
    monkeypatch.setenv("ANTHROPIC_IDENTITY_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("ANTHROPIC_FEDERATION_RULE_ID", rule.id)
    monkeypatch.setenv("ANTHROPIC_ORGANIZATION_ID", federation.organization_id)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", federation.emulator.base_url)
    for _ in range(2):
        # The kubelet rotates the projected token; each new client exchanges the new one.
        token_file.write_text(federation.issuer.kubernetes("payments", "api"))
        with anthropic.Anthropic(max_retries=0) as client:
            client.messages.create(**MESSAGE)
    events = federation.emulator.state.tokens.events()
    assert [e.outcome for e in events] == ["minted", "minted"]
    assert {e.subject for e in events} == {"system:serviceaccount:payments:api"}


def test_sdk_re_exchanges_when_its_token_expires(
    federation: FederationSetup, workload_client: anthropic.Anthropic
) -> None:
    workload_client.messages.create(**MESSAGE)
    federation.emulator.state.advance_clock(601)  # past the rule's 600 s token
    workload_client.with_options(max_retries=1).messages.create(**MESSAGE)
    assert [e.outcome for e in federation.emulator.state.tokens.events()] == [
        "minted",
        "minted",
    ]


# ------------------------------------------------------------------------------ malformed


def _forge_header(assertion: str, header: dict[str, Any]) -> str:
    """Swap the header of a signed token (the signature no longer matters to the check)."""
    import base64
    import json

    encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return ".".join([encoded, *assertion.split(".")[1:]])


@pytest.mark.parametrize(
    "header",
    [
        {"alg": ["RS256"], "kid": "x"},
        {"alg": {"RS256": 1}, "kid": "x"},
        {"alg": "RS256", "kid": ["x"]},
        {"alg": None},
    ],
)
def test_malformed_headers_are_refused_not_crashed_on(
    federation: FederationSetup, header: dict[str, Any]
) -> None:
    answer = _exchange(federation, _forge_header(_prod_token(federation), header))
    assert answer.status in (400, 401), answer.body
    assert answer.json()["error"] in ("invalid_grant", "invalid_request")


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 1e300, "soon", True])
def test_non_numeric_or_non_finite_times_are_refused(
    federation: FederationSetup, value: Any
) -> None:
    assertion = federation.issuer.mint(
        {"sub": PROD_SUBJECT, "aud": "https://api.anthropic.com", "exp": value}
    )
    answer = _exchange(federation, assertion)
    assert answer.status == 401, answer.body


def test_oversized_assertion_is_refused_before_parsing(federation: FederationSetup) -> None:
    huge = federation.issuer.mint(
        {"sub": PROD_SUBJECT, "aud": "https://api.anthropic.com", "pad": "x" * 20_000}
    )
    answer = _exchange(federation, huge)
    assert answer.status == 400
    assert answer.json()["error"] == "invalid_request"


def test_token_endpoint_faults_never_log_the_assertion(federation: FederationSetup) -> None:
    federation.emulator.state.inject_fault("server_error", path_prefix=TOKEN_PATH)
    assertion = _prod_token(federation)
    assert _exchange(federation, assertion).status == 500
    assert _exchange(federation, assertion).status == 200  # the fault was one-shot
    assert assertion not in str([r.to_json() for r in federation.emulator.state.requests()])


def test_archiving_the_service_account_stops_its_minted_tokens(
    federation: FederationSetup,
) -> None:
    token = _exchange(federation, _prod_token(federation)).json()["access_token"]
    org = federation.admin.beta.organization
    org.federation.rules.archive(federation.rule_id)
    assert _message_with(federation.emulator, token).status == 200  # the rule alone: no
    org.service_accounts.archive(federation.service_account_id)
    answer = _message_with(federation.emulator, token)
    assert answer.status == 401
    assert "archived" in answer.json()["error"]["message"]
