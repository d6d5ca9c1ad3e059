"""An :class:`~claudesec.org.model.OrgInventory` to and from JSON (``org inventory`` output,
``org check --inventory FILE`` input), so a check can run on evidence captured earlier.

The document mirrors the dataclass: ``fetched_at``, ``organization_id``, ``lists``,
``singletons``, ``unavailable`` (``kind``, ``reason``, ``message``), ``key_last_used`` (key id
-> RFC 3339, or null when usage could not be read) and ``usage_window_days``. Items are the
Admin API's JSON, unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast, get_args

from claudesec.errors import UsageError
from claudesec.org.model import OrgInventory, Unavailable

_REASONS = get_args(Unavailable.__annotations__["reason"])


def to_document(inventory: OrgInventory) -> dict[str, Any]:
    used = inventory.key_last_used
    return {
        "fetched_at": _iso(inventory.fetched_at),
        "organization_id": inventory.organization_id,
        "lists": {kind: list(items) for kind, items in inventory.lists.items()},
        "singletons": dict(inventory.singletons),
        "unavailable": [
            {"kind": u.kind, "reason": u.reason, "message": u.message}
            for u in inventory.unavailable
        ],
        "key_last_used": None if used is None else {k: _iso(v) for k, v in used.items()},
        "usage_window_days": inventory.usage_window_days,
    }


def from_document(data: Any, *, source: str = "inventory") -> OrgInventory:
    """The inventory a document describes; a malformed one is a usage error naming ``source``."""

    def bad(what: str) -> UsageError:
        return UsageError(
            f"{source} is not an org inventory: {what}",
            hint="write one with `claudesec org inventory --format json`",
        )

    if not isinstance(data, Mapping):
        raise bad("the document is not a JSON object")
    try:
        fetched = _parse(data["fetched_at"])
        lists = {
            str(kind): tuple(dict(item) for item in items)
            for kind, items in (data.get("lists") or {}).items()
        }
        singletons = {str(k): dict(v) for k, v in (data.get("singletons") or {}).items()}
        unavailable = tuple(
            Unavailable(str(u["kind"]), _reason(u.get("reason")), str(u.get("message", "")))
            for u in data.get("unavailable") or ()
        )
        raw_used = data.get("key_last_used")
        used = None if raw_used is None else {str(k): _parse(v) for k, v in raw_used.items()}
        return OrgInventory(
            fetched_at=fetched,
            organization_id=str(data.get("organization_id", "")),
            lists=lists,
            singletons=singletons,
            unavailable=unavailable,
            key_last_used=used,
            usage_window_days=int(data.get("usage_window_days", 30)),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise bad(f"{type(exc).__name__}: {exc}") from None


def load(path: Path) -> OrgInventory:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read inventory {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"inventory {path} is not valid JSON: {exc}") from None
    return from_document(data, source=str(path))


def _reason(value: Any) -> Any:
    return value if value in _REASONS else "error"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse(text: Any) -> datetime:
    moment = datetime.fromisoformat(cast(str, text).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
