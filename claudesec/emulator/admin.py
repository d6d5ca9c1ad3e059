"""The Admin API surface: organization, API keys (list, retrieve, update), usage reports.

Shapes follow the ``anthropic`` SDK's own models (``types/organization/api_key.py``,
``types/beta/organization/beta_analytics_usage_*``): the SDK is the executable spec we can
check against offline. Like the real Admin API this cannot create or delete keys; admin keys
are not listed (they are managed in the Console).
"""

from __future__ import annotations

import base64
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from claudesec.emulator.keys import KEY_STATUSES, KeyRecord
from claudesec.emulator.state import EmulatorState, TransitionError, UsageRecord
from claudesec.emulator.wire import (
    ApiError,
    Query,
    invalid_request,
    not_found,
    paginate,
    parse_rfc3339,
    rfc3339,
)

# --------------------------------------------------------------------------------- api keys


def api_key_json(key: KeyRecord, now: datetime | None = None) -> dict[str, Any]:
    return {
        "id": key.id,
        "type": "api_key",
        "name": key.name,
        # `workspace_id` is the field older clients read; `scope` is what SDK 2.x models.
        "workspace_id": key.workspace_id if key.scope == "workspace" else None,
        "scope": key.scope_json(),
        "created_at": rfc3339(key.created_at),
        "created_by": {"id": key.created_by.id, "type": key.created_by.type},
        "expires_at": rfc3339(key.expires_at) if key.expires_at else None,
        "partial_key_hint": key.partial_key_hint,
        "principal": key.principal.to_json() if key.principal else None,
        "status": key.effective_status(now),
    }


def list_api_keys(state: EmulatorState, query: Query) -> dict[str, Any]:
    status = query.one("status") or None
    if status is not None and status not in KEY_STATUSES:
        raise invalid_request(
            "status: Input should be 'active', 'inactive', 'archived' or 'expired'"
        )
    workspace_id = query.one("workspace_id") or None
    created_by = query.one("created_by_user_id") or None
    now = state.now()

    def keep(key: KeyRecord) -> bool:
        return (
            (status is None or key.effective_status(now) == status)
            and (workspace_id is None or key.workspace_id == workspace_id)
            and (created_by is None or key.created_by.id == created_by)
        )

    page = paginate(state.list_keys("api"), id_of=lambda k: k.id, keep=keep, query=query)
    return page.to_json(lambda k: api_key_json(k, now))


def _api_key(state: EmulatorState, key_id: str) -> KeyRecord:
    try:
        key = state.get_key(key_id)
    except KeyError:
        raise not_found(f"API key not found: {key_id}") from None
    if key.kind != "api":
        raise not_found(f"API key not found: {key_id}")
    return key


def retrieve_api_key(state: EmulatorState, key_id: str) -> dict[str, Any]:
    return api_key_json(_api_key(state, key_id), state.now())


def update_api_key(state: EmulatorState, key_id: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid_request("Request body must be a JSON object")
    unknown = sorted(set(body) - {"name", "status"})
    if unknown:
        raise invalid_request(f"{unknown[0]}: Extra inputs are not permitted")
    name, status = body.get("name"), body.get("status")
    if name is not None and not isinstance(name, str):
        raise invalid_request("name: Input should be a valid string")
    if status is not None and status not in ("active", "inactive", "archived"):
        raise invalid_request("status: Input should be 'active', 'inactive' or 'archived'")
    _api_key(state, key_id)
    try:
        key = state.update_key(key_id, name=name, status=status)
    except TransitionError as exc:
        raise invalid_request(str(exc)) from None
    return api_key_json(key, state.now())


def organization_json(state: EmulatorState) -> dict[str, Any]:
    return {"id": state.organization_id, "type": "organization", "name": state.organization_name}


# ----------------------------------------------------------------------------- usage report

_WIDTHS: dict[str, tuple[timedelta, int, int]] = {
    # width: (bucket length, default limit, maximum limit)
    "1d": (timedelta(days=1), 7, 31),
    "1h": (timedelta(hours=1), 24, 168),
    "1m": (timedelta(minutes=1), 60, 1440),
}
_GROUPABLE = (
    "api_key_id",
    "workspace_id",
    "model",
    "service_tier",
    "context_window",
    "inference_geo",
    "speed",
    "product",
)
_PAGE_PREFIX = "page_"


@dataclass
class _Totals:
    uncached_input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    requests: int = 0

    def add(self, record: UsageRecord) -> None:
        self.uncached_input_tokens += record.input_tokens
        self.output_tokens += record.output_tokens
        self.cache_read_input_tokens += record.cache_read_input_tokens
        self.cache_creation_input_tokens += record.cache_creation_input_tokens
        self.requests += 1


def usage_report(
    state: EmulatorState, query: Query, *, now: datetime | None = None
) -> dict[str, Any]:
    """Token usage per time bucket, built from the messages this emulator served."""
    now = now or state.now()
    raw_start = query.one("starting_at")
    if not raw_start:
        raise invalid_request("starting_at: Field required")
    width_name = query.one("bucket_width") or "1d"
    if width_name not in _WIDTHS:
        raise invalid_request("bucket_width: Input should be '1d', '1h' or '1m'")
    width, default_limit, max_limit = _WIDTHS[width_name]
    limit = query.integer("limit", default=default_limit, low=1, high=max_limit)
    group_by = query.many("group_by")
    for name in group_by:
        if name not in _GROUPABLE:
            raise invalid_request(f"group_by: unsupported value {name!r}")

    start = _floor(parse_rfc3339(raw_start, field_name="starting_at"), width)
    raw_end = query.one("ending_at")
    end = parse_rfc3339(raw_end, field_name="ending_at") if raw_end else now
    page_token = query.one("page")
    if page_token:
        start = _decode_page(page_token)

    records = _filtered(state.usage(), query)
    buckets: list[dict[str, Any]] = []
    bucket_start = start
    while bucket_start < end and len(buckets) < limit:
        bucket_end = bucket_start + width
        inside = [r for r in records if bucket_start <= r.at < bucket_end]
        buckets.append(
            {
                "starting_at": rfc3339(bucket_start),
                "ending_at": rfc3339(bucket_end),
                "results": _rows(inside, group_by),
            }
        )
        bucket_start = bucket_end
    has_more = bucket_start < end
    return {
        "data": buckets,
        "has_more": has_more,
        "next_page": _encode_page(bucket_start) if has_more else None,
    }


def _filtered(records: Iterable[UsageRecord], query: Query) -> list[UsageRecord]:
    key_ids = set(query.many("api_key_ids"))
    workspace_ids = set(query.many("workspace_ids"))
    models = set(query.many("models"))
    return [
        r
        for r in records
        if (not key_ids or r.key_id in key_ids)
        and (not workspace_ids or r.workspace_id in workspace_ids)
        and (not models or r.model in models)
    ]


def _group_value(record: UsageRecord, name: str) -> str | None:
    values: dict[str, str | None] = {
        "api_key_id": record.key_id,
        "workspace_id": record.workspace_id,
        "model": record.model,
        "service_tier": record.service_tier,
        "context_window": "0-200k",
        "inference_geo": "global",
        "speed": "standard",
        "product": None,
    }
    return values[name]


def _rows(records: list[UsageRecord], group_by: list[str]) -> list[dict[str, Any]]:
    if not records:
        return []
    groups: dict[tuple[str | None, ...], _Totals] = defaultdict(_Totals)
    for record in records:
        groups[tuple(_group_value(record, name) for name in group_by)].add(record)
    rows = []
    for values in sorted(groups, key=lambda v: tuple(x or "" for x in v)):
        totals = groups[values]
        row: dict[str, Any] = {
            "uncached_input_tokens": totals.uncached_input_tokens,
            "cache_creation": {
                "ephemeral_1h_input_tokens": 0,
                "ephemeral_5m_input_tokens": totals.cache_creation_input_tokens,
            },
            "cache_read_input_tokens": totals.cache_read_input_tokens,
            "output_tokens": totals.output_tokens,
            "server_tool_use": {"web_search_requests": 0},
            "requests": totals.requests,
        }
        row.update(dict.fromkeys(_GROUPABLE))
        row.update(zip(group_by, values, strict=True))
        rows.append(row)
    return rows


def _floor(moment: datetime, width: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + ((moment - epoch) // width) * width


def _encode_page(moment: datetime) -> str:
    return _PAGE_PREFIX + base64.urlsafe_b64encode(rfc3339(moment).encode()).decode()


def _decode_page(token: str) -> datetime:
    try:
        if not token.startswith(_PAGE_PREFIX):
            raise ValueError(token)
        text = base64.urlsafe_b64decode(token[len(_PAGE_PREFIX) :].encode()).decode()
        return parse_rfc3339(text, field_name="page")
    except (ValueError, ApiError):
        raise invalid_request("page: invalid page token") from None
