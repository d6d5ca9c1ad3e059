"""Build a :class:`~claudesec.audit.report.model.Report` from an audit store and optional inputs.

One pass over the events of the period feeds every counter; the integrity section runs
:func:`claudesec.audit.verify.verify_store` over the whole store (a proof covers the chain, not
a window of it). "First seen" (users, models) looks at the whole retained store, so a user
first seen before a prune counts as new again: the report says so.

Definitions match ``logs summary`` and ``logs alerts``: a *call* is a ``call`` event; a
*denial* is a ``denial`` event or any event decided ``deny``; a *DLP hit* is a ``dlp_hit``
event or any event with DLP kinds; a *401* is an event whose ``extra`` carries
``http_status`` (or ``status``) 401. A *burst* of 401s is a run of at least
``alerts.auth_failures`` 401s, each within ``alerts.auth_window`` of the previous one.
Off-hours use compares each call's UTC hour with ``alerts.allowed_hours`` (or
:data:`DEFAULT_HOURS` when that is unset, as the report then says). Cost is an estimate:
tokens times the price table of ``audit.prices`` (or the built-in list prices).
"""

from __future__ import annotations

import json
import shlex
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from claudesec.audit.alerts import outside_hours, parse_hours
from claudesec.audit.checkpoint import Checkpoint
from claudesec.audit.events import EventType
from claudesec.audit.query import DEFAULT_PRICES, EventFilter, PriceTable, iter_events
from claudesec.audit.report.model import Cell, Figure, Report, Section
from claudesec.audit.secrets import public_key_fingerprint
from claudesec.audit.store import NS_PER_DAY, AuditStore, StoredEvent
from claudesec.audit.verify import verify_store
from claudesec.config import AlertsConfig
from claudesec.errors import UsageError
from claudesec.timeparse import format_ns, parse_duration_ns

DEFAULT_HOURS = "07-19"
TOP = 15  # rows in a "by user" style figure; the JSON twin carries the same rows
_CALLISH = (EventType.CALL, EventType.DENIAL, EventType.DLP_HIT)


@dataclass(frozen=True, slots=True)
class ReportInputs:
    """Everything a report needs besides the store; files are already parsed."""

    since_ns: int
    until_ns: int
    now_ns: int
    store_arg: str = ""  # the --store value to repeat in reproduce commands ("" = default)
    prices: Mapping[str, float] = field(default_factory=dict)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    anchor: Checkpoint | None = None
    public_key: bytes | None = None
    local_public_key: bytes | None = None
    drills: Mapping[str, Any] | None = None
    drills_source: str = ""
    sarif: Mapping[str, Any] | None = None
    sarif_source: str = ""
    # SARIF logs of `org check --format sarif` and `federation lint --format sarif`.
    org_check: Mapping[str, Any] | None = None
    org_check_source: str = ""
    federation_lint: Mapping[str, Any] | None = None
    federation_lint_source: str = ""


def load_drills(text: str, source: str) -> Mapping[str, Any]:
    """The JSON report of ``drill run --json FILE``; a usage error names a bad file."""
    data = _load_json(text, source)
    if not isinstance(data.get("drills"), list):
        raise UsageError(
            f"{source} is not a drill JSON report (no 'drills' list)",
            hint="write one with `claudesec drill run --json FILE`",
        )
    return data


def load_sarif(
    text: str, source: str, writer: str = "claudesec scan --format sarif -o FILE"
) -> Mapping[str, Any]:
    """A SARIF 2.1 log (``scan``, ``org check`` or ``federation lint`` with
    ``--format sarif``); ``writer`` is the command the hint offers."""
    data = _load_json(text, source)
    if not isinstance(data.get("runs"), list):
        raise UsageError(
            f"{source} is not a SARIF log (no 'runs' list)",
            hint=f"write one with `{writer}`",
        )
    return data


def _load_json(text: str, source: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{source} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{source} must hold a JSON object")
    return data


class Commands:
    """Reproduce commands: the period and the store repeated, every value shell-quoted."""

    def __init__(self, inputs: ReportInputs) -> None:
        self.period = ["--since", format_ns(inputs.since_ns), "--until", format_ns(inputs.until_ns)]
        self.store = ["--store", inputs.store_arg] if inputs.store_arg else []

    def query(self, *args: str) -> str:
        return shlex.join(["claudesec", "logs", "query", *args, *self.period, *self.store])

    def summary(self, by: str) -> str:
        return shlex.join(["claudesec", "logs", "summary", "--by", by, *self.period, *self.store])

    def verify(self, *args: str) -> str:
        return shlex.join(["claudesec", "logs", "verify", *args, *self.store])


@dataclass
class _Group:
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    unpriced: int = 0


@dataclass
class Tally:
    """Every counter the period's events feed, filled in one pass."""

    table: PriceTable
    hours: tuple[int, int]
    prompt_over: int
    by: dict[str, dict[str, _Group]] = field(
        default_factory=lambda: {k: defaultdict(_Group) for k in ("user", "role", "model", "day")}
    )
    denials: Counter[str] = field(default_factory=Counter)
    dlp: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)
    off_hours: Counter[str] = field(default_factory=Counter)
    large: list[StoredEvent] = field(default_factory=list)
    auth: list[tuple[int, str]] = field(default_factory=list)
    keys: list[StoredEvent] = field(default_factory=list)
    prunes: list[StoredEvent] = field(default_factory=list)
    events: int = 0
    first_seq: int = 0
    last_seq: int = 0
    # The price of each model seen, looked up once (glob matching is per model, not per event).
    _prices: dict[str, tuple[float, float] | None] = field(default_factory=dict)

    def add(self, stored: StoredEvent) -> None:
        event = stored.event
        self.events += 1
        self.first_seq = self.first_seq or stored.seq
        self.last_seq = stored.seq
        if event.type == EventType.KEY_ROTATION:
            self.keys.append(stored)
        elif event.type == EventType.PRUNE:
            self.prunes.append(stored)
        if event.decision == "deny" or event.type == EventType.DENIAL:
            self.denials[event.reason or "(no reason)"] += 1
        if event.dlp_kinds or event.type == EventType.DLP_HIT:
            for kind in event.dlp_kinds or ("(unknown kind)",):
                self.dlp[kind] += 1
        if event.extra.get("http_status") == 401 or event.extra.get("status") == 401:
            self.auth.append((event.time_ns, event.user))
        if event.type not in _CALLISH:
            return
        self.sources[identity_label(event.identity_source, event.upstream.get("kind", ""))] += 1
        if outside_hours(self.hours, event.time_ns):
            self.off_hours[event.user or "(unknown)"] += 1
        if self.prompt_over and event.input_tokens > self.prompt_over:
            self.large.append(stored)
        day = format_ns(event.time_ns // NS_PER_DAY * NS_PER_DAY)[:10]
        self._count(
            {"user": event.user, "role": event.role, "model": event.model, "day": day},
            event.model,
            calls=int(event.type == EventType.CALL),
            input_tokens=event.input_tokens,
            output_tokens=event.output_tokens,
        )

    def _count(
        self,
        keys: Mapping[str, str],
        model: str,
        *,
        calls: int,
        input_tokens: int,
        output_tokens: int,
    ) -> None:
        if model not in self._prices:
            self._prices[model] = self.table.price(model) if model else None
        price = self._prices[model]
        for dim, key in keys.items():
            group = self.by[dim][key or "(none)"]
            group.calls += calls
            group.input_tokens += input_tokens
            group.output_tokens += output_tokens
            if price is not None:
                group.cost += (input_tokens * price[0] + output_tokens * price[1]) / 1e6
            else:
                group.unpriced += input_tokens + output_tokens

    def add_hours(self, user: str, hour: int, events: int) -> None:
        """``events`` calls, denials or DLP hits of ``user`` in UTC hour ``hour``."""
        if outside_hours(self.hours, hour * 3_600 * 1_000_000_000):
            self.off_hours[user or "(unknown)"] += events

    def add_group(
        self,
        *,
        event_type: str,
        user: str,
        role: str,
        model: str,
        day: str,
        identity_source: str,
        hour: int | None,
        events: int,
        input_tokens: int,
        output_tokens: int,
        upstream_kind: str = "",
    ) -> None:
        """``events`` events that share every dimension the counters use (the lake report's
        grouped rows): the same rules as :meth:`add`, applied to their sums. ``hour`` None
        leaves off-hours to :meth:`add_hours`. Denials, DLP kinds, 401s, large prompts and key
        operations are the caller's to add."""
        self.events += events
        if event_type not in _CALLISH:
            return
        self.sources[identity_label(identity_source, upstream_kind)] += events
        if hour is not None and outside_hours(self.hours, hour * 3_600 * 1_000_000_000):
            self.off_hours[user or "(unknown)"] += events
        self._count(
            {"user": user, "role": role, "model": model, "day": day},
            model,
            calls=events if event_type == EventType.CALL else 0,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
        )


def new_tally(inputs: ReportInputs) -> tuple[Tally, str]:
    """An empty tally for ``inputs``, and the note to show when the off-hours rule is a default."""
    configured = inputs.alerts.allowed_hours
    hours = parse_hours(configured or DEFAULT_HOURS)
    assert hours is not None  # DEFAULT_HOURS is never empty
    tally = Tally(
        PriceTable(inputs.prices or DEFAULT_PRICES), hours, inputs.alerts.prompt_tokens_over
    )
    note = (
        ""
        if configured
        else f"alerts.allowed_hours is unset: off-hours means outside {DEFAULT_HOURS} UTC"
    )
    return tally, note


def build_report(store: AuditStore, inputs: ReportInputs) -> Report:
    """The report for ``inputs.since_ns`` (inclusive) to ``inputs.until_ns`` (exclusive)."""
    if inputs.until_ns <= inputs.since_ns:
        raise UsageError("--until must be after --since")
    tally, hours_note = new_tally(inputs)
    for stored in iter_events(
        store, EventFilter(since_ns=inputs.since_ns, until_ns=inputs.until_ns)
    ):
        tally.add(stored)
    first_seen = _first_seen(store)
    cmd = Commands(inputs)
    integrity, ok = _integrity(store, inputs, tally, cmd)
    return assemble(
        inputs, tally, first_seen, cmd, integrity, ok, str(store.path), hours_note=hours_note
    )


def assemble(
    inputs: ReportInputs,
    tally: Tally,
    first_seen: Mapping[str, Mapping[str, int]],
    cmd: Commands,
    integrity: Section,
    ok: bool,
    source: str,
    *,
    hours_note: str,
) -> Report:
    """The report from a filled tally: the store's and the lake's reports share every section
    but the integrity one."""
    sections = (
        integrity,
        _access(inputs, tally, first_seen, cmd),
        _cost(inputs, tally, first_seen, cmd, hours_note=hours_note),
        _keys(tally, cmd),
        _defences(inputs),
    )
    return Report(
        generated=format_ns(inputs.now_ns),
        since=format_ns(inputs.since_ns),
        until=format_ns(inputs.until_ns),
        store=source,
        integrity_ok=ok,
        sections=sections,
    )


def _first_seen(store: AuditStore) -> dict[str, dict[str, int]]:
    """Per user and per model, the time of its first retained record ("log" -> the oldest)."""
    found: dict[str, dict[str, int]] = {"user": {}, "model": {}, "log": {}}
    with store.snapshot() as conn:
        if not store.initialised(conn):
            return found
        oldest = conn.execute("SELECT min(time_ns) FROM events").fetchone()[0]
        found["log"] = {"start": int(oldest)} if oldest is not None else {}
        for column in ("user", "model"):
            rows = conn.execute(
                f"SELECT {column}, min(time_ns) FROM events WHERE {column} != '' GROUP BY 1"  # noqa: S608 - fixed column names
            ).fetchall()
            found[column] = {str(key): int(first) for key, first in rows}
    return found


# --------------------------------------------------------------------------- sections


def _integrity(
    store: AuditStore, inputs: ReportInputs, tally: Tally, cmd: Commands
) -> tuple[Section, bool]:
    report = verify_store(
        store,
        anchor=inputs.anchor,
        public_key=inputs.public_key,
        local_public_key=inputs.local_public_key,
    )
    verify_cmd = cmd.verify(*(["--anchor", "ANCHOR_FILE"] if inputs.anchor else []))
    if inputs.anchor is None:
        anchor = "not compared (no --anchor given)"
    elif report.ok:
        anchor = f"matches anchor checkpoint #{inputs.anchor.number}"
    else:
        anchor = f"checked against anchor checkpoint #{inputs.anchor.number}: see problems"
    facts: tuple[tuple[str, Cell], ...] = (
        ("verdict", "OK" if report.ok else "DAMAGED"),
        ("records", report.records),
        ("record range", f"{report.first_seq}..{report.last_seq}"),
        ("pruned through record", report.pruned_through),
        ("signed checkpoints", report.checkpoints),
        ("signing key", public_key_fingerprint(report.public_key) if report.public_key else "none"),
        ("anchor", anchor),
        ("records after the last checkpoint", report.unanchored),
    )
    checkpoints = _covering(store.checkpoints(), tally.first_seq, tally.last_seq)
    figures = [
        Figure(
            "integrity-problems",
            "Verification problems",
            verify_cmd,
            ("where", "kind", "message"),
            tuple(
                (
                    f"record {p.seq}"
                    if p.seq is not None
                    else (f"checkpoint #{p.checkpoint}" if p.checkpoint is not None else "store"),
                    str(p.kind),
                    p.message,
                )
                for p in report.problems
            ),
            note="none: every record and checkpoint verified" if report.ok else "",
        ),
        Figure(
            "integrity-checkpoints",
            "Checkpoints over the records of the period",
            cmd.verify("--format", "json"),
            ("checkpoint", "record", "time", "signing key", "signature"),
            tuple(
                (
                    cp.number,
                    cp.seq,
                    format_ns(cp.time_ns),
                    public_key_fingerprint(cp.public_key),
                    "valid" if cp.signature_valid() else "INVALID",
                )
                for cp in checkpoints[-50:]
            ),
            note=f"{len(checkpoints)} over the period, the last 50 shown"
            if len(checkpoints) > 50
            else "",
        ),
        prunes_figure(tally, cmd),
    ]
    return Section("integrity", "Integrity proof", facts, tuple(figures)), report.ok


def prunes_figure(tally: Tally, cmd: Commands) -> Figure:
    """The prunes recorded in the period (both reports show them under integrity)."""
    return Figure(
        "integrity-prunes",
        "Prunes in the period",
        cmd.query("--type", "prune", "--format", "json"),
        ("time", "pruned through record", "records removed", "anchor checkpoint"),
        tuple(
            (
                format_ns(p.event.time_ns),
                _int(p.event.extra.get("pruned_through_seq")),
                _int(p.event.extra.get("pruned_records")),
                _int(p.event.extra.get("anchor_checkpoint")),
            )
            for p in tally.prunes
        ),
        note="" if tally.prunes else "no prune in the period",
    )


def _covering(checkpoints: list[Checkpoint], first: int, last: int) -> list[Checkpoint]:
    """The checkpoints over the period's records, up to the first one that covers the last."""
    if not first:
        return []
    chosen = []
    for cp in checkpoints:
        if cp.seq >= first:
            chosen.append(cp)
            if cp.seq >= last:
                break
    return chosen


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _ranked(counts: Mapping[str, float], limit: int = TOP) -> tuple[tuple[Cell, ...], ...]:
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return tuple((key, value) for key, value in items)


def _access(
    inputs: ReportInputs, tally: Tally, first_seen: Mapping[str, Mapping[str, int]], cmd: Commands
) -> Section:
    calls = {
        dim: {k: g.calls for k, g in groups.items() if g.calls} for dim, groups in tally.by.items()
    }
    total = sum(calls["day"].values())
    new_users = sorted(
        (t, u) for u, t in first_seen["user"].items() if inputs.since_ns <= t < inputs.until_ns
    )
    figures = [
        Figure(
            "access-by-day",
            "Calls per day (UTC)",
            cmd.summary("day"),
            ("day", "calls"),
            tuple(sorted(calls["day"].items())),
            chart="line",
        ),
        Figure(
            "access-by-user",
            "Calls by user",
            cmd.summary("user"),
            ("user", "calls"),
            _ranked(calls["user"]),
            chart="bar",
        ),
        Figure(
            "access-by-role",
            "Calls by role",
            cmd.summary("role"),
            ("role", "calls"),
            _ranked(calls["role"]),
            chart="bar",
        ),
        Figure(
            "access-by-model",
            "Calls by model",
            cmd.summary("model"),
            ("model", "calls"),
            _ranked(calls["model"]),
            chart="bar",
        ),
        Figure(
            "access-denials",
            "Denials by reason",
            cmd.query("--decision", "deny", "--format", "json"),
            ("reason", "denials"),
            _ranked(tally.denials),
            chart="bar",
            note="" if tally.denials else "no denial in the period",
        ),
        Figure(
            "access-dlp",
            "DLP hits by kind",
            cmd.query("--type", "dlp_hit", "--format", "json"),
            ("kind", "hits"),
            _ranked(tally.dlp),
            chart="bar",
            note="" if tally.dlp else "no DLP hit in the period",
        ),
        Figure(
            "access-identity",
            "Identity sources and upstream credentials (calls, denials, DLP hits)",
            cmd.query("--type", "call", "--type", "denial", "--type", "dlp_hit", "--format", "csv"),
            ("identity source", "events"),
            _ranked(tally.sources),
            chart="bar",
        ),
        Figure(
            "access-new-users",
            "Users first seen in the period",
            cmd.query("--user", "USER", "--limit", "1"),
            ("user", "first seen"),
            tuple((u, format_ns(t)) for t, u in new_users[:50]),
            note=_history_note(inputs, first_seen),
        ),
    ]
    facts: tuple[tuple[str, Cell], ...] = (
        ("events in the period", tally.events),
        ("calls", total),
        ("users", len(calls["user"])),
        ("denials", sum(tally.denials.values())),
        ("DLP hits", sum(tally.dlp.values())),
        ("new users", len(new_users)),
    )
    return Section("access", "Access", facts, tuple(figures))


def _history_note(inputs: ReportInputs, first_seen: Mapping[str, Mapping[str, int]]) -> str:
    start = first_seen["log"].get("start")
    if start is not None and start >= inputs.since_ns:
        return (
            f"the retained log starts at {format_ns(start)}, inside the period (older records "
            "were pruned): what it shows first may have been seen before"
        )
    return "first seen in the retained log"


def _cost(
    inputs: ReportInputs,
    tally: Tally,
    first_seen: Mapping[str, Mapping[str, int]],
    cmd: Commands,
    *,
    hours_note: str,
) -> Section:
    def rows(dim: str) -> tuple[tuple[Cell, ...], ...]:
        groups = tally.by[dim]
        order = (
            sorted(groups) if dim == "day" else sorted(groups, key=lambda k: (-groups[k].cost, k))
        )
        chosen = order if dim == "day" else order[:TOP]
        return tuple(
            (k, groups[k].input_tokens, groups[k].output_tokens, round(groups[k].cost, 2))
            for k in chosen
        )

    columns = ("{}", "input tokens", "output tokens", "est. cost USD")
    bursts = _bursts(tally.auth, inputs.alerts)
    new_models = sorted(
        (t, m) for m, t in first_seen["model"].items() if inputs.since_ns <= t < inputs.until_ns
    )
    total = sum(g.cost for g in tally.by["day"].values())
    unpriced = sum(g.unpriced for g in tally.by["day"].values())
    price_rows = _price_rows(inputs.prices or DEFAULT_PRICES)
    figures = [
        Figure(
            "cost-by-day",
            "Estimated spend per day (USD)",
            cmd.summary("day"),
            tuple(c.format("day") for c in columns),
            rows("day"),
            chart="line",
            chart_column=3,
        ),
        Figure(
            "cost-by-user",
            "Top spenders (estimated USD)",
            cmd.summary("user"),
            tuple(c.format("user") for c in columns),
            rows("user"),
            chart="bar",
            chart_column=3,
        ),
        Figure(
            "cost-by-model",
            "Estimated spend by model (USD)",
            cmd.summary("model"),
            tuple(c.format("model") for c in columns),
            rows("model"),
            chart="bar",
            chart_column=3,
        ),
        Figure(
            "cost-prices",
            "Price table (USD per million tokens, estimates)",
            shlex.join(["claudesec", "config", "show"]),
            ("model glob", "input", "output"),
            price_rows,
            note=(
                "from audit.prices"
                if inputs.prices
                else "built-in list prices (set audit.prices to override); not a bill: cache, "
                "batch and negotiated prices are not modelled"
            ),
        ),
        Figure(
            "cost-large-prompts",
            f"Prompts over {inputs.alerts.prompt_tokens_over:,} tokens",
            cmd.query(
                "--min-tokens", str(inputs.alerts.prompt_tokens_over + 1), "--format", "json"
            ),
            ("time", "user", "model", "input tokens"),
            tuple(
                (format_ns(s.event.time_ns), s.event.user, s.event.model, s.event.input_tokens)
                for s in sorted(tally.large, key=lambda s: -s.event.input_tokens)[:25]
            ),
            note=f"{len(tally.large)} in the period (threshold: alerts.prompt_tokens_over; "
            "the query counts input + output tokens)",
        ),
        Figure(
            "cost-auth-bursts",
            "Bursts of 401s (a leaked or revoked key being tried)",
            cmd.query("--format", "jsonl") + " | grep '\"http_status\":401'",
            ("first", "last", "401s", "users"),
            bursts,
            note=f"at least {inputs.alerts.auth_failures} 401s each within "
            f"{inputs.alerts.auth_window} of the previous (alerts.auth_failures/auth_window)",
        ),
        Figure(
            "cost-off-hours",
            "Off-hours calls by user",
            cmd.query("--format", "csv"),
            ("user", "calls outside hours"),
            _ranked(tally.off_hours),
            chart="bar",
            note=hours_note or f"outside alerts.allowed_hours = {inputs.alerts.allowed_hours} UTC",
        ),
        Figure(
            "cost-new-models",
            "Models first used in the period",
            cmd.query("--model", "MODEL", "--limit", "1"),
            ("model", "first used"),
            tuple((m, format_ns(t)) for t, m in new_models),
            note=_history_note(inputs, first_seen),
        ),
    ]
    facts: tuple[tuple[str, Cell], ...] = (
        ("estimated spend USD", round(total, 2)),
        ("input tokens", sum(g.input_tokens for g in tally.by["day"].values())),
        ("output tokens", sum(g.output_tokens for g in tally.by["day"].values())),
        ("tokens without a price", unpriced),
        ("large prompts", len(tally.large)),
        ("401 bursts", len(bursts)),
        ("off-hours calls", sum(tally.off_hours.values())),
        ("new models", len(new_models)),
    )
    return Section(
        "cost",
        "Cost and anomalies",
        facts,
        tuple(figures),
        note="Spend is an estimate from a price table, not a bill.",
    )


def _price_rows(prices: Mapping[str, float]) -> tuple[tuple[Cell, ...], ...]:
    sides: dict[str, dict[str, float]] = defaultdict(dict)
    for key, value in prices.items():
        glob, _, side = key.rpartition(":")
        sides[glob][side] = float(value)
    return tuple(
        (glob, sides[glob].get("input", 0.0), sides[glob].get("output", 0.0))
        for glob in sorted(sides)
    )


def _bursts(auth: Iterable[tuple[int, str]], alerts: AlertsConfig) -> tuple[tuple[Cell, ...], ...]:
    if alerts.auth_failures <= 0:
        return ()
    window = parse_duration_ns(alerts.auth_window)
    runs: list[list[tuple[int, str]]] = []
    for item in sorted(auth):
        if runs and item[0] - runs[-1][-1][0] <= window:
            runs[-1].append(item)
        else:
            runs.append([item])
    return tuple(
        (
            format_ns(run[0][0]),
            format_ns(run[-1][0]),
            len(run),
            ", ".join(sorted({u or "(unknown)" for _, u in run})),
        )
        for run in runs
        if len(run) >= alerts.auth_failures
    )


def _keys(tally: Tally, cmd: Commands) -> Section:
    steps = Counter(s.event.reason or "(unnamed step)" for s in tally.keys)
    revocations = sum(n for step, n in steps.items() if step in ("revoke", "retire"))
    rotations = steps.get("finish_secret", 0)
    figures = (
        Figure(
            "keys-steps",
            "Key operations by step",
            cmd.query("--type", "key_rotation", "--format", "json"),
            ("step", "events"),
            _ranked(steps),
            chart="bar",
            note="" if steps else "no key operation recorded in the period",
        ),
        Figure(
            "keys-events",
            "Key operations",
            cmd.query("--type", "key_rotation", "--format", "json"),
            ("time", "step", "secret", "key id", "outcome"),
            tuple(
                (
                    format_ns(s.event.time_ns),
                    s.event.reason,
                    _text(s.event.extra.get("secret")),
                    _text(s.event.extra.get("key_id")),
                    _text(s.event.extra.get("outcome")),
                )
                for s in tally.keys[-100:]
            ),
        ),
    )
    facts: tuple[tuple[str, Cell], ...] = (
        ("key operations", len(tally.keys)),
        ("rotations finished", rotations),
        ("revocations and retirements", revocations),
    )
    return Section(
        "keys",
        "Keys",
        facts,
        figures,
        note="From the audit events of `keys rotate` and `keys revoke`; the live "
        "inventory (age, expiry, overdue keys) is `claudesec keys status`.",
    )


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _sarif_counts(log: Mapping[str, Any]) -> Counter[str]:
    """Results of a SARIF log by ``rule (level)``; suppressed results are not counted."""
    found: Counter[str] = Counter()
    for run in log.get("runs", []):
        for result in (run.get("results") or []) if isinstance(run, Mapping) else []:
            if isinstance(result, Mapping) and not result.get("suppressions"):
                level = _text(result.get("level") or "warning")
                found[f"{_text(result.get('ruleId'))} ({level})"] += 1
    return found


def identity_label(identity_source: str, upstream_kind: str) -> str:
    """Who the caller was (``oidc``, ``trusted``...) and, when recorded, the credential the
    call went upstream on (``api_key`` or ``federation``)."""
    source = identity_source or "(none)"
    return f"{source}, upstream {upstream_kind}" if upstream_kind else source


def _defences(inputs: ReportInputs) -> Section:
    figures: list[Figure] = []
    facts: list[tuple[str, Cell]] = []
    if inputs.drills is not None:
        drills = [d for d in inputs.drills.get("drills", []) if isinstance(d, Mapping)]
        statuses = Counter(_text(d.get("status")) for d in drills)
        facts += [("drills run", len(drills))] + [
            (f"drills {k}", v) for k, v in sorted(statuses.items())
        ]
        figures.append(
            Figure(
                "defences-drills",
                f"Drill run ({inputs.drills_source})",
                "claudesec drill run --json drills.json",
                ("drill", "status", "time to block ms"),
                tuple(
                    (
                        _text(d.get("name")),
                        _text(d.get("status")),
                        _text(d.get("time_to_block_ms")) or "-",
                    )
                    for d in drills
                ),
            )
        )
    for log, source, key, title, command in (
        (
            inputs.sarif,
            inputs.sarif_source,
            "scan",
            "Secret scan findings",
            "claudesec scan --format sarif -o scan.sarif",
        ),
        (
            inputs.org_check,
            inputs.org_check_source,
            "org-check",
            "Organisation posture findings",
            "claudesec org check --format sarif > org.sarif",
        ),
        (
            inputs.federation_lint,
            inputs.federation_lint_source,
            "federation-lint",
            "Federation rule findings",
            "claudesec federation lint --format sarif > federation.sarif",
        ),
    ):
        if log is None:
            continue
        found = _sarif_counts(log)
        facts.append((f"{key.replace('-', ' ')} findings", sum(found.values())))
        figures.append(
            Figure(
                f"defences-{key}",
                f"{title} ({source})",
                command,
                ("rule (level)", "findings"),
                _ranked(found, 50),
                chart="bar",
                note="" if found else "no finding: the check was clean",
            )
        )
    note = (
        ""
        if figures
        else (
            "No defence results given: pass --drills (drill JSON report), --scan, --org-check "
            "or --federation-lint (SARIF logs)."
        )
    )
    return Section("defences", "Defences", tuple(facts), tuple(figures), note=note)
