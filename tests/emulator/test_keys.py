"""Key material and the key registry's rules, through the Python API."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from claudesec.emulator import EmulatorState, TransitionError, generate_secret
from claudesec.emulator.keys import KEY_PREFIXES

# Built from parts so the file holds no key-shaped literal.
_BODY = r"[A-Za-z0-9_-]{93}AA"


@pytest.mark.parametrize("kind", ["api", "admin"])
def test_generated_secrets_have_the_real_format(kind: str) -> None:
    secret = generate_secret(kind)  # type: ignore[arg-type]

    assert re.fullmatch(re.escape(KEY_PREFIXES[kind]) + _BODY, secret)  # type: ignore[index]


def test_api_keys_are_108_characters_and_unique() -> None:
    secrets = {generate_secret("api") for _ in range(200)}

    assert len(secrets) == 200
    assert {len(s) for s in secrets} == {108}


def test_issued_key_repr_hides_the_secret() -> None:
    issued = EmulatorState().add_key("api")

    assert issued.secret not in repr(issued)
    assert issued.secret[-4:] in repr(issued)
    key_id, secret = issued
    assert (key_id, secret) == (issued.id, issued.secret)


def test_the_registry_keeps_no_secret() -> None:
    state = EmulatorState()
    issued = state.add_key("api")
    record = state.get_key(issued.id)

    assert issued.secret not in repr(record)
    assert issued.secret not in repr(vars(record))
    assert record.secret_sha256 != issued.secret
    assert state.authenticate(issued.secret) is not None


def test_partial_key_hint_is_prefix_three_dots_four() -> None:
    state = EmulatorState()
    issued = state.add_key("admin")
    prefix = KEY_PREFIXES["admin"]

    assert state.get_key(issued.id).partial_key_hint == (
        f"{prefix}{issued.secret[len(prefix) : len(prefix) + 3]}...{issued.secret[-4:]}"
    )


def test_a_given_secret_can_be_registered_once() -> None:
    state = EmulatorState()
    secret = generate_secret("api")
    state.add_key("api", secret=secret)

    with pytest.raises(ValueError, match="already registered"):
        state.add_key("api", secret=secret)


def test_archived_and_expired_keys_cannot_change_status() -> None:
    state = EmulatorState()
    archived = state.add_key("api", status="archived")
    expired = state.add_key("api", expires_at=datetime.now(UTC) - timedelta(days=1))

    for key_id in (archived.id, expired.id):
        with pytest.raises(TransitionError):
            state.update_key(key_id, status="active")
    assert state.update_key(archived.id, name="renamed").name == "renamed"


def test_reset_forgets_keys_and_knobs_but_keeps_the_organization() -> None:
    state = EmulatorState()
    organization = state.organization_id
    issued = state.add_key("api")
    state.configure(latency_ms=10, open_mode=True)
    state.inject_fault("overloaded")

    state.reset()

    assert state.list_keys() == []
    assert state.authenticate(issued.secret) is None
    assert state.settings.latency_ms == 0
    assert state.pending_faults() == []
    assert state.organization_id == organization
