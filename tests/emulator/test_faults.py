"""Fault knobs, set from Python and over the control endpoint, as the SDK experiences them."""

from __future__ import annotations

import time

import anthropic
import pytest
from anthropic.types import MessageParam

from claudesec.emulator import (
    Emulator,
    EmulatorControl,
    EmulatorControlError,
    FaultKind,
    IssuedKey,
)
from tests.fixtures.emulator import MODEL

USER_TURN: list[MessageParam] = [{"role": "user", "content": "Hello emulator"}]


def _create(client: anthropic.Anthropic) -> anthropic.types.Message:
    return client.messages.create(model=MODEL, max_tokens=100, messages=USER_TURN)


def test_rate_limit_answers_429_with_retry_after(
    emulator: Emulator, emulator_client: anthropic.Anthropic
) -> None:
    emulator.state.inject_fault(FaultKind.RATE_LIMIT)

    with pytest.raises(anthropic.RateLimitError) as caught:
        _create(emulator_client)

    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "1"
    assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]


def test_sdk_retries_honour_retry_after(emulator: Emulator, emulator_api_key: IssuedKey) -> None:
    # 0.6 s is above the SDK's own first backoff (at most 0.5 s), so waiting that long
    # proves the header was obeyed.
    emulator.state.inject_fault("rate_limit", retry_after=0.6)
    client = anthropic.Anthropic(
        api_key=emulator_api_key.secret, base_url=emulator.base_url, max_retries=1
    )

    started = time.perf_counter()
    message = _create(client)
    elapsed = time.perf_counter() - started

    assert message.stop_reason == "end_turn"
    assert elapsed >= 0.6
    statuses = [(r.status, r.fault) for r in emulator.state.requests()]
    assert statuses == [(429, FaultKind.RATE_LIMIT), (200, None)]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("server_error", (anthropic.InternalServerError, 500, "api_error")),
        ("overloaded", (anthropic.OverloadedError, 529, "overloaded_error")),
    ],
)
def test_server_side_errors_reach_the_sdk_as_their_classes(
    emulator: Emulator,
    emulator_client: anthropic.Anthropic,
    kind: str,
    expected: tuple[type[anthropic.APIStatusError], int, str],
) -> None:
    error_class, status, error_type = expected
    emulator.state.inject_fault(kind)

    with pytest.raises(error_class) as caught:
        _create(emulator_client)

    assert caught.value.status_code == status
    assert caught.value.body["error"]["type"] == error_type  # type: ignore[index]
    assert caught.value.request_id is not None


def test_dropped_connection_is_an_api_connection_error(
    emulator: Emulator, emulator_client: anthropic.Anthropic
) -> None:
    emulator.state.inject_fault("drop_connection")

    with pytest.raises(anthropic.APIConnectionError):
        _create(emulator_client)

    [record] = emulator.state.requests()
    assert (record.status, record.fault) == (0, FaultKind.DROP_CONNECTION)
    assert _create(emulator_client).stop_reason == "end_turn"


def test_faults_hit_exactly_the_next_n_requests(
    emulator: Emulator, emulator_client: anthropic.Anthropic
) -> None:
    emulator.state.inject_fault("server_error", count=2)

    for _ in range(2):
        with pytest.raises(anthropic.InternalServerError):
            _create(emulator_client)
    assert _create(emulator_client).stop_reason == "end_turn"
    assert emulator.state.pending_faults() == []


def test_fault_with_a_path_prefix_spares_other_endpoints(
    emulator: Emulator, emulator_client: anthropic.Anthropic
) -> None:
    emulator.state.inject_fault("overloaded", path_prefix="/v1/organizations/")

    assert _create(emulator_client).stop_reason == "end_turn"
    assert len(emulator.state.pending_faults()) == 1


def test_latency_delays_every_answer(
    emulator: Emulator, emulator_client: anthropic.Anthropic
) -> None:
    emulator.state.configure(latency_ms=80)

    started = time.perf_counter()
    _create(emulator_client)

    assert time.perf_counter() - started >= 0.08


def test_control_endpoint_sets_faults_from_another_process(
    emulator: Emulator, emulator_control: EmulatorControl
) -> None:
    key = emulator_control.add_key("api", name="from-control")
    client = anthropic.Anthropic(api_key=key.secret, base_url=emulator.base_url, max_retries=0)

    assert emulator_control.inject_fault("overloaded", count=2) == 2
    with pytest.raises(anthropic.OverloadedError):
        _create(client)
    assert [f["kind"] for f in emulator_control.state()["faults"]] == ["overloaded"]
    emulator_control.clear_faults()
    assert _create(client).stop_reason == "end_turn"

    log = emulator_control.requests()
    assert [(r["status"], r["key_id"]) for r in log] == [(529, key.id), (200, key.id)]
    assert key.secret not in str(log)


def test_control_endpoint_settings_and_key_status(
    emulator: Emulator, emulator_control: EmulatorControl
) -> None:
    key = emulator_control.add_key("api")
    client = anthropic.Anthropic(api_key=key.secret, base_url=emulator.base_url, max_retries=0)

    settings = emulator_control.configure(latency_ms=5, retry_after_s=2)
    assert settings["latency_ms"] == 5
    assert emulator.state.settings.retry_after_s == 2
    emulator_control.set_key_status(key.id, "inactive")
    with pytest.raises(anthropic.AuthenticationError):
        _create(client)
    assert [k["status"] for k in emulator_control.list_keys()] == ["inactive"]


def test_control_endpoint_rejects_bad_input(emulator_control: EmulatorControl) -> None:
    with pytest.raises(EmulatorControlError) as caught:
        emulator_control.inject_fault("rate_limit", count=0)

    assert caught.value.status == 400


def test_control_token_is_enforced_when_set() -> None:
    with Emulator(control_token="drill-token") as emulator:
        with pytest.raises(EmulatorControlError) as caught:
            EmulatorControl(emulator.base_url).inject_fault("overloaded")
        assert caught.value.status == 401

        EmulatorControl(emulator.base_url, token="drill-token").inject_fault("overloaded")
        assert len(emulator.state.pending_faults()) == 1
