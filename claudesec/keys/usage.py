"""Usage and cost from the Admin API's usage report, and reconciliation with the audit log.

Reconciliation compares tokens per model: the Admin API counts every call made with the
organisation's keys, the audit log only calls made through claudesec. Where Anthropic saw
more than the log, some traffic went around the audited client.
"""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import sqlite3

    from claudesec.anthropic_admin import AdminClient, UsageRow

GroupBy = Literal["key", "workspace", "model"]
_FIELD: dict[str, str] = {"key": "api_key_id", "workspace": "workspace_id", "model": "model"}


@dataclass(frozen=True)
class UsageLine:
    group: str
    input_tokens: int
    output_tokens: int
    cost_usd: float | None

    def to_json(self) -> dict[str, object]:
        return {
            "group": self.group,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": None if self.cost_usd is None else round(self.cost_usd, 6),
        }


@dataclass(frozen=True)
class Discrepancy:
    model: str
    api_tokens: int
    audited_tokens: int

    @property
    def unaudited_tokens(self) -> int:
        return self.api_tokens - self.audited_tokens

    def to_json(self) -> dict[str, object]:
        return {
            "model": self.model,
            "api_tokens": self.api_tokens,
            "audited_tokens": self.audited_tokens,
            "unaudited_tokens": self.unaudited_tokens,
        }


def price(prices: Mapping[str, float], model: str, direction: str) -> float | None:
    """USD per million tokens for ``model`` from ``audit.prices`` (first matching glob)."""
    for pattern, value in prices.items():
        glob, _, kind = pattern.rpartition(":")
        if kind == direction and fnmatch.fnmatchcase(model, glob):
            return value
    return None


def usage(
    admin: AdminClient,
    *,
    since: datetime,
    until: datetime | None = None,
    by: GroupBy = "key",
    prices: Mapping[str, float] | None = None,
) -> list[UsageLine]:
    """Tokens (and cost, where ``prices`` know the model) per key, workspace or model."""
    group_by = [_FIELD[by]] if by == "model" else [_FIELD[by], "model"]
    rows = admin.usage_report(starting_at=since, ending_at=until, group_by=group_by)
    return _aggregate(rows, by, prices or {})


def _aggregate(
    rows: Sequence[UsageRow], by: GroupBy, prices: Mapping[str, float]
) -> list[UsageLine]:
    tokens: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    costs: dict[str, float | None] = {}
    for row in rows:
        group = str(getattr(row, _FIELD[by]) or "(none)")
        inputs = row.input_tokens + row.cache_read_input_tokens + row.cache_creation_input_tokens
        tokens[group][0] += inputs
        tokens[group][1] += row.output_tokens
        in_price = price(prices, row.model or "", "input")
        out_price = price(prices, row.model or "", "output")
        if in_price is None or out_price is None:
            costs[group] = None if inputs or row.output_tokens else costs.get(group, 0.0)
            continue
        known = costs.get(group, 0.0)
        if known is not None:
            costs[group] = known + (inputs * in_price + row.output_tokens * out_price) / 1e6
    return [
        UsageLine(group=g, input_tokens=t[0], output_tokens=t[1], cost_usd=costs.get(g))
        for g, t in sorted(tokens.items(), key=lambda item: -(item[1][0] + item[1][1]))
    ]


def audited_tokens(conn: sqlite3.Connection, since_ns: int) -> dict[str, int]:
    """Tokens per model that the audit log recorded for calls since ``since_ns``."""
    found: dict[str, int] = {}
    for model, total in conn.execute(
        "SELECT model, SUM(input_tokens + output_tokens) FROM events "
        "WHERE type = 'call' AND time_ns >= ? GROUP BY model",
        (since_ns,),
    ):
        found[str(model)] = int(total or 0)
    return found


def reconcile(
    api: Sequence[UsageLine], audited: Mapping[str, int], *, tolerance: float = 0.02
) -> list[Discrepancy]:
    """Models where Anthropic counted more tokens than the audit log (beyond ``tolerance``)."""
    gaps = []
    for line in api:
        total = line.input_tokens + line.output_tokens
        seen = audited.get(line.group, 0)
        if total > seen * (1 + tolerance):
            gaps.append(Discrepancy(model=line.group, api_tokens=total, audited_tokens=seen))
    return gaps


# Steps of the ``key_rotation`` audit events that put a key in service, and those that took
# it out again (retired after its overlap, revoked).
_INTO_SERVICE = frozenset({"add", "set_secret", "finish_secret", "rollback"})
_OUT_OF_SERVICE = frozenset({"retire", "revoke", "pool_add"})


def put_in_service_since(conn: sqlite3.Connection, key_id: str, since_ns: int) -> str | None:
    """When the audit log last shows ``key_id`` put in service (added, rotated in, rolled
    back to) since ``since_ns`` without being taken out again; None if it does not."""
    import json
    from datetime import UTC

    last: tuple[int, str] | None = None
    for time_ns, body in conn.execute(
        "SELECT time_ns, body FROM events WHERE type = 'key_rotation' AND time_ns >= ? "
        "AND body LIKE ? ORDER BY seq",
        (since_ns, f"%{key_id}%"),
    ):
        try:
            event = json.loads(body)
        except ValueError:
            continue
        # The store keeps an event's extra fields beside its own ones.
        fields = {**(event.get("extra") or {}), **event} if isinstance(event, dict) else {}
        if fields.get("key_id") != key_id or fields.get("outcome") not in ("ok", "resumed"):
            continue
        step = str(event.get("reason", ""))
        if step in _INTO_SERVICE:
            last = (int(time_ns), step)
        elif step in _OUT_OF_SERVICE:
            last = None
    if last is None:
        return None
    moment = datetime.fromtimestamp(last[0] / 1e9, UTC).isoformat(timespec="seconds")
    return f"the audit log shows it put in service ({last[1]}) at {moment}"
