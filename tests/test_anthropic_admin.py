"""The Admin API client and the key probe against the emulator over loopback HTTP."""

from __future__ import annotations

import pytest

from claudesec.anthropic_admin import AdminClient, AnthropicError, probe_key, resolve_admin_key
from claudesec.emulator import Emulator, IssuedKey
from claudesec.errors import ConfigError, ExitCode
from claudesec.redact import redact


@pytest.fixture
def admin(emulator: Emulator, emulator_admin_key: IssuedKey) -> AdminClient:
    return AdminClient(emulator.base_url, emulator_admin_key.secret, max_retries=0)


def test_list_pages_through_every_key(emulator: Emulator, admin: AdminClient) -> None:
    keys = [emulator.state.add_key("api") for _ in range(3)]
    listed = admin.list_keys()
    assert {k.id for k in listed} == {k.id for k in keys}
    assert {k.partial_key_hint for k in listed} == {redact(k.secret) for k in keys}


def test_set_status_and_retrieve(emulator: Emulator, admin: AdminClient) -> None:
    key = emulator.state.add_key("api")
    assert admin.set_status(key.id, "inactive").status == "inactive"
    assert admin.retrieve_key(key.id).status == "inactive"
    assert probe_key(emulator.base_url, key.secret).outcome == "rejected"
    admin.set_status(key.id, "active")
    assert probe_key(emulator.base_url, key.secret).outcome == "valid"


def test_retries_honour_retry_after(emulator: Emulator, emulator_admin_key: IssuedKey) -> None:
    waits: list[float] = []
    client = AdminClient(
        emulator.base_url, emulator_admin_key.secret, max_retries=2, sleep=waits.append
    )
    emulator.state.inject_fault("rate_limit", count=2, retry_after=0.5)
    assert client.list_keys() == []
    assert waits == [0.5, 0.5]


def test_a_retry_after_longer_than_allowed_fails_at_once(
    emulator: Emulator, emulator_admin_key: IssuedKey
) -> None:
    client = AdminClient(
        emulator.base_url, emulator_admin_key.secret, max_retries=3, max_retry_wait_s=5
    )
    emulator.state.inject_fault("rate_limit", retry_after=60)
    with pytest.raises(AnthropicError) as caught:
        client.list_keys()
    assert caught.value.exit_code == ExitCode.EXTERNAL
    assert caught.value.status == 429 and "retry after 60s" in str(caught.value)


def test_dropped_connection_and_closed_port_are_clear_errors(
    emulator: Emulator, admin: AdminClient, emulator_admin_key: IssuedKey
) -> None:
    emulator.state.inject_fault("drop_connection")
    with pytest.raises(AnthropicError, match="unreachable"):
        admin.list_keys()
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    closed = AdminClient(f"http://127.0.0.1:{port}", emulator_admin_key.secret, max_retries=0)
    with pytest.raises(AnthropicError) as caught:
        closed.list_keys()
    assert emulator_admin_key.secret not in str(caught.value)
    assert probe_key(f"http://127.0.0.1:{port}", "x" * 40).outcome == "error"


def test_an_api_key_on_the_admin_api_is_refused_with_a_hint(
    emulator: Emulator, emulator_api_key: IssuedKey
) -> None:
    client = AdminClient(emulator.base_url, emulator_api_key.secret, max_retries=0)
    with pytest.raises(AnthropicError) as caught:
        client.list_keys()
    assert caught.value.status == 403 and "admin key" in str(caught.value)
    assert emulator_api_key.secret not in str(caught.value) + repr(client)


def test_resolve_admin_key_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_ADMIN", " value-from-env ")
    assert resolve_admin_key("env:MY_ADMIN") == "value-from-env"
    with pytest.raises(ConfigError):
        resolve_admin_key("env:MISSING_ONE")
    with pytest.raises(ConfigError):
        resolve_admin_key("plain")
