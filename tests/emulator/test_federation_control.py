"""Driving federation from another process: clock, OAuth tokens and auth events over control."""

from __future__ import annotations

import anthropic
import pytest

from claudesec.emulator import Emulator, EmulatorControl
from tests.fixtures.emulator import http_request
from tests.fixtures.federation import TOKEN_BETAS, FederationSetup


def test_control_issues_an_org_admin_token_the_sdk_can_use(
    emulator: Emulator, emulator_control: EmulatorControl
) -> None:
    token = emulator_control.add_oauth_token(lifetime_s=120)
    client = anthropic.Anthropic(
        auth_token=token,
        base_url=emulator.base_url,
        max_retries=0,
        default_headers={"anthropic-beta": "oauth-2025-04-20"},
    )
    with client:
        made = client.beta.organization.service_accounts.create(name="from-control")
        assert made.created_by_actor_id == emulator.state.default_user_id
        emulator_control.advance_clock(120)
        with pytest.raises(anthropic.AuthenticationError):
            client.beta.organization.service_accounts.list()
    # The control log never holds the token.
    assert token not in str(emulator_control.requests())


def test_control_reports_auth_events(
    federation: FederationSetup, emulator_control: EmulatorControl
) -> None:
    assertion = federation.issuer.github_actions("acme/app", environment="prod")
    for _ in range(2):
        http_request(
            federation.emulator,
            "POST",
            "/v1/oauth/token",
            body=federation.exchange_body(assertion),
            headers={"anthropic-beta": TOKEN_BETAS},
            version=None,
        )
    events = emulator_control.auth_events()
    assert [e["outcome"] for e in events] == ["minted", "jti_replayed"]
    assert events[0]["subject"] == "repo:acme/app:environment:prod"
    assert assertion not in str(events)
