"""Wire-level pieces shared by every endpoint: errors, JSON, timestamps, pagination."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

T = TypeVar("T")

# Anthropic's error types and the status each one travels with.
ERROR_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}

_REASONS: dict[int, str] = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    529: "Overloaded",
}


def reason_phrase(status: int) -> str:
    return _REASONS.get(status, "Unknown")


class ApiError(Exception):
    """An error answer in Anthropic's envelope; raised anywhere, rendered by the server."""

    def __init__(
        self,
        error_type: str,
        message: str,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.status = status if status is not None else ERROR_STATUS.get(error_type, 500)
        self.headers = dict(headers or {})


def invalid_request(message: str) -> ApiError:
    return ApiError("invalid_request_error", message)


def not_found(message: str = "Not found") -> ApiError:
    return ApiError("not_found_error", message)


def error_body(error_type: str, message: str, request_id: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": request_id,
    }


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def rfc3339(moment: datetime) -> str:
    """UTC with a ``Z`` suffix, the way Anthropic writes timestamps."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_rfc3339(text: str, *, field_name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise invalid_request(f"{field_name}: invalid RFC 3339 datetime {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@dataclass
class Response:
    """A complete JSON answer; the server adds request-id, content-length and framing."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Query:
    """A parsed query string. Arrays may be written ``name[]=a`` (the SDK's style) or ``name=a``."""

    values: Mapping[str, Sequence[str]]

    def one(self, name: str) -> str | None:
        found = self.values.get(name)
        return found[-1] if found else None

    def many(self, name: str) -> list[str]:
        return [*self.values.get(f"{name}[]", ()), *self.values.get(name, ())]

    def integer(self, name: str, *, default: int, low: int, high: int) -> int:
        raw = self.one(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise invalid_request(f"{name}: Input should be a valid integer") from None
        if not low <= value <= high:
            raise invalid_request(f"{name}: Input should be between {low} and {high}")
        return value


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a cursor-paginated listing."""

    items: list[T]
    has_more: bool
    first_id: str | None
    last_id: str | None

    def to_json(self, render: Callable[[T], Any]) -> dict[str, Any]:
        return {
            "data": [render(item) for item in self.items],
            "has_more": self.has_more,
            "first_id": self.first_id,
            "last_id": self.last_id,
        }


def paginate(
    items: Sequence[T],
    *,
    id_of: Callable[[T], str],
    keep: Callable[[T], bool],
    query: Query,
    default_limit: int = 20,
    max_limit: int = 1000,
) -> Page[T]:
    """Cursor pagination as the API does it: ``limit`` plus ``after_id`` or ``before_id``.

    ``items`` is the full listing order. Cursors are located in it before filtering, so a
    cursor whose object no longer passes the filter (its status changed between two pages)
    still marks a position instead of breaking the walk.
    """
    limit = query.integer("limit", default=default_limit, low=1, high=max_limit)
    after_id, before_id = query.one("after_id"), query.one("before_id")
    if after_id and before_id:
        raise invalid_request("Cannot specify both after_id and before_id")
    ids = [id_of(item) for item in items]
    cursor = after_id or before_id
    if cursor and cursor not in ids:
        raise invalid_request(f"{'after_id' if after_id else 'before_id'}: unknown id {cursor!r}")
    if after_id:
        candidates = [item for item in items[ids.index(after_id) + 1 :] if keep(item)]
        page = candidates[:limit]
    elif before_id:
        candidates = [item for item in items[: ids.index(before_id)] if keep(item)]
        page = candidates[-limit:]
    else:
        candidates = [item for item in items if keep(item)]
        page = candidates[:limit]
    return Page(
        items=page,
        has_more=len(candidates) > len(page),
        first_id=id_of(page[0]) if page else None,
        last_id=id_of(page[-1]) if page else None,
    )


_CURSOR_PREFIX = "cur_"


def cursor_page(
    items: Sequence[T],
    *,
    id_of: Callable[[T], str],
    query: Query,
    render: Callable[[T], Any],
    default_limit: int = 20,
    max_limit: int = 100,
) -> dict[str, Any]:
    """The ``page`` / ``next_page`` pagination of the beta organisation endpoints.

    The cursor is opaque to clients; here it names the last item of the previous page, so
    a walk survives items being added before it. An unknown cursor is a 400.
    """
    limit = query.integer("limit", default=default_limit, low=1, high=max_limit)
    token = query.one("page")
    start = 0
    if token:
        ids = [id_of(item) for item in items]
        last = token[len(_CURSOR_PREFIX) :] if token.startswith(_CURSOR_PREFIX) else None
        if last is None or last not in ids:
            raise invalid_request("page: invalid page cursor")
        start = ids.index(last) + 1
    page = list(items[start : start + limit])
    more = start + limit < len(items)
    return {
        "data": [render(item) for item in page],
        "next_page": f"{_CURSOR_PREFIX}{id_of(page[-1])}" if more and page else None,
    }
