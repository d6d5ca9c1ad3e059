"""/v1/models listing, pagination and retrieval through the real SDK."""

from __future__ import annotations

import anthropic
import pytest

from claudesec.emulator import Emulator, ModelSpec
from tests.fixtures.emulator import MODEL


def test_models_list_pages_walk_the_whole_catalogue_in_order(
    emulator: Emulator, emulator_client: anthropic.Anthropic
) -> None:
    first = emulator_client.models.list(limit=5)

    assert len(first.data) == 5
    assert first.has_more is True
    assert first.first_id == first.data[0].id
    assert first.last_id == first.data[-1].id
    assert [m.id for m in first] == [m.id for m in emulator.state.models]


def test_models_list_before_id_returns_the_previous_page(
    emulator: Emulator, emulator_client: anthropic.Anthropic
) -> None:
    ids = [m.id for m in emulator.state.models]

    page = emulator_client.models.list(before_id=ids[4], limit=2)

    assert [m.id for m in page.data] == ids[2:4]
    assert page.has_more is True


def test_model_objects_parse_as_model_info(emulator_client: anthropic.Anthropic) -> None:
    model = emulator_client.models.retrieve(MODEL)

    assert model.id == MODEL
    assert model.type == "model"
    assert model.display_name == "Claude Sonnet 4.6"
    assert model.lifecycle == "active"
    assert model.line == "sonnet"
    assert model.max_tokens is not None and model.max_tokens > 0


def test_alias_resolves_to_the_dated_snapshot(emulator_client: anthropic.Anthropic) -> None:
    model = emulator_client.models.retrieve("claude-sonnet-4-5")

    assert model.id == "claude-sonnet-4-5-20250929"
    assert model.created_at.year == 2025
    assert model.lifecycle == "deprecated"
    assert model.retires_at is not None


def test_unknown_model_is_not_found(emulator_client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError):
        emulator_client.models.retrieve("claude-imaginary-9")


def test_added_model_is_listed_first_and_accepted(
    emulator: Emulator, emulator_client: anthropic.Anthropic
) -> None:
    emulator.state.add_model(ModelSpec(id="claude-test-1", display_name="Claude Test 1"))

    assert emulator_client.models.list(limit=1).data[0].id == "claude-test-1"
    message = emulator_client.messages.create(
        model="claude-test-1", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.model == "claude-test-1"
