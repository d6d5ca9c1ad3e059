"""Bad input and attacks: every forged identity is refused and recorded, nothing reaches the
API, and a planted key appears in no record, log line or exception."""

# ruff: noqa: F811 - the client fixtures are imported and requested by name

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from claudesec.audit.store import AuditStore
from claudesec.emulator import Emulator
from claudesec.guard.pipeline import CallDenied
from tests.fixtures.keys import KeyFactory
from tests.fixtures.oidc import FakeIdp, hmac_token, make_key, unsigned_token
from tests.guard.test_client import MakeClient, ask, make_client, store  # noqa: F401 - fixtures
from tests.guard.test_pipeline import audit_config, records

Forge = Callable[[FakeIdp], str]


def _claims_token(**claims: Any) -> Forge:
    return lambda idp: idp.token(**claims)


ATTACKS: dict[str, tuple[Forge, str]] = {
    "forged-signature": (
        lambda idp: idp.token(make_key("rsa", idp.rsa_key.kid)),
        "identity.bad_signature",
    ),
    "expired": (_claims_token(exp=int(time.time()) - 3600), "identity.expired"),
    "wrong-issuer": (_claims_token(iss="https://evil.example"), "identity.wrong_issuer"),
    "wrong-audience": (_claims_token(aud="another-app"), "identity.wrong_audience"),
    "alg-none": (
        lambda idp: unsigned_token({"alg": "none", "kid": idp.rsa_key.kid}, idp.claims()),
        "identity.disallowed_algorithm",
    ),
    "hs256-with-public-key": (
        lambda idp: hmac_token(
            {"alg": "HS256", "kid": idp.rsa_key.kid}, idp.claims(), idp.rsa_key.public_pem()
        ),
        "identity.disallowed_algorithm",
    ),
    "unknown-kid": (lambda idp: idp.token(kid="kid-nobody-published"), "identity.unknown_signer"),
    "garbage": (lambda idp: "not-a-jwt", "identity.malformed"),
}


@pytest.fixture
def oidc_config(oidc_idp: FakeIdp) -> Any:
    identity = oidc_idp.identity_config(group_roles={"eng-analysts": "analyst"})
    return replace(audit_config(), identity=identity)


def test_a_valid_token_is_accepted_and_its_groups_give_the_role(
    make_client: MakeClient, oidc_idp: FakeIdp, oidc_config: Any, store: AuditStore
) -> None:
    client = make_client(None, identity_token=oidc_idp.token(), claudesec_config=oidc_config)
    ask(client, "hello")
    ask(client, "again")  # the verified identity is cached until the token expires
    first, _ = records(store)
    assert (first.user, first.role, first.identity_source) == (
        "alice@example.com",
        "analyst",
        "oidc",
    )


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_bad_tokens_are_denied_recorded_and_send_nothing(
    make_client: MakeClient,
    emulator: Emulator,
    oidc_idp: FakeIdp,
    oidc_config: Any,
    store: AuditStore,
    attack: str,
) -> None:
    forge, reason = ATTACKS[attack]
    token = forge(oidc_idp)
    client = make_client(None, identity_token=token, claudesec_config=oidc_config)
    with pytest.raises(CallDenied) as info:
        ask(client, "let me in")
    assert info.value.reason == reason
    assert token not in str(info.value)
    assert emulator.state.requests() == []
    [event] = records(store)
    assert (event.type, event.decision, event.reason, event.identity_source) == (
        "denial",
        "deny",
        reason,
        "oidc",
    )
    assert token.encode() not in store.path.read_bytes()


def test_a_token_for_another_user_cannot_be_borrowed(
    make_client: MakeClient, emulator: Emulator, oidc_idp: FakeIdp, oidc_config: Any
) -> None:
    client = make_client("bob", identity_token=oidc_idp.token(), claudesec_config=oidc_config)
    with pytest.raises(CallDenied, match=r"identity\.user_mismatch"):
        ask(client, "hi")
    assert emulator.state.requests() == []


def _sweep(store: AuditStore, secret: str) -> None:
    for suffix in ("", "-wal", "-shm"):
        path = Path(str(store.path) + suffix)
        if path.exists():
            assert secret.encode() not in path.read_bytes(), path.name


@pytest.mark.parametrize("where", ["system", "tool_result", "text_block", "document"])
def test_planted_key_in_any_text_part_never_leaks(
    make_client: MakeClient,
    emulator: Emulator,
    store: AuditStore,
    fake_keys: KeyFactory,
    caplog: pytest.LogCaptureFixture,
    where: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    key = fake_keys.anthropic_admin().value
    content: list[Any] = [{"type": "text", "text": "see attached"}]
    kwargs: dict[str, Any] = {}
    if where == "system":
        kwargs["system"] = [{"type": "text", "text": f"admin key: {key}"}]
    elif where == "tool_result":
        content = [{"type": "tool_result", "tool_use_id": "t1", "content": f"env: {key}"}]
    elif where == "text_block":
        content.append({"type": "text", "text": f"ADMIN={key}"})
    else:
        content.append(
            {
                "type": "document",
                "source": {"type": "text", "media_type": "text/plain", "data": f"notes\n{key}\n"},
            }
        )
    messages: list[Any] = [{"role": "user", "content": content}]
    if where == "tool_result":
        messages = [
            {"role": "user", "content": "run it"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "env", "input": {}}],
            },
            *messages,
        ]
    blocked = make_client("alice")
    with pytest.raises(CallDenied) as info:
        blocked.messages.create(
            model="claude-sonnet-4-6", max_tokens=50, messages=messages, **kwargs
        )
    assert key not in str(info.value) and key not in repr(info.value.__dict__)
    assert emulator.state.requests() == []
    redacting = make_client("bob")
    redacting.messages.create(model="claude-sonnet-4-6", max_tokens=50, messages=messages, **kwargs)
    [sent] = emulator.state.requests()
    assert key not in repr(sent.body)
    _sweep(store, key)
    assert key not in caplog.text
    assert [e.decision for e in records(store)] == ["deny", "redact"]
    assert all(e.dlp_kinds == ("anthropic-admin-key",) for e in records(store))


def test_policy_denials_never_echo_the_prompt(
    make_client: MakeClient, store: AuditStore, fake_keys: KeyFactory
) -> None:
    key = fake_keys.aws_pair()[1].value
    with pytest.raises(CallDenied) as info:
        ask(make_client("dave"), f"aws secret {key}")  # denied by model before DLP
    assert key not in str(info.value)
    _sweep(store, key)
