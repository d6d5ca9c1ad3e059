"""Times and durations as users type them: ``2h``, ``7d``, ``90d``, ``2026-01-31``, ISO 8601."""

from __future__ import annotations

import re
import time
from datetime import UTC, date, datetime

from claudesec.errors import UsageError

_UNITS_S = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_HINT = "use a duration like 30m, 2h, 7d, 4w, or a date like 2026-01-31 or 2026-01-31T08:00Z"


def parse_duration_ns(text: str) -> int:
    """``"90d"`` -> nanoseconds. Units: s, m, h, d, w."""
    match = _DURATION.match(text)
    if not match:
        raise UsageError(f"not a duration: {text!r}", hint="use e.g. 90d, 12h, 30m or 2w")
    return int(float(match.group(1)) * _UNITS_S[match.group(2).lower()] * 1_000_000_000)


def parse_time_ns(text: str, *, now_ns: int | None = None) -> int:
    """A point in time as epoch nanoseconds (UTC).

    A duration means that long before now (``2h`` = two hours ago); ``now`` and ``today``
    (UTC midnight) are accepted; otherwise an ISO 8601 date or date-time, read as UTC when it
    carries no offset.
    """
    now = time.time_ns() if now_ns is None else now_ns
    stripped = text.strip()
    lowered = stripped.lower()
    if lowered == "now":
        return now
    if lowered == "today":
        day = datetime.fromtimestamp(now / 1e9, UTC).date()
        return _date_ns(day)
    if _DURATION.match(stripped):
        return now - parse_duration_ns(stripped)
    try:
        if len(stripped) == 10:
            return _date_ns(date.fromisoformat(stripped))
        moment = datetime.fromisoformat(stripped)
    except ValueError:
        raise UsageError(f"not a time: {text!r}", hint=_HINT) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def _date_ns(day: date) -> int:
    return (day - date(1970, 1, 1)).days * 86_400 * 1_000_000_000


def format_ns(time_ns: int, *, precise: bool = False) -> str:
    """Epoch ns -> ``2026-01-31T08:00:00Z`` (``precise``: with microseconds)."""
    moment = datetime.fromtimestamp(time_ns // 1_000 / 1e6, UTC)
    if precise:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
