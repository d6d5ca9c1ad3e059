"""Reading the audit log: filters, tail/follow, and summaries from the rollup tables.

Summaries read ``rollups`` (kept in the same transaction as each event), so their cost
depends on the number of distinct (day, user, role, model) groups, not on
the number of events. Their time filters therefore work in whole UTC days.

Cost figures are estimates: tokens times a price table (``audit.prices``, or the built-in
list-price defaults below when the configuration has none). Cache writes/reads, batch
discounts, long-context surcharges and negotiated prices are not modelled.
"""

from __future__ import annotations

import fnmatch
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from claudesec.audit.intents import pending_admissions
from claudesec.audit.store import NS_PER_DAY, AuditStore, StoredEvent, stored_event
from claudesec.errors import ConfigError, UsageError
from claudesec.timeparse import format_ns

# USD per million tokens, list prices of the Claude API. Estimates only: update through
# `audit.prices` in claudesec.toml when Anthropic's price list changes.
DEFAULT_PRICES: Mapping[str, float] = {
    "claude-opus-4-[5-9]*:input": 5.0,
    "claude-opus-4-[5-9]*:output": 25.0,
    "claude-opus-4*:input": 15.0,
    "claude-opus-4*:output": 75.0,
    "claude-opus-*:input": 5.0,
    "claude-opus-*:output": 25.0,
    "claude-sonnet-*:input": 3.0,
    "claude-sonnet-*:output": 15.0,
    "claude-haiku-*:input": 1.0,
    "claude-haiku-*:output": 5.0,
    "claude-3-opus*:input": 15.0,
    "claude-3-opus*:output": 75.0,
    "claude-3-*sonnet*:input": 3.0,
    "claude-3-*sonnet*:output": 15.0,
    "claude-3-5-haiku*:input": 0.8,
    "claude-3-5-haiku*:output": 4.0,
    "claude-3-haiku*:input": 0.25,
    "claude-3-haiku*:output": 1.25,
}

SummaryBy = Literal["user", "model", "day", "role"]
SUMMARY_KEYS: tuple[str, ...] = ("user", "model", "day", "role")


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Conditions combined with AND; each tuple matches any of its values (``*`` globs)."""

    users: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    decisions: tuple[str, ...] = ()
    since_ns: int | None = None
    until_ns: int | None = None
    min_tokens: int | None = None
    incomplete: bool = False  # only admissions no call record completes (see INCOMPLETE_SQL)
    # (field, value) on the record's upstream credential: kind, key_hint, issuer, subject,
    # rule_id... Values of one field are alternatives (OR); different fields all apply.
    upstream: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        from claudesec.audit.events import UPSTREAM_FIELDS

        for name, _ in self.upstream:
            if name not in UPSTREAM_FIELDS:
                raise UsageError(
                    f"unknown upstream field {name!r}",
                    hint="one of " + ", ".join(sorted(UPSTREAM_FIELDS)),
                )

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, values in (
            ("user", self.users),
            ("role", self.roles),
            ("model", self.models),
            ("type", self.types),
            ("decision", self.decisions),
        ):
            if not values:
                continue
            options = []
            for value in values:
                if any(ch in value for ch in "*?["):
                    options.append(f"{column} GLOB ?")
                else:
                    options.append(f"{column} = ?")
                params.append(value)
            clauses.append("(" + " OR ".join(options) + ")")
        if self.since_ns is not None:
            clauses.append("time_ns >= ?")
            params.append(self.since_ns)
        if self.until_ns is not None:
            clauses.append("time_ns < ?")
            params.append(self.until_ns)
        if self.min_tokens is not None:
            clauses.append("input_tokens + output_tokens >= ?")
            params.append(self.min_tokens)
        by_field: dict[str, list[str]] = {}
        for name, value in self.upstream:
            by_field.setdefault(name, []).append(value)
        for name, wanted in by_field.items():
            # The name is one of UPSTREAM_FIELDS (checked above): safe inside the JSON path.
            column = f"json_extract(body, '$.upstream.{name}')"
            alternatives = []
            for value in wanted:
                glob = any(ch in value for ch in "*?[")
                alternatives.append(f"{column} {'GLOB' if glob else '='} ?")
                params.append(value)
            clauses.append("(" + " OR ".join(alternatives) + ")")
        if self.incomplete:
            clauses.append(INCOMPLETE_SQL)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


# An admission record (written before a call's first byte went upstream) that no later record
# completes: a call still in flight, or one whose process died before recording its outcome.
# The inner query uses the events_admission index.
INCOMPLETE_SQL = (
    "(type = 'admission' AND NOT EXISTS (SELECT 1 FROM events AS done "
    "WHERE json_extract(done.body, '$.admission_seq') = +events.seq))"
)  # the unary + drops the column's affinity, so SQLite searches the index instead of scanning it


@dataclass(frozen=True, slots=True)
class IncompleteCalls:
    """Admitted calls with no outcome recorded: in flight, or cut off by a crash."""

    count: int  # all of them: admission records, and journal entries not yet imported
    seqs: tuple[int, ...]  # the first admission records, oldest first
    # Admissions still in the intent journal of a client that stopped (no record yet: the
    # next process that opens the store for writing imports them; see audit.intents).
    journaled: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "seqs": list(self.seqs), "journaled": self.journaled}


def incomplete_calls(store: AuditStore, *, show: int = 20) -> IncompleteCalls:
    """How many admitted calls have no outcome record, and the first ``show`` of them."""
    with store.snapshot() as conn:
        if not store.initialised(conn):
            return IncompleteCalls(0, ())
        rows = conn.execute(
            f"SELECT seq FROM events WHERE {INCOMPLETE_SQL} ORDER BY seq"  # noqa: S608 - constant
        ).fetchall()
    journaled = len(pending_admissions(store))
    return IncompleteCalls(
        len(rows) + journaled, tuple(int(row[0]) for row in rows[:show]), journaled
    )


def iter_events(
    store: AuditStore,
    where: EventFilter | None = None,
    *,
    limit: int | None = None,
    after_seq: int = 0,
) -> Iterator[StoredEvent]:
    """Matching events oldest first; with ``limit``, the newest ``limit`` of them."""
    clause, params = (where or EventFilter()).where()
    if after_seq:
        clause += (" AND " if clause else " WHERE ") + "seq > ?"
        params.append(after_seq)
    with store.snapshot() as conn:
        if not store.initialised(conn):
            return
        if limit is not None:
            rows = conn.execute(
                f"SELECT seq, rec_hash, body FROM events{clause} ORDER BY seq DESC LIMIT ?",  # noqa: S608 - only fixed column names are interpolated
                (*params, max(0, limit)),
            ).fetchall()
            for row in reversed(rows):
                yield stored_event(row)
            return
        cursor = conn.execute(
            f"SELECT seq, rec_hash, body FROM events{clause} ORDER BY seq",  # noqa: S608
            params,
        )
        while True:
            batch = cursor.fetchmany(1000)
            if not batch:
                return
            for row in batch:
                yield stored_event(row)


def tail(store: AuditStore, n: int = 10) -> list[StoredEvent]:
    """The last ``n`` events, oldest first."""
    return list(iter_events(store, limit=n))


def follow(
    store: AuditStore,
    after_seq: int,
    *,
    poll_s: float = 0.5,
    stop: Callable[[], bool] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[list[StoredEvent]]:
    """Yield batches of new events as other processes append them, until ``stop()``.

    Polling (a cheap indexed read) rather than file notifications: it works for any writer,
    on any file system, and across the WAL.
    """
    last = after_seq
    while stop is None or not stop():
        batch = list(iter_events(store, after_seq=last))
        if batch:
            last = batch[-1].seq
            yield batch
        else:
            sleep(poll_s)


def event_record(stored: StoredEvent) -> dict[str, Any]:
    """A stored event as a flat JSON-ready dict (for json/jsonl/show)."""
    record: dict[str, Any] = {
        "seq": stored.seq,
        "time": format_ns(stored.event.time_ns, precise=True),
    }
    data = stored.event.to_dict()
    record.update(data)
    record["rec_hash"] = stored.rec_hash
    return record


CSV_COLUMNS: tuple[str, ...] = (
    "seq",
    "time",
    "time_ns",
    "type",
    "user",
    "role",
    "identity_source",
    "model",
    "decision",
    "reason",
    "input_tokens",
    "output_tokens",
    "latency_ms",
    "stop_reason",
    "dlp_kinds",
    "prompt_hash",
    "request_id",
    "host",
    "app",
    "extra",
    "rec_hash",
)


def csv_row(stored: StoredEvent) -> list[Any]:
    """One CSV row in :data:`CSV_COLUMNS` order (extra fields as a JSON object)."""
    event = stored.event
    extra = json.dumps(dict(_plain(event.extra)), sort_keys=True) if event.extra else ""
    return [
        stored.seq,
        format_ns(event.time_ns, precise=True),
        event.time_ns,
        event.type,
        event.user,
        event.role,
        event.identity_source,
        event.model,
        event.decision,
        event.reason,
        event.input_tokens,
        event.output_tokens,
        event.latency_ms,
        event.stop_reason,
        ";".join(event.dlp_kinds),
        event.prompt_hash,
        event.request_id,
        event.host,
        event.app,
        extra,
        stored.rec_hash,
    ]


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


# --------------------------------------------------------------------------- summaries


@dataclass(frozen=True, slots=True)
class SummaryRow:
    key: str
    events: int
    calls: int
    input_tokens: int
    output_tokens: int
    denials: int
    dlp_hits: int
    cost_usd: float
    unpriced_tokens: int

    def to_dict(self, by: str) -> dict[str, Any]:
        return {
            by: self.key,
            "events": self.events,
            "calls": self.calls,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "denials": self.denials,
            "dlp_hits": self.dlp_hits,
            "estimated_cost_usd": round(self.cost_usd, 4),
            "unpriced_tokens": self.unpriced_tokens,
        }


@dataclass(frozen=True, slots=True)
class Summary:
    by: str
    rows: tuple[SummaryRow, ...]
    total: SummaryRow
    groups: int  # groups before --top
    price_source: Literal["config", "built-in"]
    unpriced_models: tuple[str, ...]


class PriceTable:
    """``MODEL_GLOB:input|output`` -> USD per million tokens; the most specific glob wins."""

    def __init__(self, prices: Mapping[str, float]) -> None:
        self.input: list[tuple[str, float]] = []
        self.output: list[tuple[str, float]] = []
        for key, value in prices.items():
            glob, _, side = key.rpartition(":")
            if not glob or side not in ("input", "output"):
                raise ConfigError(
                    f"audit.prices key {key!r} must be 'MODEL_GLOB:input' or 'MODEL_GLOB:output'"
                )
            (self.input if side == "input" else self.output).append((glob, float(value)))
        # Longest pattern first: "claude-opus-4-[5-9]*" must win over "claude-opus-*".
        self.input.sort(key=lambda item: len(item[0]), reverse=True)
        self.output.sort(key=lambda item: len(item[0]), reverse=True)

    def price(self, model: str) -> tuple[float, float] | None:
        pin = next((p for g, p in self.input if fnmatch.fnmatchcase(model, g)), None)
        pout = next((p for g, p in self.output if fnmatch.fnmatchcase(model, g)), None)
        if pin is None or pout is None:
            return None
        return pin, pout


def summarise(
    store: AuditStore,
    by: str = "user",
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
    top: int | None = None,
    prices: Mapping[str, float] | None = None,
) -> Summary:
    """Calls, tokens, denials, DLP hits and estimated cost grouped ``by`` one dimension."""
    if by not in SUMMARY_KEYS:
        raise ConfigError(
            f"cannot summarise by {by!r}", hint=f"use one of {', '.join(SUMMARY_KEYS)}"
        )
    source: Literal["config", "built-in"] = "config" if prices else "built-in"
    table = PriceTable(prices or DEFAULT_PRICES)
    clauses: list[str] = []
    params: list[Any] = []
    if since_ns is not None:
        clauses.append("day >= ?")
        params.append(since_ns // NS_PER_DAY)
    if until_ns is not None:
        # until is exclusive: a day is included when any part of it is before `until`.
        clauses.append("day < ?")
        params.append(-(-until_ns // NS_PER_DAY))
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    sql = f"""
        SELECT {by}, model, sum(events), sum(calls), sum(input_tokens), sum(output_tokens),
               sum(denials), sum(dlp_events)
        FROM rollups{where} GROUP BY 1, 2
    """  # noqa: S608 - `by` is checked against SUMMARY_KEYS above
    with store.snapshot() as conn:
        rows = conn.execute(sql, params).fetchall() if store.initialised(conn) else []

    groups: dict[str, list[float]] = {}
    unpriced: set[str] = set()
    for key, model, events, calls, tin, tout, denials, dlp in rows:
        label = _day(int(key)) if by == "day" else str(key)
        acc = groups.setdefault(label, [0, 0, 0, 0, 0, 0, 0.0, 0])
        acc[0] += events
        acc[1] += calls
        acc[2] += tin
        acc[3] += tout
        acc[4] += denials
        acc[5] += dlp
        price = table.price(str(model)) if model else None
        if price is not None:
            acc[6] += (tin * price[0] + tout * price[1]) / 1_000_000
        elif tin or tout:
            acc[7] += tin + tout
            unpriced.add(str(model) or "(none)")
    summary_rows = [
        SummaryRow(
            key,
            int(a[0]),
            int(a[1]),
            int(a[2]),
            int(a[3]),
            int(a[4]),
            int(a[5]),
            float(a[6]),
            int(a[7]),
        )
        for key, a in groups.items()
    ]
    if by == "day":
        summary_rows.sort(key=lambda r: r.key)
    else:
        summary_rows.sort(key=lambda r: (-r.calls, -r.events, -r.cost_usd, r.key))
    total = SummaryRow(
        "TOTAL",
        sum(r.events for r in summary_rows),
        sum(r.calls for r in summary_rows),
        sum(r.input_tokens for r in summary_rows),
        sum(r.output_tokens for r in summary_rows),
        sum(r.denials for r in summary_rows),
        sum(r.dlp_hits for r in summary_rows),
        sum(r.cost_usd for r in summary_rows),
        sum(r.unpriced_tokens for r in summary_rows),
    )
    shown = (
        summary_rows
        if top is None
        else (summary_rows[-top:] if by == "day" else summary_rows[:top])
    )
    return Summary(by, tuple(shown), total, len(summary_rows), source, tuple(sorted(unpriced)))


def _day(day: int) -> str:
    return format_ns(day * NS_PER_DAY)[:10]
