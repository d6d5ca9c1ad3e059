"""The Admin API (client.organization...) against the emulator, through the real SDK."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import anthropic
import pytest
from anthropic.types import MessageParam

from claudesec.emulator import Emulator, IssuedKey, KeyKind
from tests.fixtures.emulator import MODEL

USER_TURN: list[MessageParam] = [{"role": "user", "content": "Hello emulator"}]


def _hint(secret: str, kind: KeyKind = "api") -> str:
    prefix = secret[: secret.index("-", len("sk-ant-")) + 1]
    body = secret[len(prefix) :]
    return f"{prefix}{body[:3]}...{body[-4:]}"


def _client(emulator: Emulator, key: IssuedKey) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=key.secret, base_url=emulator.base_url, max_retries=0)


def test_list_returns_api_keys_in_the_sdk_shape(
    emulator: Emulator, emulator_admin_client: anthropic.Anthropic
) -> None:
    key = emulator.state.add_key("api", name="billing-service")

    page = emulator_admin_client.organization.api_keys.list()

    [listed] = page.data  # the admin key itself is not an API key and is not listed
    assert listed.id == key.id
    assert listed.id.startswith("apikey_01")
    assert listed.type == "api_key"
    assert listed.name == "billing-service"
    assert listed.status == "active"
    assert listed.partial_key_hint == _hint(key.secret)
    assert key.secret not in page.to_json()
    assert listed.scope.type == "workspace"
    assert listed.scope.workspace_id == emulator.state.default_workspace_id
    assert listed.workspace_id == emulator.state.default_workspace_id  # type: ignore[attr-defined]
    assert listed.created_by is not None and listed.created_by.type == "user"
    assert datetime.now(UTC) - listed.created_at < timedelta(minutes=1)
    assert page.has_more is False
    assert page.first_id == page.last_id == key.id


def test_list_paginates_newest_first_with_after_and_before_cursors(
    emulator: Emulator, emulator_admin_client: anthropic.Anthropic
) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [
        emulator.state.add_key("api", name=f"k{i}", created_at=base + timedelta(days=i)).id
        for i in range(5)
    ]
    newest_first = ids[::-1]
    api_keys = emulator_admin_client.organization.api_keys

    first = api_keys.list(limit=2)
    assert [k.id for k in first.data] == newest_first[:2]
    assert first.has_more is True
    assert first.last_id == newest_first[1]

    assert first.last_id is not None
    second = api_keys.list(limit=2, after_id=first.last_id)
    assert [k.id for k in second.data] == newest_first[2:4]

    assert second.first_id is not None
    back = api_keys.list(limit=2, before_id=second.first_id)
    assert [k.id for k in back.data] == newest_first[:2]
    assert back.has_more is False

    assert [k.id for k in api_keys.list(limit=2)] == newest_first  # SDK auto-pagination


def test_list_filters_by_status_and_workspace(
    emulator: Emulator, emulator_admin_client: anthropic.Anthropic
) -> None:
    active = emulator.state.add_key("api")
    inactive = emulator.state.add_key("api", status="inactive")
    other = emulator.state.add_key("api", workspace_id="wrkspc_01Other")
    api_keys = emulator_admin_client.organization.api_keys

    assert [k.id for k in api_keys.list(status="inactive")] == [inactive.id]
    assert [k.id for k in api_keys.list(workspace_id="wrkspc_01Other")] == [other.id]
    assert {k.id for k in api_keys.list(status="active")} == {active.id, other.id}


def test_list_rejects_bad_limits_and_unknown_cursors(
    emulator_admin_client: anthropic.Anthropic,
) -> None:
    with pytest.raises(anthropic.BadRequestError):
        emulator_admin_client.organization.api_keys.list(limit=0)
    with pytest.raises(anthropic.BadRequestError):
        emulator_admin_client.organization.api_keys.list(after_id="apikey_01Unknown")


def test_retrieve_returns_one_key_and_404s_on_unknown_or_admin_ids(
    emulator: Emulator,
    emulator_admin_key: IssuedKey,
    emulator_admin_client: anthropic.Anthropic,
) -> None:
    key = emulator.state.add_key("api", name="retrieved")

    assert emulator_admin_client.organization.api_keys.retrieve(key.id).name == "retrieved"
    with pytest.raises(anthropic.NotFoundError):
        emulator_admin_client.organization.api_keys.retrieve("apikey_01DoesNotExist")
    with pytest.raises(anthropic.NotFoundError):
        emulator_admin_client.organization.api_keys.retrieve(emulator_admin_key.id)


def test_update_renames_a_key(
    emulator: Emulator, emulator_admin_client: anthropic.Anthropic
) -> None:
    key = emulator.state.add_key("api", name="old")

    updated = emulator_admin_client.organization.api_keys.update(key.id, name="new")

    assert updated.name == "new"
    assert updated.status == "active"
    assert emulator.state.get_key(key.id).name == "new"


def test_deactivating_a_key_makes_it_fail_and_reactivating_restores_it(
    emulator: Emulator, emulator_admin_client: anthropic.Anthropic
) -> None:
    key = emulator.state.add_key("api")
    client = _client(emulator, key)
    api_keys = emulator_admin_client.organization.api_keys

    assert api_keys.update(key.id, status="inactive").status == "inactive"
    with pytest.raises(anthropic.AuthenticationError):
        client.messages.create(model=MODEL, max_tokens=5, messages=USER_TURN)

    assert api_keys.update(key.id, status="active").status == "active"
    assert client.messages.create(model=MODEL, max_tokens=5, messages=USER_TURN).usage


def test_archived_is_terminal(
    emulator: Emulator, emulator_admin_client: anthropic.Anthropic
) -> None:
    key = emulator.state.add_key("api")
    api_keys = emulator_admin_client.organization.api_keys
    api_keys.update(key.id, status="archived")

    with pytest.raises(anthropic.BadRequestError) as caught:
        api_keys.update(key.id, status="active")

    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert api_keys.retrieve(key.id).status == "archived"
    with pytest.raises(anthropic.AuthenticationError):
        _client(emulator, key).messages.create(model=MODEL, max_tokens=5, messages=USER_TURN)


def test_expired_key_is_listed_as_expired_and_refused(
    emulator: Emulator, emulator_admin_client: anthropic.Anthropic
) -> None:
    key = emulator.state.add_key("api", expires_at=datetime.now(UTC) - timedelta(seconds=1))

    assert emulator_admin_client.organization.api_keys.retrieve(key.id).status == "expired"
    with pytest.raises(anthropic.AuthenticationError):
        _client(emulator, key).models.list()


@pytest.mark.parametrize("body", [{"status": "deleted"}, {"name": 5}, {"owner": "x"}])
def test_update_rejects_invalid_bodies(
    emulator: Emulator, emulator_admin_client: anthropic.Anthropic, body: dict[str, Any]
) -> None:
    key = emulator.state.add_key("api")

    with pytest.raises(anthropic.BadRequestError):
        emulator_admin_client.post(
            f"/v1/organizations/api_keys/{key.id}", body=body, cast_to=object
        )


def test_standard_api_key_on_admin_endpoint_is_permission_denied(
    emulator_client: anthropic.Anthropic,
) -> None:
    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        emulator_client.organization.api_keys.list()

    assert caught.value.body["error"]["type"] == "permission_error"  # type: ignore[index]


def test_admin_key_is_not_an_inference_key(emulator_admin_client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.AuthenticationError):
        emulator_admin_client.messages.create(model=MODEL, max_tokens=5, messages=USER_TURN)


def test_inactive_admin_key_is_refused(
    emulator: Emulator,
    emulator_admin_key: IssuedKey,
    emulator_admin_client: anthropic.Anthropic,
) -> None:
    emulator.state.set_key_status(emulator_admin_key.id, "inactive")

    with pytest.raises(anthropic.AuthenticationError):
        emulator_admin_client.organization.api_keys.list()


def test_organization_me(emulator: Emulator, emulator_admin_client: anthropic.Anthropic) -> None:
    organization = emulator_admin_client.organization.retrieve()

    assert organization.id == emulator.state.organization_id
    assert organization.type == "organization"


def test_usage_report_sums_served_tokens_per_key(
    emulator: Emulator, emulator_admin_client: anthropic.Anthropic
) -> None:
    first, second = emulator.state.add_key("api"), emulator.state.add_key("api")
    served = {first.id: [0, 0], second.id: [0, 0]}
    for key, calls in ((first, 2), (second, 1)):
        client = _client(emulator, key)
        for _ in range(calls):
            usage = client.messages.create(model=MODEL, max_tokens=50, messages=USER_TURN).usage
            served[key.id][0] += usage.input_tokens
            served[key.id][1] += usage.output_tokens
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)

    report: Any = emulator_admin_client.get(
        "/v1/organizations/usage_report/messages",
        cast_to=object,
        options={"params": {"starting_at": today.isoformat(), "group_by": ["api_key_id"]}},
    )

    [bucket] = report["data"]
    assert bucket["starting_at"] == today.isoformat().replace("+00:00", "Z")
    rows = {row["api_key_id"]: row for row in bucket["results"]}
    assert set(rows) == set(served)
    for key_id, (input_tokens, output_tokens) in served.items():
        assert rows[key_id]["uncached_input_tokens"] == input_tokens
        assert rows[key_id]["output_tokens"] == output_tokens
        assert rows[key_id]["model"] is None  # not grouped by model
    assert report["has_more"] is False
    assert report["next_page"] is None


def test_usage_report_pages_through_buckets_and_parses_in_the_sdk(
    emulator: Emulator,
    emulator_admin_client: anthropic.Anthropic,
    emulator_client: anthropic.Anthropic,
) -> None:
    emulator_client.messages.create(model=MODEL, max_tokens=50, messages=USER_TURN)
    start = datetime.now(UTC) - timedelta(days=9)

    report = emulator_admin_client.beta.organization.analytics.usage_report.list(
        starting_at=start, bucket_width="1d", limit=4
    )

    assert len(report.data) == 4
    assert report.has_more is True
    buckets = list(report)  # follows next_page to the current bucket
    assert len(buckets) == 10
    assert sum(sum(r.output_tokens for r in b.results) for b in buckets) > 0
    assert all(b.results == [] for b in buckets[:-1])


def test_usage_report_requires_starting_at(emulator_admin_client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError):
        emulator_admin_client.get("/v1/organizations/usage_report/messages", cast_to=object)
