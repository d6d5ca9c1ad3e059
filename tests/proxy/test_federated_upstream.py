"""A proxy that holds no static key: its upstream credential is exchanged from its own workload
token (an identity token file, rotated like a projected Kubernetes token) and refreshed before
it expires. Time is the emulator's clock, driven by the test: nothing sleeps."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from claudesec.audit.store import AuditStore
from claudesec.config import Config
from claudesec.emulator import Emulator
from claudesec.errors import ConfigError
from claudesec.proxy.server import ThreadedProxy
from claudesec.proxy.service import ServeOptions, build_server
from claudesec.proxy.tokens import TokenStore
from tests.fixtures.emulator import MODEL
from tests.fixtures.federation import PROD_SUBJECT, FederationSetup
from tests.proxy.conftest import make_config


class Workload:
    """The proxy's pod: its token file, which "the kubelet" rewrites with a fresh token."""

    def __init__(self, federation: FederationSetup, path: Path) -> None:
        self.federation = federation
        self.path = path
        self.rotate()

    def rotate(self) -> None:
        token = self.federation.issuer.github_actions("acme/app", environment="prod")
        self.path.write_text(token)


@pytest.fixture
def workload(federation: FederationSetup, tmp_path: Path) -> Workload:
    federation.emulator.state.freeze_clock()
    return Workload(federation, tmp_path / "identity-token")


def federated_config(tmp_path: Path, federation: FederationSetup, token_file: Path) -> Config:
    return make_config(
        tmp_path,
        upstream_credential="federation",
        federation_rule_id=federation.rule_id,
        federation_organization_id=federation.organization_id,
        federation_identity_token_file=str(token_file),
    )


@pytest.fixture
def federated_proxy(
    federation: FederationSetup, workload: Workload, tmp_path: Path
) -> Iterator[tuple[ThreadedProxy, Config]]:
    emulator = federation.emulator
    config = federated_config(tmp_path, federation, workload.path)
    server = build_server(
        config,
        ServeOptions(listen="127.0.0.1:0", upstream=emulator.base_url),
        environ={},
        clock=lambda: emulator.state.now().timestamp(),
    )
    with ThreadedProxy(server) as handle:
        yield handle, config


def _client(handle: ThreadedProxy, config: Config) -> Any:
    import anthropic

    secret = (
        TokenStore.from_config(config.proxy)
        .create(user="alice", role="dev", lifetime_s=86_400)
        .secret
    )
    return anthropic.Anthropic(api_key=secret, base_url=handle.base_url, max_retries=0)


def _ask(client: Any) -> Any:
    return client.messages.create(
        model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    )


def test_a_proxy_with_no_key_serves_longer_than_its_token_lifetime(
    federation: FederationSetup,
    workload: Workload,
    federated_proxy: tuple[ThreadedProxy, Config],
) -> None:
    handle, config = federated_proxy
    state = federation.emulator.state
    credential: Any = handle.server.credential
    client = _client(handle, config)

    def step(seconds: float) -> None:
        state.advance_clock(seconds)
        workload.rotate()  # the kubelet keeps the projected token fresh
        _ask(client)

    _ask(client)
    assert credential.exchanges == 1
    [first] = [t for t in state.tokens.tokens() if t.rule_id == federation.rule_id]
    lifetime = (first.expires_at - first.created_at).total_seconds()
    assert lifetime == 600  # min(rule 600, 2 x the 300 s assertion)

    step(lifetime - 200)  # 200 s left: the cached token serves
    assert credential.exchanges == 1
    step(100)  # 100 s left, inside the SDK's advisory window: refreshed ahead of expiry
    assert credential.exchanges == 2
    step(200)  # the first token is now dead; the proxy is on its second
    assert first.expired(state.now())
    step(lifetime - 200)  # and on to a third
    assert credential.exchanges == 3

    served = (state.now() - first.created_at).total_seconds()
    assert served > lifetime
    outcomes = [e.outcome for e in state.tokens.events()]
    assert outcomes == ["minted"] * 3
    # No key ever reached the API: every call carried a federated access token.
    sent = state.requests(path="/v1/messages")
    assert len(sent) == 5
    assert all(r.key_id is None and r.status == 200 for r in sent)

    assert handle.server.flush_audit()
    with AuditStore.open(Path(config.audit.store_path), readonly=True) as store:
        calls = [
            store.get(seq).event  # type: ignore[union-attr]
            for seq in range(1, store.head().seq + 1)
            if store.get(seq).event.type == "call"  # type: ignore[union-attr]
        ]
    assert len(calls) == 5
    for call in calls:
        assert call.upstream["kind"] == "federation"
        assert call.upstream["subject"] == PROD_SUBJECT
        assert call.upstream["rule_id"] == federation.rule_id
        assert call.upstream["issuer"] == federation.issuer.issuer
        assert "key_hint" not in call.upstream


def test_an_expired_token_file_fails_closed_with_a_clear_503(
    federation: FederationSetup,
    workload: Workload,
    federated_proxy: tuple[ThreadedProxy, Config],
) -> None:
    """The workload token is never rotated: once the minted token is due, the exchange is
    refused and the proxy answers 503 instead of sending anything upstream."""
    import anthropic

    handle, config = federated_proxy
    state = federation.emulator.state
    client = _client(handle, config)
    _ask(client)
    state.advance_clock(600)  # minted token expired; the token file's own token too
    with pytest.raises(anthropic.InternalServerError) as raised:
        _ask(client)
    assert raised.value.status_code == 503
    assert "credential" in str(raised.value)
    # The SDK's TokenCache retries a refused exchange once, then gives up.
    outcomes = [e.outcome for e in state.tokens.events()]
    assert outcomes[0] == "minted" and set(outcomes[1:]) == {"expired"}
    assert len(state.requests(path="/v1/messages")) == 1


def test_federation_settings_missing_are_a_config_error_naming_the_key(
    federation: FederationSetup, tmp_path: Path, emulator: Emulator
) -> None:
    config = make_config(tmp_path, upstream_credential="federation")
    with pytest.raises(ConfigError, match=r"proxy\.federation_rule_id"):
        build_server(
            config, ServeOptions(listen="127.0.0.1:0", upstream=emulator.base_url), environ={}
        )


def test_federation_settings_fall_back_to_the_sdk_variables(
    federation: FederationSetup, workload: Workload, tmp_path: Path
) -> None:
    from claudesec.proxy.upstream import FederationSettings

    config = make_config(tmp_path, upstream_credential="federation")
    settings = FederationSettings.from_config(
        config.proxy,
        {
            "ANTHROPIC_FEDERATION_RULE_ID": federation.rule_id,
            "ANTHROPIC_ORGANIZATION_ID": federation.organization_id,
            "ANTHROPIC_IDENTITY_TOKEN_FILE": str(workload.path),
        },
    )
    assert (settings.rule_id, settings.identity_token_file) == (
        federation.rule_id,
        str(workload.path),
    )
