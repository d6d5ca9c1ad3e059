"""AuditedAnthropic on federated credentials: the SDK's own WorkloadIdentityCredentials mints
through the emulator from tokens of the loopback OIDC issuer, and the records name the
workload (issuer, subject, rule...) instead of a key hint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from claudesec.audit.store import AuditStore
from claudesec.emulator import IssuedKey
from tests.fixtures.emulator import MODEL
from tests.fixtures.federation import PROD_SUBJECT, FederationSetup
from tests.guard.test_pipeline import audit_config, open_store, records


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AuditStore]:
    with open_store(tmp_path / "audit.db") as opened:
        yield opened


def _ask(client: object) -> object:
    return client.messages.create(  # type: ignore[attr-defined]
        model=MODEL, max_tokens=32, messages=[{"role": "user", "content": "hello"}]
    )


def test_sdk_workload_credentials_mint_and_call_through_audited_client(
    federation: FederationSetup, store: AuditStore
) -> None:
    from anthropic.lib.credentials import WorkloadIdentityCredentials

    from claudesec import AuditedAnthropic

    issuer = federation.issuer
    credentials = WorkloadIdentityCredentials(
        identity_token_provider=lambda: issuer.github_actions("acme/app", environment="prod"),
        federation_rule_id=federation.rule_id,
        organization_id=federation.organization_id,
    )
    with AuditedAnthropic(
        user="alice",
        credentials=credentials,
        base_url=federation.emulator.base_url,
        claudesec_config=audit_config(),
        store=store,
        max_retries=0,
    ) as client:
        reply = _ask(client)
        _ask(client)
    assert reply.content[0].text == "Emulated reply to: hello"  # type: ignore[attr-defined]
    # One exchange served both calls (the SDK's TokenCache), and it minted.
    minted = [e for e in federation.emulator.state.tokens.events() if e.outcome == "minted"]
    assert len(minted) == 1
    # The emulator saw an OAuth access token, never a key.
    sent = federation.emulator.state.requests(path="/v1/messages")
    assert sent and all(r.key_id is None for r in sent)
    assert all((r.credential_hint or "").startswith("sk-ant-oat01-") for r in sent)

    events = records(store, admissions=True)
    calls = [e for e in events if e.type == "call"]
    assert len(calls) == 2
    for call in calls:
        assert dict(call.upstream) == {
            "kind": "federation",
            "issuer": issuer.issuer,
            "subject": PROD_SUBJECT,
            "rule_id": federation.rule_id,
            "organization_id": federation.organization_id,
        }
        assert "key_hint" not in call.upstream
    # The first admission is written before the exchange: it names the rule, and the
    # record of the call itself names the workload.
    admissions = [e for e in events if e.type == "admission"]
    assert admissions[0].upstream["rule_id"] == federation.rule_id
    assert admissions[1].upstream["subject"] == PROD_SUBJECT


def test_env_chain_with_identity_token_file_works_unchanged(
    federation: FederationSetup,
    store: AuditStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from claudesec import AuditedAnthropic

    token_file = tmp_path / "token"
    token_file.write_text(federation.issuer.github_actions("acme/app", environment="prod"))
    for var in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ANTHROPIC_CONFIG_DIR", str(tmp_path / "no-profiles"))
    monkeypatch.setenv("ANTHROPIC_FEDERATION_RULE_ID", federation.rule_id)
    monkeypatch.setenv("ANTHROPIC_ORGANIZATION_ID", federation.organization_id)
    monkeypatch.setenv("ANTHROPIC_IDENTITY_TOKEN_FILE", str(token_file))
    with AuditedAnthropic(
        user="alice",
        base_url=federation.emulator.base_url,
        claudesec_config=audit_config(),
        store=store,
        max_retries=0,
    ) as client:
        _ask(client)
    [call] = records(store)
    assert call.upstream["kind"] == "federation"
    assert call.upstream["subject"] == PROD_SUBJECT
    assert call.upstream["rule_id"] == federation.rule_id


def test_a_static_key_is_recorded_by_its_hint_never_the_key(
    federation: FederationSetup, emulator_api_key: IssuedKey, store: AuditStore
) -> None:
    from claudesec import AuditedAnthropic
    from claudesec.redact import redact

    with AuditedAnthropic(
        user="alice",
        api_key=emulator_api_key.secret,
        base_url=federation.emulator.base_url,
        claudesec_config=audit_config(),
        store=store,
        max_retries=0,
    ) as client:
        _ask(client)
    [call] = records(store)
    assert dict(call.upstream) == {"kind": "api_key", "key_hint": redact(emulator_api_key.secret)}
    assert emulator_api_key.secret not in call.canonical_json()


def test_a_refused_exchange_fails_the_call_and_records_it_as_an_error(
    federation: FederationSetup, store: AuditStore
) -> None:
    """A foreign repository's token under the pinned rule: the SDK raises, the attempt's
    record says it failed and names the rule it tried."""
    import anthropic
    from anthropic.lib.credentials import WorkloadIdentityCredentials

    from claudesec import AuditedAnthropic

    issuer = federation.issuer
    credentials = WorkloadIdentityCredentials(
        identity_token_provider=lambda: issuer.github_actions("evil/fork", environment="prod"),
        federation_rule_id=federation.rule_id,
        organization_id=federation.organization_id,
    )
    with (
        AuditedAnthropic(
            user="alice",
            credentials=credentials,
            base_url=federation.emulator.base_url,
            claudesec_config=audit_config(),
            store=store,
            max_retries=0,
        ) as client,
        pytest.raises(anthropic.AnthropicError),
    ):
        _ask(client)
    assert federation.last_outcome() == "subject_mismatch"
    assert not federation.emulator.state.requests(path="/v1/messages")
    [call] = records(store)
    assert call.decision == "error"
    assert call.upstream["rule_id"] == federation.rule_id
    assert call.upstream["subject"] == "repo:evil/fork:environment:prod"


def test_copies_of_a_federated_client_keep_its_credential_and_token(
    federation: FederationSetup, store: AuditStore
) -> None:
    """The SDK hands credentials to copies of ``anthropic.Anthropic`` only: ``for_user`` and
    ``with_options`` of an audited client must neither lose the credential nor exchange the
    (single-use) identity token a second time."""
    from anthropic.lib.credentials import WorkloadIdentityCredentials

    from claudesec import AuditedAnthropic

    token = federation.issuer.github_actions("acme/app", environment="prod")
    credentials = WorkloadIdentityCredentials(
        identity_token_provider=lambda: token,  # the same token every time: jti single use
        federation_rule_id=federation.rule_id,
        organization_id=federation.organization_id,
    )
    with AuditedAnthropic(
        user="alice",
        credentials=credentials,
        base_url=federation.emulator.base_url,
        claudesec_config=audit_config(),
        store=store,
        max_retries=0,
    ) as client:
        _ask(client)
        _ask(client.for_user("alice"))
        _ask(client.with_options(timeout=30))
    outcomes = [e.outcome for e in federation.emulator.state.tokens.events()]
    assert outcomes == ["minted"]
    assert [e.upstream["subject"] for e in records(store)] == [PROD_SUBJECT] * 3


def test_the_async_client_runs_on_workload_credentials_too(
    federation: FederationSetup, store: AuditStore
) -> None:
    import asyncio

    from anthropic.lib.credentials import WorkloadIdentityCredentials

    from claudesec import AsyncAuditedAnthropic

    issuer = federation.issuer

    async def main() -> None:
        async with AsyncAuditedAnthropic(
            user="alice",
            credentials=WorkloadIdentityCredentials(
                identity_token_provider=lambda: issuer.github_actions(
                    "acme/app", environment="prod"
                ),
                federation_rule_id=federation.rule_id,
                organization_id=federation.organization_id,
            ),
            base_url=federation.emulator.base_url,
            claudesec_config=audit_config(),
            store=store,
            max_retries=0,
        ) as client:
            await client.messages.create(
                model=MODEL, max_tokens=8, messages=[{"role": "user", "content": "hi"}]
            )

    asyncio.run(main())
    [call] = records(store)
    assert call.upstream["kind"] == "federation"
    assert call.upstream["subject"] == PROD_SUBJECT
