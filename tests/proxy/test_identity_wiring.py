"""The audited client and the proxy build their OIDC verifier through the same code, so one
``[identity]`` table means the same thing to both (issue: the proxy built a verifier from
``jwks_url`` alone while the client silently had none)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from claudesec.audit.store import AuditStore
from claudesec.config import Config
from claudesec.emulator import Emulator, IssuedKey
from claudesec.errors import ConfigError
from claudesec.proxy.service import ServeOptions, build_server
from tests.fixtures.emulator import MODEL
from tests.fixtures.oidc import FakeIdp
from tests.guard.test_pipeline import open_store, records
from tests.proxy.conftest import KEY_VAR, make_config
from tests.proxy.test_server import send

MESSAGE = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


def oidc_config(tmp_path: Path, idp: FakeIdp, **identity: Any) -> Config:
    base = make_config(tmp_path)
    dev = base.policy.roles["dev"]
    roles = {**base.policy.roles, "analyst": dev, "admin": dev}
    return dataclasses.replace(
        base,
        identity=idp.identity_config(**identity),
        policy=dataclasses.replace(base.policy, roles=roles),
    )


def test_jwks_url_without_issuer_is_refused_alike_by_client_and_proxy(
    tmp_path: Path,
    oidc_idp: FakeIdp,
    emulator: Emulator,
    emulator_api_key: IssuedKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from claudesec import AuditedAnthropic

    config = oidc_config(tmp_path, oidc_idp, issuer="", jwks_url=oidc_idp.jwks_url)
    monkeypatch.setenv(KEY_VAR, emulator_api_key.secret)
    with pytest.raises(ConfigError) as from_client:
        AuditedAnthropic(
            identity_token=oidc_idp.token(),
            api_key=emulator_api_key.secret,
            base_url=emulator.base_url,
            claudesec_config=config,
            store=open_store(tmp_path / "client.db"),
        )
    with pytest.raises(ConfigError) as from_proxy:
        build_server(config, ServeOptions(listen="127.0.0.1:0", upstream=emulator.base_url))
    assert "identity.issuer" in from_client.value.message
    assert from_client.value.message == from_proxy.value.message
    assert emulator.state.requests() == []


def test_jwks_url_with_issuer_gives_both_the_same_identity(
    tmp_path: Path,
    oidc_idp: FakeIdp,
    emulator: Emulator,
    emulator_api_key: IssuedKey,
    start_proxy: Any,
) -> None:
    from claudesec import AuditedAnthropic

    config = oidc_config(tmp_path, oidc_idp, jwks_url=oidc_idp.jwks_url)
    token = oidc_idp.token()
    store = open_store(tmp_path / "client.db")
    client = AuditedAnthropic(
        identity_token=token,
        api_key=emulator_api_key.secret,
        base_url=emulator.base_url,
        claudesec_config=config,
        store=store,
        max_retries=0,
    )
    client.messages.create(**MESSAGE)
    proxy = start_proxy(config)
    status, _, body = send(
        proxy, "POST", "/v1/messages", MESSAGE, {"authorization": f"Bearer {token}"}
    )
    assert status == 200, body
    proxy.handle.stop()
    via_client = records(store)[-1]
    with AuditStore.open(Path(config.audit.store_path), readonly=True) as proxied:
        via_proxy = records(proxied)[-1]
    assert via_client.user == via_proxy.user == "alice@example.com"
    assert via_client.identity_source == via_proxy.identity_source
