"""Which credentials the emulator accepts, and what its request log keeps about them."""

from __future__ import annotations

import json

import anthropic
import pytest
from anthropic.types import MessageParam

from claudesec.emulator import Emulator, IssuedKey, generate_secret
from claudesec.emulator.keys import KeyStatus
from tests.fixtures.emulator import MODEL, http_request

USER_TURN: list[MessageParam] = [{"role": "user", "content": "Hello emulator"}]


def _client(emulator: Emulator, secret: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=secret, base_url=emulator.base_url, max_retries=0)


def test_the_log_is_empty_until_a_request_arrives(emulator: Emulator) -> None:
    assert emulator.state.requests() == []


def test_unknown_key_gets_anthropics_401_and_is_logged_without_the_secret(
    emulator: Emulator,
) -> None:
    secret = generate_secret("api")

    with pytest.raises(anthropic.AuthenticationError) as caught:
        _client(emulator, secret).messages.create(model=MODEL, max_tokens=5, messages=USER_TURN)

    error = caught.value
    assert error.status_code == 401
    assert error.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "invalid x-api-key"},
        "request_id": error.request_id,
    }
    assert error.response.headers["request-id"] == error.request_id
    [record] = emulator.state.requests()
    assert (record.status, record.key_id, record.path) == (401, None, "/v1/messages")
    assert record.credential_hint == f"{secret[:16]}...{secret[-4:]}"
    assert "authorization" not in record.headers
    assert "x-api-key" not in record.headers
    assert secret not in json.dumps(record.to_json())
    assert secret not in repr(record)


@pytest.mark.parametrize("status", ["inactive", "archived", "expired"])
def test_registered_but_not_active_key_is_refused_and_attributed(
    emulator: Emulator, status: KeyStatus
) -> None:
    key = emulator.state.add_key("api", status=status)

    with pytest.raises(anthropic.AuthenticationError):
        _client(emulator, key.secret).messages.create(model=MODEL, max_tokens=5, messages=USER_TURN)

    [record] = emulator.state.requests()
    assert record.key_id == key.id
    assert record.status == 401


def test_active_key_is_accepted_and_attributed(
    emulator: Emulator, emulator_api_key: IssuedKey, emulator_client: anthropic.Anthropic
) -> None:
    emulator_client.messages.create(model=MODEL, max_tokens=5, messages=USER_TURN)

    [record] = emulator.state.requests()
    assert record.key_id == emulator_api_key.id
    assert record.body == {"model": MODEL, "max_tokens": 5, "messages": USER_TURN}
    assert record.headers["anthropic-version"]


def test_key_in_x_api_key_header_is_accepted(
    emulator: Emulator, emulator_api_key: IssuedKey
) -> None:
    response = http_request(
        emulator,
        "POST",
        "/v1/messages/count_tokens",
        body={"model": MODEL, "messages": USER_TURN},
        api_key=emulator_api_key.secret,
    )

    assert response.status == 200
    assert response.json() == {"input_tokens": 4}


def test_missing_credential_is_refused(emulator: Emulator) -> None:
    response = http_request(emulator, "GET", "/v1/models")

    assert response.status == 401
    assert response.json()["error"] == {
        "type": "authentication_error",
        "message": "x-api-key header is required",
    }
    assert response.headers["request-id"] == response.json()["request_id"]


def test_open_mode_accepts_unknown_keys_but_still_refuses_deactivated_ones(
    emulator: Emulator,
) -> None:
    emulator.state.configure(open_mode=True)
    deactivated = emulator.state.add_key("api", status="inactive")

    message = _client(emulator, generate_secret("api")).messages.create(
        model=MODEL, max_tokens=5, messages=USER_TURN
    )
    assert message.usage.input_tokens > 0
    with pytest.raises(anthropic.AuthenticationError):
        _client(emulator, deactivated.secret).models.list()


def test_open_mode_is_off_by_default(emulator: Emulator) -> None:
    assert emulator.state.settings.open_mode is False
