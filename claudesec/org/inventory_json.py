"""An :class:`~claudesec.org.model.OrgInventory` as a JSON document, and back.

``org inventory --out FILE`` writes this as evidence, and ``org check --inventory FILE`` (or
a test) can judge it later without the API. The document keeps every item exactly as the
Admin API answered it; only our envelope (format tag, fetch time, what was unavailable, when
each key was last used) is ours. ``from_json`` refuses a document of another format rather
than guessing.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from claudesec.errors import UsageError
from claudesec.org.model import OrgInventory, Unavailable

FORMAT = "claudesec.org-inventory/1"
_REASONS = ("forbidden", "not_enrolled", "not_found", "error")


def to_json(inventory: OrgInventory) -> dict[str, Any]:
    """A JSON-ready dict (``json.dumps`` it; nothing in it needs a custom encoder)."""
    return {
        "format": FORMAT,
        "fetched_at": _iso(inventory.fetched_at),
        "organization_id": inventory.organization_id,
        "usage_window_days": inventory.usage_window_days,
        "lists": {name: [dict(item) for item in items] for name, items in inventory.lists.items()},
        "singletons": {name: dict(item) for name, item in inventory.singletons.items()},
        "unavailable": [
            {"kind": u.kind, "reason": u.reason, "message": u.message}
            for u in inventory.unavailable
        ],
        "key_last_used": None
        if inventory.key_last_used is None
        else {key: _iso(when) for key, when in sorted(inventory.key_last_used.items())},
    }


def from_json(document: Any) -> OrgInventory:
    """The inventory a :func:`to_json` document holds; :class:`UsageError` if it is not one."""
    if not isinstance(document, Mapping) or document.get("format") != FORMAT:
        raise UsageError(f"not an organisation inventory (expected format {FORMAT!r})")
    try:
        lists = {
            str(name): tuple(dict(item) for item in items)
            for name, items in dict(document.get("lists") or {}).items()
        }
        singletons = {
            str(name): dict(item) for name, item in dict(document.get("singletons") or {}).items()
        }
        unavailable = []
        for entry in document.get("unavailable") or []:
            reason = entry["reason"]
            if reason not in _REASONS:
                raise ValueError(f"unknown reason {reason!r}")
            unavailable.append(Unavailable(str(entry["kind"]), reason, str(entry["message"])))
        raw_used = document.get("key_last_used")
        key_last_used = (
            None
            if raw_used is None
            else {str(key): _parse(str(when)) for key, when in dict(raw_used).items()}
        )
        return OrgInventory(
            fetched_at=_parse(str(document["fetched_at"])),
            organization_id=str(document.get("organization_id", "")),
            lists=lists,
            singletons=singletons,
            unavailable=tuple(unavailable),
            key_last_used=key_last_used,
            usage_window_days=int(document.get("usage_window_days", 30)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"damaged organisation inventory: {exc}") from None


def write(path: Path, inventory: OrgInventory) -> None:
    """Write the document atomically, owner-only (it names people and settings): a crash
    leaves the previous file, never half of a new one."""
    directory = path.parent if str(path.parent) else Path(".")
    text = json.dumps(to_json(inventory), indent=2, ensure_ascii=False) + "\n"
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc


def read(path: Path) -> OrgInventory:
    """The inventory in a file :func:`write` made."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"cannot read the inventory {path}: {exc}") from exc
    try:
        return from_json(document)
    except UsageError as exc:
        raise UsageError(f"{path} is not an org inventory: {exc.message}", hint=exc.hint) from None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
