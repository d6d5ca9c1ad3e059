"""The report over a Security Lake (many hosts' exports), queried with DuckDB.

The lake sink writes OCSF Parquet (:mod:`claudesec.audit.export.parquet`); this module builds the
same :class:`~claudesec.audit.report.model.Report` from it. One view, ``claudesec_lake``, turns
the OCSF columns into the flat ones the report needs; it is the only SQL that differs between
DuckDB and Athena (map access: ``m['k']`` against ``element_at(m, 'k')``; integer division:
``//`` against ``/``), and both spellings are here (:data:`VIEW_DUCKDB`, :data:`VIEW_ATHENA`).
Every report query reads only the view, with SQL both engines run unchanged, and each figure
carries its query as the command that reproduces it (docs/report.md shows them for Athena).

The aggregation runs in the engine (a few thousand grouped rows come back, whatever the event
count); cost, bursts and off-hours reuse the store report's rules in
:mod:`claudesec.audit.report.build` on those rows. Integrity here is completeness: per
host's store, every record of the period in the lake once, with no gap in its sequence. The
hash chain itself is verified on each host (``claudesec logs verify``), not from the lake.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from claudesec.audit.events import AuditEvent
from claudesec.audit.report.build import (
    Commands,
    ReportInputs,
    Tally,
    assemble,
    new_tally,
    prunes_figure,
)
from claudesec.audit.report.model import Cell, Figure, Report, Section
from claudesec.audit.store import StoredEvent
from claudesec.timeparse import format_ns

VIEW = "claudesec_lake"
_NS_PER_MS = 1_000_000

# (view column, unmapped key) for the values OCSF has no attribute for.
_UNMAPPED = (
    ("role", "claudesec.role"),
    ("decision", "claudesec.decision"),
    ("identity_source", "claudesec.identity_source"),
    ("upstream_kind", "claudesec.upstream.kind"),
    ("dlp_kinds", "claudesec.dlp_kinds"),
    ("store_id", "claudesec.store_id"),
    ("extra_secret", "claudesec.extra.secret"),
    ("extra_key_id", "claudesec.extra.key_id"),
    ("extra_outcome", "claudesec.extra.outcome"),
    ("extra_pruned_through_seq", "claudesec.extra.pruned_through_seq"),
    ("extra_pruned_records", "claudesec.extra.pruned_records"),
    ("extra_anchor_checkpoint", "claudesec.extra.anchor_checkpoint"),
)


def _view(source: str, get: str, hour: str) -> str:
    unmapped = ",\n".join(
        f"  coalesce({get.format(key=key)}, '') AS {column}" for column, key in _UNMAPPED
    )
    http = (
        f"  coalesce({get.format(key='claudesec.extra.http_status')}, "
        f"{get.format(key='claudesec.extra.status')}, '') AS http_status"
    )
    return (
        f"CREATE OR REPLACE VIEW {VIEW} AS SELECT\n"
        "  time,\n"
        f"  {hour} AS hour,\n"
        "  eventDay AS event_day,\n"
        "  metadata.uid AS uid,\n"
        "  metadata.sequence AS seq,\n"
        "  metadata.event_code AS event_type,\n"
        "  coalesce(actor.user.name, '') AS user_name,\n"
        "  coalesce(ai_model.name, '') AS model,\n"
        "  coalesce(message_context.prompt_tokens, 0) AS input_tokens,\n"
        "  coalesce(message_context.completion_tokens, 0) AS output_tokens,\n"
        "  coalesce(status_detail, '') AS reason,\n"
        f"{unmapped},\n{http}\n"
        f"FROM {source}"
    )


#: The view in DuckDB over a directory of downloaded objects ({source}: read_parquet(...)).
VIEW_DUCKDB = _view("{source}", "unmapped['{key}']", "CAST((time // 3600000) % 24 AS INTEGER)")
#: The same view in Athena over the table Security Lake made for the custom source.
VIEW_ATHENA = _view(
    '"amazon_security_lake_glue_db_REGION"."amazon_security_lake_table_REGION_ext_SOURCE"',
    "element_at(unmapped, '{key}')",
    "CAST((time / 3600000) % 24 AS INTEGER)",
)

_PERIOD = (
    "event_day BETWEEN '{first_day}' AND '{last_day}' AND time >= {since_ms} AND time < {until_ms}"
)
_CALLISH = "event_type IN ('call', 'denial', 'dlp_hit')"

# Every query the report runs, in the SQL DuckDB and Athena share.
QUERIES: dict[str, str] = {
    "groups": (
        "SELECT event_type, user_name, role, model, event_day, identity_source, upstream_kind,\n"
        "  count(*) AS events, sum(input_tokens) AS input_tokens,"
        " sum(output_tokens) AS output_tokens\n"
        f"FROM {VIEW} WHERE {_PERIOD}\nGROUP BY 1, 2, 3, 4, 5, 6, 7"
    ),
    "hours": (
        "SELECT user_name, hour, count(*) AS events\n"
        f"FROM {VIEW} WHERE {_PERIOD} AND {_CALLISH}\nGROUP BY 1, 2"
    ),
    "denials": (
        "SELECT reason, count(*) AS denials\n"
        f"FROM {VIEW} WHERE {_PERIOD} AND (decision = 'deny' OR event_type = 'denial')\n"
        "GROUP BY 1 ORDER BY 2 DESC"
    ),
    "dlp": (
        "SELECT dlp_kinds, count(*) AS hits\n"
        f"FROM {VIEW} WHERE {_PERIOD} AND (dlp_kinds <> '' OR event_type = 'dlp_hit')\n"
        "GROUP BY 1 ORDER BY 2 DESC"
    ),
    "large": (
        "SELECT time, user_name, model, input_tokens\n"
        f"FROM {VIEW} WHERE {_PERIOD} AND {_CALLISH} AND input_tokens > {{over}}\n"
        "ORDER BY input_tokens DESC"
    ),
    "auth": (
        f"SELECT time, user_name FROM {VIEW}\n"  # noqa: S608 - fixed names; numbers fill it
        f"WHERE {_PERIOD} AND http_status = '401' ORDER BY time"
    ),
    "operations": (
        "SELECT time, seq, event_type, reason, extra_secret, extra_key_id, extra_outcome,\n"
        "  extra_pruned_through_seq, extra_pruned_records, extra_anchor_checkpoint\n"
        f"FROM {VIEW} WHERE {_PERIOD} AND event_type IN ('key_rotation', 'prune')\n"
        "ORDER BY time, seq"
    ),
    "first_seen": (
        f"SELECT 'user' AS dim, user_name AS name, min(time) AS first FROM {VIEW}\n"  # noqa: S608
        "WHERE event_day <= '{last_day}' AND user_name <> '' GROUP BY 2\n"
        f"UNION ALL SELECT 'model', model, min(time) FROM {VIEW}\n"
        "WHERE event_day <= '{last_day}' AND model <> '' GROUP BY 2\n"
        f"UNION ALL SELECT 'log', '', min(time) FROM {VIEW} WHERE event_day <= '{{last_day}}'"
    ),
    "completeness": (
        "SELECT store_id, count(*) AS records, count(DISTINCT seq) AS distinct_records,\n"
        "  min(seq) AS first_seq, max(seq) AS last_seq\n"
        f"FROM {VIEW} WHERE {_PERIOD}\nGROUP BY 1 ORDER BY 1"
    ),
}

# Which query reproduces each figure of the report.
_FIGURE_QUERY = {
    "integrity-problems": "completeness",
    "integrity-checkpoints": "completeness",
    "integrity-prunes": "operations",
    "access-denials": "denials",
    "access-dlp": "dlp",
    "access-new-users": "first_seen",
    "cost-large-prompts": "large",
    "cost-auth-bursts": "auth",
    "cost-new-models": "first_seen",
    "cost-off-hours": "hours",
    "keys-steps": "operations",
    "keys-events": "operations",
}


def _day(ns: int) -> str:
    return format_ns(ns)[:10].replace("-", "")


def period_values(inputs: ReportInputs) -> dict[str, Any]:
    """The values the queries' placeholders take for ``inputs``' period."""
    return {
        "since_ms": inputs.since_ns // _NS_PER_MS,
        "until_ms": -(-inputs.until_ns // _NS_PER_MS),
        "first_day": _day(inputs.since_ns),
        "last_day": _day(max(inputs.since_ns, inputs.until_ns - 1)),
        "over": inputs.alerts.prompt_tokens_over,
    }


def query_text(name: str, inputs: ReportInputs) -> str:
    """Query ``name`` with the period filled in, as the report shows it."""
    return QUERIES[name].format(**period_values(inputs))


def connect(directory: Path) -> Any:
    """An in-memory DuckDB with the view over every Parquet file under ``directory``."""
    import duckdb

    conn = duckdb.connect(":memory:")
    conn.execute("SET enable_progress_bar = false")  # the CLI's stderr is for its own lines
    glob = str(directory / "**" / "*.parquet").replace("'", "''")
    source = (
        f"read_parquet('{glob}', hive_partitioning = true, hive_types_autocast = false, "
        "union_by_name = true)"
    )
    conn.execute(VIEW_DUCKDB.format(source=source))
    return conn


def build_lake_report(conn: Any, inputs: ReportInputs, source: str) -> Report:
    """The report for ``inputs``' period from the lake behind ``conn`` (see :func:`connect`)."""
    from claudesec.errors import UsageError

    if inputs.until_ns <= inputs.since_ns:
        raise UsageError("--until must be after --since")

    def rows(name: str) -> list[tuple[Any, ...]]:
        return list(conn.execute(query_text(name, inputs)).fetchall())

    tally, hours_note = new_tally(inputs)
    for kind, user, role, model, day, ident, upstream, events, tin, tout in rows("groups"):
        tally.add_group(
            event_type=kind,
            user=user,
            role=role,
            model=model,
            day=f"{day[:4]}-{day[4:6]}-{day[6:]}",
            identity_source=ident,
            upstream_kind=upstream,
            hour=None,
            events=int(events),
            input_tokens=int(tin or 0),
            output_tokens=int(tout or 0),
        )
    for user, hour, count in rows("hours"):
        tally.add_hours(user, int(hour), int(count))
    for reason, count in rows("denials"):
        tally.denials[reason or "(no reason)"] += int(count)
    for kinds, count in rows("dlp"):
        for kind in kinds.split(",") if kinds else ["(unknown kind)"]:
            tally.dlp[kind] += int(count)
    tally.large = [
        _stored(0, time_ms, user=user, model=model, input_tokens=int(tokens))
        for time_ms, user, model, tokens in rows("large")
    ]
    tally.auth = [(int(time_ms) * _NS_PER_MS, user) for time_ms, user in rows("auth")]
    _operations(tally, rows("operations"))
    first_seen = _first_seen(rows("first_seen"))
    cmd = Commands(inputs)
    integrity, ok = _completeness(rows("completeness"), inputs)
    integrity = dataclasses.replace(
        integrity, figures=(*integrity.figures, prunes_figure(tally, cmd))
    )
    report = assemble(inputs, tally, first_seen, cmd, integrity, ok, source, hours_note=hours_note)
    return _with_sql(report, inputs)


def _stored(seq: int, time_ms: int, **fields: Any) -> StoredEvent:
    fields.setdefault("type", "call")
    return StoredEvent(seq, "", AuditEvent(time_ns=int(time_ms) * _NS_PER_MS, **fields))


def _int_text(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def _operations(tally: Tally, found: list[tuple[Any, ...]]) -> None:
    for time_ms, seq, kind, reason, secret, key_id, outcome, through, removed, anchor in found:
        extra: dict[str, Any] = {
            name: _int_text(value)
            for name, value in (
                ("secret", secret),
                ("key_id", key_id),
                ("outcome", outcome),
                ("pruned_through_seq", through),
                ("pruned_records", removed),
                ("anchor_checkpoint", anchor),
            )
            if value
        }
        stored = _stored(int(seq), time_ms, type=kind, reason=reason, extra=extra)
        (tally.keys if kind == "key_rotation" else tally.prunes).append(stored)


def _first_seen(found: list[tuple[Any, ...]]) -> dict[str, dict[str, int]]:
    seen: dict[str, dict[str, int]] = {"user": {}, "model": {}, "log": {}}
    for dim, name, first in found:
        if first is None:
            continue
        seen[dim]["start" if dim == "log" else name] = int(first) * _NS_PER_MS
    return seen


def _completeness(found: list[tuple[Any, ...]], inputs: ReportInputs) -> tuple[Section, bool]:
    table: list[tuple[Cell, ...]] = []
    duplicates = gaps = records = 0
    for store_id, count, distinct, first, last in found:
        dup = int(count) - int(distinct)
        gap = int(last) - int(first) + 1 - int(distinct)
        duplicates += dup
        gaps += gap
        records += int(count)
        table.append((store_id or "(unknown)", int(count), f"{first}..{last}", dup, gap))
    ok = duplicates == 0 and gaps == 0
    facts: tuple[tuple[str, Cell], ...] = (
        ("verdict", "COMPLETE" if ok else "INCOMPLETE"),
        ("hosts' stores", len(found)),
        ("records", records),
        ("duplicated records", duplicates),
        ("missing records (gaps in a store's sequence)", gaps),
        ("hash chains", "verified on each host: claudesec logs verify"),
    )
    figure = Figure(
        "integrity-stores",
        "Records per host's store",
        query_text("completeness", inputs),
        ("store", "records", "record range", "duplicates", "missing"),
        tuple(table),
        note="every record of the period once, no gap"
        if ok
        else "a gap is a record not (yet) exported or pruned before export; "
        "a duplicate is a record in two objects",
    )
    return (
        Section(
            "integrity",
            "Integrity: completeness of the lake",
            facts,
            (figure,),
            note="The lake holds OCSF copies; each host proves its own chain.",
        ),
        ok,
    )


def _with_sql(report: Report, inputs: ReportInputs) -> Report:
    """Each figure's reproduce command becomes the SQL that computes it from the view."""

    def query_for(figure: Figure) -> str:
        name = _FIGURE_QUERY.get(figure.id, "groups")
        return query_text(name, inputs)

    sections = tuple(
        dataclasses.replace(
            section,
            figures=tuple(
                dataclasses.replace(f, query=query_for(f))
                if not f.id.startswith(("defences-", "cost-prices"))
                else f
                for f in section.figures
            ),
        )
        for section in report.sections
    )
    return dataclasses.replace(report, sections=sections)
