"""`claudesec logs`: tail, query, summarise, verify, checkpoint and prune the audit log.

Thin glue: each command parses options, calls one function of ``claudesec.audit`` and renders
the result (rich tables on a terminal, JSON Lines / JSON when piped).
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from claudesec.cli._common import StoreOption, load, open_existing_reader, open_writer
from claudesec.errors import ClaudesecError, ExitCode, UsageError

if TYPE_CHECKING:
    from claudesec.audit.query import IncompleteCalls, Summary
    from claudesec.audit.store import AuditStore, StoredEvent
    from claudesec.audit.verify import VerifyReport
    from claudesec.config import AuditConfig
    from claudesec.console import Console

app = typer.Typer(
    help="Tail, query, summarise, verify and prune the audit log.", no_args_is_help=True
)

EVENT_FORMATS = ("table", "json", "jsonl", "csv")

FormatOption = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="table, json, jsonl or csv (default: table on a terminal, jsonl when piped).",
        metavar="FORMAT",
    ),
]


# --------------------------------------------------------------------------- commands


@app.command("tail")
def tail_command(
    ctx: typer.Context,
    lines: Annotated[
        int, typer.Option("-n", "--lines", help="How many events to show.", metavar="N")
    ] = 10,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events until Ctrl-C.")
    ] = False,
    fmt: FormatOption = None,
    store: StoreOption = None,
) -> int:
    """Show the latest events (-f/--follow: keep watching)."""
    from claudesec.audit.query import follow as follow_events
    from claudesec.audit.query import tail
    from claudesec.console import get_console

    console = get_console()
    fmt = _event_format(console, fmt)
    audit = _audit_config(ctx)
    opened = open_existing_reader(audit, store)
    if lines < 0:
        raise UsageError("-n must be 0 or more")
    try:
        events = tail(opened, lines) if opened is not None else []
        if follow:
            return _follow(
                console,
                fmt=fmt,
                audit=audit,
                store=store,
                opened=opened,
                initial=events,
                follow_events=follow_events,
            )
        _render_events(console, fmt, events)
    finally:
        if opened is not None:
            opened.close()
    return int(ExitCode.OK)


@app.command("show")
def show_command(
    ctx: typer.Context,
    seq: Annotated[int, typer.Argument(help="The record's sequence number.", metavar="SEQ")],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", help="table or json (default: table on a terminal).", metavar="FORMAT"
        ),
    ] = None,
    store: StoreOption = None,
) -> int:
    """Show one record in full."""
    from claudesec.audit.query import event_record
    from claudesec.console import get_console
    from claudesec.errors import CheckFailed

    console = get_console()
    opened = open_existing_reader(_audit_config(ctx), store)
    found = None
    if opened is not None:
        with opened:
            found = opened.get(seq)
    if found is None:
        raise CheckFailed(f"no audit record {seq}", hint="`claudesec logs tail` lists the latest")
    record = event_record(found)
    if (fmt or ("table" if console.rich_output else "json")) == "json":
        console.json(record)
    else:
        console.table(
            ("field", "value"),
            [(k, _cell(v)) for k, v in record.items()],
            title=f"audit record {seq}",
        )
    return int(ExitCode.OK)


@app.command("query")
def query_command(
    ctx: typer.Context,
    user: Annotated[
        list[str] | None,
        typer.Option("--user", help="User id (repeatable, globs).", metavar="USER"),
    ] = None,
    role: Annotated[
        list[str] | None, typer.Option("--role", help="Role (repeatable, globs).", metavar="ROLE")
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model", help="Model (repeatable, globs: 'claude-haiku-*').", metavar="MODEL"
        ),
    ] = None,
    event_type: Annotated[
        list[str] | None,
        typer.Option(
            "--type",
            help="Event type: call, admission, denial, dlp_hit, key_rotation, drill, prune, "
            "config_change.",
            metavar="TYPE",
        ),
    ] = None,
    decision: Annotated[
        list[str] | None,
        typer.Option(
            "--decision", help="allow, deny, redact or error (repeatable).", metavar="DECISION"
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", help="From this time: 2h, 7d, 2026-01-31, ISO 8601.", metavar="WHEN"
        ),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Before this time (same forms).", metavar="WHEN")
    ] = None,
    min_tokens: Annotated[
        int | None,
        typer.Option(
            "--min-tokens",
            help="Only events with at least this many tokens (in + out).",
            metavar="N",
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", help="At most this many events (the newest).", metavar="N"),
    ] = None,
    incomplete: Annotated[
        bool,
        typer.Option(
            "--incomplete",
            help="Only calls admitted with no outcome recorded (in flight, or cut off by a crash).",
        ),
    ] = False,
    upstream: Annotated[
        list[str] | None,
        typer.Option(
            "--upstream",
            help="The credential the call went out with, FIELD=VALUE (repeatable, globs): "
            "kind=federation, rule_id=fdrl_*, subject=repo:acme/*, key_hint=...",
            metavar="FIELD=VALUE",
        ),
    ] = None,
    fmt: FormatOption = None,
    store: StoreOption = None,
) -> int:
    """Search the audit log."""
    from claudesec.audit.query import EventFilter, iter_events
    from claudesec.console import get_console
    from claudesec.timeparse import parse_time_ns

    console = get_console()
    fmt = _event_format(console, fmt)
    if limit is not None and limit < 0:
        raise UsageError("--limit must be 0 or more")
    where = EventFilter(
        users=tuple(user or ()),
        roles=tuple(role or ()),
        models=tuple(model or ()),
        types=tuple(event_type or ()),
        decisions=tuple(decision or ()),
        since_ns=parse_time_ns(since) if since else None,
        until_ns=parse_time_ns(until) if until else None,
        min_tokens=min_tokens,
        incomplete=incomplete,
        upstream=tuple(_field_value(item, "--upstream") for item in upstream or ()),
    )
    opened = open_existing_reader(_audit_config(ctx), store)
    if opened is None:
        _render_events(console, fmt, [])
        return int(ExitCode.OK)
    with opened:
        _render_events(console, fmt, iter_events(opened, where, limit=limit))
        if incomplete:
            from claudesec.audit.intents import pending_admissions

            journaled = len(pending_admissions(opened))
            if journaled:
                console.info(_journaled_note(journaled))
    return int(ExitCode.OK)


def _journaled_note(count: int) -> str:
    return (
        f"note: {count} more call(s) admitted by an audited client that stopped before "
        "recording them are still in its intent journal (not tampering); they become "
        "admission records the next time the store is opened for writing (any audited call, "
        "or `claudesec logs checkpoint`)"
    )


def _field_value(item: str, option: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name.strip() or not value:
        raise UsageError(f"{option} takes FIELD=VALUE, got {item!r}")
    return name.strip(), value


@app.command("summary")
def summary_command(
    ctx: typer.Context,
    by: Annotated[
        str, typer.Option("--by", help="Group by user, model, day or role.", metavar="DIM")
    ] = "user",
    top: Annotated[
        int | None, typer.Option("--top", help="Only the N largest groups.", metavar="N")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="From this UTC day on: 7d, 2026-01-01, ...", metavar="WHEN"),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Before this UTC day.", metavar="WHEN")
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="table, json, jsonl or csv (default: table on a terminal, json when piped).",
            metavar="FORMAT",
        ),
    ] = None,
    store: StoreOption = None,
) -> int:
    """Calls, tokens, denials, DLP hits and estimated cost per user, model, day or role."""
    from claudesec.audit.query import SUMMARY_KEYS, summarise
    from claudesec.console import get_console
    from claudesec.timeparse import parse_time_ns

    console = get_console()
    if by not in SUMMARY_KEYS:
        raise UsageError(f"--by must be one of {', '.join(SUMMARY_KEYS)}, got {by!r}")
    if top is not None and top < 1:
        raise UsageError("--top must be 1 or more")
    fmt = fmt or ("table" if console.rich_output else "json")
    _check_format(fmt)
    audit = _audit_config(ctx)
    opened = open_existing_reader(audit, store)
    if opened is None:
        from claudesec.audit.query import Summary, SummaryRow

        empty = SummaryRow("TOTAL", 0, 0, 0, 0, 0, 0, 0.0, 0)
        result: Summary = Summary(by, (), empty, 0, "config" if audit.prices else "built-in", ())
    else:
        with opened:
            result = summarise(
                opened,
                by,
                since_ns=parse_time_ns(since) if since else None,
                until_ns=parse_time_ns(until) if until else None,
                top=top,
                prices=audit.prices,
            )
    _render_summary(console, fmt, result)
    return int(ExitCode.OK)


@app.command("verify")
def verify_command(
    ctx: typer.Context,
    anchor: Annotated[
        Path | None,
        typer.Option(
            "--anchor",
            help="An exported checkpoint kept off the host (`logs checkpoint --export`).",
            metavar="FILE",
        ),
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key",
            help="Trust only this signing key (PEM or hex from `logs public-key`).",
            metavar="FILE",
        ),
    ] = None,
    rollups: Annotated[
        bool,
        typer.Option("--rollups/--no-rollups", help="Also recount the summary rollups."),
    ] = True,
    fmt: Annotated[
        str | None, typer.Option("--format", help="text or json (default: text).", metavar="FORMAT")
    ] = None,
    store: StoreOption = None,
    archive: Annotated[
        Path | None,
        typer.Option(
            "--archive",
            help="Verify this archive file (`logs archive`) instead of the store.",
            metavar="FILE",
        ),
    ] = None,
) -> int:
    """Check the hash chain and signed checkpoints; exit 1 naming the first damaged record."""
    if archive is not None:
        from claudesec.cli.logs_export import archive_verify_command

        return archive_verify_command(
            ctx, archive, public_key=public_key, no_decrypt=False, fmt=fmt
        )
    from claudesec.audit.checkpoint import Checkpoint, load_public_key
    from claudesec.audit.verify import verify_missing_store, verify_store
    from claudesec.console import get_console

    console = get_console()
    fmt = fmt or "text"
    if fmt not in ("text", "json"):
        raise UsageError(f"--format must be text or json, got {fmt!r}")
    anchor_cp = Checkpoint.load_export(_read_text(anchor), source=str(anchor)) if anchor else None
    trusted = (
        load_public_key(_read_text(public_key), source=str(public_key)) if public_key else None
    )
    audit = _audit_config(ctx)
    local_key = None
    if store is None:
        from claudesec.audit.secrets import AuditKeys

        # Only this host's own store is expected to be signed with this host's key.
        local_key = AuditKeys.from_config(audit).existing_public_key()
    opened = open_existing_reader(audit, store)
    pending = None
    if opened is None:
        from claudesec.audit.store import default_store_path

        path = Path(store) if store else default_store_path(audit)
        report = verify_missing_store(str(path), anchor_cp)
    else:
        from claudesec.audit.query import incomplete_calls

        with opened, console.progress("verifying", total=_head_or_none(opened)) as update:
            report = verify_store(
                opened,
                anchor=anchor_cp,
                public_key=trusted,
                local_public_key=local_key,
                check_rollups=rollups,
                on_progress=update,
            )
            # Not damage: calls admitted (written ahead) whose outcome was never recorded.
            if report.ok:
                pending = incomplete_calls(opened)
    _render_verify(console, fmt, report, pending)
    return int(ExitCode.OK if report.ok else ExitCode.FOUND)


@app.command("checkpoint")
def checkpoint_command(
    ctx: typer.Context,
    export: Annotated[
        bool,
        typer.Option("--export", help="Write the checkpoint as JSON (to FILE, or stdout)."),
    ] = False,
    file: Annotated[
        Path | None,
        typer.Argument(help="Where --export writes (default: stdout).", metavar="[FILE]"),
    ] = None,
    store: StoreOption = None,
) -> int:
    """Sign the current end of the log now; --export it to keep an anchor off the host."""
    from claudesec.audit.secrets import public_key_fingerprint
    from claudesec.console import get_console

    console = get_console()
    with open_writer(_audit_config(ctx), store) as opened:
        checkpoint = opened.checkpoint()
    data = checkpoint.to_export()
    if file is not None:
        import json

        try:
            file.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {file}: {exc.strerror or exc}") from exc
        console.info(
            f"checkpoint #{checkpoint.number} (record {checkpoint.seq}) exported to {file}"
        )
    elif export:
        console.json(data)
    else:
        console.out(
            f"checkpoint #{checkpoint.number} at record {checkpoint.seq}, signed by "
            f"{public_key_fingerprint(checkpoint.public_key)}"
        )
    return int(ExitCode.OK)


@app.command("public-key")
def public_key_command(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", help="pem or hex.", metavar="FORMAT")] = "pem",
    store: StoreOption = None,
) -> int:
    """Print the checkpoint signing key's public half, for auditors (`verify --public-key`)."""
    from claudesec.audit.checkpoint import public_key_pem
    from claudesec.console import get_console

    if fmt not in ("pem", "hex"):
        raise UsageError(f"--format must be pem or hex, got {fmt!r}")
    with open_writer(_audit_config(ctx), store) as opened:
        key = opened.public_key()
    if key is None:  # pragma: no cover - a writable open records the key
        raise UsageError("this audit store has no signing key yet")
    console = get_console()
    console.out(public_key_pem(key).rstrip("\n") if fmt == "pem" else key.hex())
    return int(ExitCode.OK)


@app.command("prune")
def prune_command(
    ctx: typer.Context,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            help="Remove records older than this (e.g. 90d; default: audit.retention_days).",
            metavar="AGE",
        ),
    ] = None,
    store: StoreOption = None,
) -> int:
    """Remove old records up to a checkpoint, which stays as the new anchor; logs the prune."""
    import time

    from claudesec.console import get_console
    from claudesec.timeparse import format_ns, parse_duration_ns

    audit = _audit_config(ctx)
    if older_than is None:
        if audit.retention_days <= 0:
            raise UsageError("audit.retention_days is 0 (keep forever); pass --older-than")
        age_ns = audit.retention_days * 86_400 * 1_000_000_000
    else:
        age_ns = parse_duration_ns(older_than)
    cutoff = time.time_ns() - age_ns
    console = get_console()
    with open_writer(audit, store) as opened:
        result = opened.prune(older_than_ns=cutoff)
    if result.deleted:
        from claudesec.audit.prompt_vault import prune_prompt_vault

        # Encrypted prompts never outlive the records they belong to.
        prune_prompt_vault(load(ctx).config.prompt_vault, through_seq=result.through_seq)
    if result.deleted == 0:
        console.out(
            f"nothing to prune: no checkpoint covers only records before {format_ns(cutoff)}"
        )
    else:
        anchor = result.anchor
        assert anchor is not None and result.record is not None
        console.out(
            f"pruned {result.deleted} records through record {result.through_seq}; "
            f"checkpoint #{anchor.number} is the new anchor; the prune is record "
            f"{result.record.seq}"
        )
    return int(ExitCode.OK)


# --------------------------------------------------------------------------- helpers


def _audit_config(ctx: typer.Context) -> AuditConfig:
    return load(ctx).config.audit


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from exc


def _check_format(fmt: str) -> None:
    if fmt not in EVENT_FORMATS:
        raise UsageError(f"--format must be one of {', '.join(EVENT_FORMATS)}, got {fmt!r}")


def _event_format(console: Console, fmt: str | None) -> str:
    chosen = fmt or ("table" if console.rich_output else "jsonl")
    _check_format(chosen)
    return chosen


def _cell(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        import json

        return json.dumps(value, sort_keys=True)
    return str(value)


_TABLE_COLUMNS = (
    "seq",
    "time",
    "type",
    "user",
    "role",
    "model",
    "decision",
    "in",
    "out",
    "ms",
    "dlp",
    "reason",
)


def _table_row(stored: StoredEvent) -> list[Any]:
    from claudesec.timeparse import format_ns

    event = stored.event
    return [
        stored.seq,
        format_ns(event.time_ns),
        event.type,
        event.user,
        event.role,
        event.model,
        event.decision,
        event.input_tokens or "",
        event.output_tokens or "",
        f"{event.latency_ms:.0f}" if event.latency_ms else "",
        ",".join(event.dlp_kinds),
        event.reason,
    ]


def _render_events(console: Console, fmt: str, events: Iterable[StoredEvent]) -> None:
    from claudesec.audit.query import CSV_COLUMNS, csv_row, event_record

    if fmt == "table":
        console.table(_TABLE_COLUMNS, (_table_row(e) for e in events), title="audit log")
    elif fmt == "json":
        console.json([event_record(e) for e in events])
    elif fmt == "jsonl":
        console.jsonl(event_record(e) for e in events)
    else:
        writer = csv.writer(console.env.stdout, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for stored in events:
            writer.writerow(csv_row(stored))
    console.env.stdout.flush()


def _follow(
    console: Console,
    *,
    fmt: str,
    audit: AuditConfig,
    store: str | None,
    opened: AuditStore | None,
    initial: list[StoredEvent],
    follow_events: Any,
) -> int:
    import time

    last = initial[-1].seq if initial else 0
    # A terminal gets one line per event: a table per batch would redraw its header each time.
    line_mode = fmt == "table"
    if line_mode:
        for stored in initial:
            console.out("  ".join(str(c) for c in _table_row(stored) if c != ""))
    else:
        _render_events(console, fmt if fmt != "json" else "jsonl", initial)
    try:
        while opened is None:
            time.sleep(0.5)  # the store does not exist yet: wait for the first writer
            opened = open_existing_reader(audit, store)
        if not initial:
            last = 0
        for batch in follow_events(opened, last):
            if line_mode:
                for stored in batch:
                    console.out("  ".join(str(c) for c in _table_row(stored) if c != ""))
                console.env.stdout.flush()
            else:
                _render_events(console, fmt if fmt != "json" else "jsonl", batch)
    except KeyboardInterrupt:
        # Ctrl-C is how a follow ends: no traceback, no "interrupted", exit 0.
        sys.stderr.write("\n")
    finally:
        if opened is not None:
            opened.close()
    return int(ExitCode.OK)


def _render_summary(console: Console, fmt: str, result: Summary) -> None:
    rows = [r.to_dict(result.by) for r in result.rows]
    total = result.total.to_dict(result.by)
    note = (
        "estimated cost from "
        + ("audit.prices" if result.price_source == "config" else "built-in list prices")
        + "; not a bill"
    )
    if fmt == "json":
        console.json(
            {
                "by": result.by,
                "groups": result.groups,
                "rows": rows,
                "total": total,
                "price_source": result.price_source,
                "unpriced_models": list(result.unpriced_models),
                "note": note,
            }
        )
        return
    if fmt == "jsonl":
        console.jsonl(rows)
        return
    columns = (
        result.by,
        "calls",
        "events",
        "tokens in",
        "tokens out",
        "denials",
        "DLP hits",
        "est. cost USD",
    )
    table_rows = [
        (
            r.key,
            r.calls,
            r.events,
            r.input_tokens,
            r.output_tokens,
            r.denials,
            r.dlp_hits,
            f"{r.cost_usd:.2f}",
        )
        for r in (*result.rows, result.total)
    ]
    if fmt == "csv":
        writer = csv.writer(console.env.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(table_rows)
        return
    console.table(columns, table_rows, title=f"audit summary by {result.by}")
    _summary_charts(console, result)
    console.info(note)
    if result.unpriced_models:
        console.warn(
            "no price for "
            + ", ".join(result.unpriced_models)
            + ": their tokens are not in the cost (set audit.prices)"
        )


def _summary_charts(console: Console, result: Summary) -> None:
    """Bars (user, model, role) or sparklines (day) under the table; only on a terminal."""
    if result.by == "day":
        console.sparkline("calls", [(r.key, r.calls) for r in result.rows])
        console.sparkline(
            "tokens", [(r.key, r.input_tokens + r.output_tokens) for r in result.rows]
        )
        console.sparkline("est. cost USD", [(r.key, r.cost_usd) for r in result.rows], decimals=2)
        return
    rows = result.rows[:_CHART_ROWS]
    console.bars(f"calls by {result.by}", [(r.key or "(none)", r.calls) for r in rows])
    console.bars(
        f"est. cost USD by {result.by}",
        [(r.key or "(none)", r.cost_usd) for r in sorted(rows, key=lambda r: -r.cost_usd)],
        decimals=2,
    )


_CHART_ROWS = 15


def _head_or_none(store: AuditStore) -> int | None:
    """The last seq, for a progress bar's total; None when the store cannot say (verify then
    reports the damage itself)."""
    try:
        return store.head().seq
    except ClaudesecError:
        return None


def _render_verify(
    console: Console, fmt: str, report: VerifyReport, pending: IncompleteCalls | None = None
) -> None:
    if fmt == "json":
        data = report.to_dict()
        if pending is not None:
            data["incomplete_calls"] = pending.to_dict()
        console.json(data)
        return
    _render_verdict(console, report)
    if pending is not None and pending.count > pending.journaled:
        shown = ", ".join(str(seq) for seq in pending.seqs)
        left = pending.count - pending.journaled - len(pending.seqs)
        more = f" and {left} more" if left else ""
        console.info(
            f"note: {pending.count - pending.journaled} call(s) admitted with no outcome "
            f"recorded (in flight, or cut off by a crash; not tampering): admission record(s) "
            f"{shown}{more}; list them with `logs query --incomplete`"
        )
    if pending is not None and pending.journaled:
        console.info(_journaled_note(pending.journaled))


def _render_verdict(console: Console, report: VerifyReport) -> None:
    from claudesec.audit.secrets import public_key_fingerprint

    if report.ok:
        if report.records == 0 and report.last_seq == 0 and report.pruned_through == 0:
            console.styled(f"audit log OK: empty ({report.path})", "green")
            return
        parts = [
            f"audit log OK: {report.records} records (seq {report.first_seq}..{report.last_seq})",
            f"{report.checkpoints} checkpoints",
        ]
        if report.last_checkpoint is not None:
            parts.append(
                f"last #{report.last_checkpoint.number} at record {report.last_checkpoint.seq}"
            )
        if report.public_key:
            parts.append(f"key {public_key_fingerprint(report.public_key)}")
        if report.anchor is not None:
            parts.append(f"matches anchor #{report.anchor.number}")
        console.styled(", ".join(parts) + f" ({report.elapsed_s:.2f} s)", "green")
        if report.unanchored:
            console.info(
                f"note: {report.unanchored} records after the last checkpoint are protected by "
                "the hash chain only; export checkpoints (`logs checkpoint --export FILE`) "
                "to detect tail truncation"
            )
        return
    for problem in report.problems:
        where = (
            f"record {problem.seq}"
            if problem.seq is not None
            else (
                f"checkpoint #{problem.checkpoint}" if problem.checkpoint is not None else "store"
            )
        )
        console.styled(
            f"{problem.headline}: {where}: {problem.kind}: {problem.message}", "bold red"
        )


# Export, alerts and archive commands live in their own module; registered last so they
# appear after the core `logs` commands in help.
from claudesec.cli import logs_export  # noqa: E402

logs_export.register(app)
