"""`claudesec logs export | alerts | watch | archive`: the audit log leaving the host.

Thin glue over ``claudesec.audit.export``, ``claudesec.audit.alerts`` and
``claudesec.audit.archive``: parse options, call one domain function, render. Registered into
``claudesec logs`` by :func:`register`; every domain import happens inside a command.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from claudesec.cli._common import StoreOption, load, open_existing_reader, open_reader, open_writer
from claudesec.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from claudesec.console import Console

FormatOption = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="table or json (default: table on a terminal, json when piped).",
        metavar="FORMAT",
    ),
]

export_app = typer.Typer(
    help="Ship the audit log to SIEMs (--sink NAME), or show each sink's lag (status)."
)
alerts_app = typer.Typer(help="Evaluate alert rules over recent events and notify targets.")
archive_app = typer.Typer(help="Write old records to encrypted, signed archive files.")


def register(app: typer.Typer) -> None:
    """Add ``export``, ``alerts``, ``watch``, ``archive`` and ``prompt`` to the ``logs`` group
    (idempotent)."""
    names = {group.name for group in app.registered_groups}
    if "export" in names:
        return
    app.add_typer(export_app, name="export")
    app.add_typer(alerts_app, name="alerts")
    app.add_typer(archive_app, name="archive")
    app.command("watch")(watch_command)
    app.command("prompt")(prompt_command)


# --------------------------------------------------------------------------- export


@export_app.callback(invoke_without_command=True)
def export_command(
    ctx: typer.Context,
    sinks: Annotated[
        list[str] | None,
        typer.Option("--sink", help="Sink name from [export.sinks.NAME]; repeatable."),
    ] = None,
    all_sinks: Annotated[bool, typer.Option("--all", help="Every configured sink.")] = False,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Keep shipping new events until Ctrl-C / SIGTERM."),
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Move the sink's cursor to the first event at or after this time (e.g. 7d, "
            "2026-01-31): backwards re-sends, forwards skips.",
        ),
    ] = None,
    store: StoreOption = None,
) -> int:
    """Ship new events to sinks; resumes from each sink's cursor (nothing lost, no duplicates
    where the sink has idempotent ids). Exit 4 when a sink refused events for good (they are
    in its dead-letter file), 3 when a sink failed."""
    if ctx.invoked_subcommand is not None:
        return int(ExitCode.OK)
    from claudesec.audit.export import state_dir
    from claudesec.audit.export.cursor import CursorStore
    from claudesec.audit.export.runner import SinkRun, ship
    from claudesec.console import get_console
    from claudesec.timeparse import parse_time_ns

    config = load(ctx).config
    names = sorted(config.export.sinks) if all_sinks else list(dict.fromkeys(sinks or []))
    if not names:
        raise UsageError("name a sink with --sink NAME, or pass --all")
    if follow and len(names) > 1:
        raise UsageError("--follow ships to one sink; run one process per sink")
    since_ns = parse_time_ns(since) if since else None
    console = get_console()
    stop = _StopFlag()

    def done(run: SinkRun) -> None:
        _clear_progress(console)
        if run.error:
            console.error(f"{run.name}: {run.error}")
            return
        assert run.stats is not None
        result = run.stats
        line = (
            f"{run.name}: shipped {result.shipped} events in {result.batches} batches, "
            f"cursor {result.cursor} of {result.head}"
        )
        if result.dead_lettered:
            line += f"; {result.dead_lettered} rejected (see {run.name}.deadletter.jsonl)"
        if result.skipped_pruned:
            line += f"; {result.skipped_pruned} pruned before they were shipped"
        console.info(line)

    with (
        open_reader(config.audit, store) as opened,
        CursorStore(state_dir(config.export) / "cursors.db") as cursors,
    ):
        report = ship(
            opened,
            config.export,
            names,
            cursors,
            since_ns=since_ns,
            follow=follow,
            stop=stop,
            on_start=lambda name: stop.install() if follow else None,
            on_progress=lambda name: _progress(console, name),
            on_retry=lambda message, delay: console.warn(f"{message}; retrying in {delay:.1f} s"),
            on_done=done,
        )
    if report.interrupted:
        console.info("")
    return int(report.exit_code)


@export_app.command("status")
def export_status_command(
    ctx: typer.Context, fmt: FormatOption = None, store: StoreOption = None
) -> int:
    """Each sink's cursor and lag behind the store (events, and age of the oldest unshipped)."""
    from claudesec.audit.export import state_dir
    from claudesec.audit.export.cursor import CursorStore
    from claudesec.audit.export.status import export_status
    from claudesec.console import get_console

    config = load(ctx).config
    console = get_console()
    fmt = _format(console, fmt)
    opened = open_existing_reader(config.audit, store)
    try:
        with CursorStore(state_dir(config.export) / "cursors.db") as cursors:
            rows = export_status(opened, cursors, config.export.sinks)
    finally:
        if opened is not None:
            opened.close()
    if fmt == "json":
        console.json([row.to_dict() for row in rows])
        return int(ExitCode.OK)
    if not rows:
        console.out("no sinks configured: add [export.sinks.NAME] to claudesec.toml")
        return int(ExitCode.OK)
    console.table(
        (
            "sink",
            "type",
            "cursor",
            "head",
            "lag",
            "oldest unshipped",
            "shipped",
            "rejected",
            "last error",
        ),
        [
            (
                row.sink + (" (other store)" if row.foreign_cursor else ""),
                row.type,
                row.cursor,
                row.head,
                row.lag_events,
                _age(row.lag_s),
                row.shipped,
                row.dead_lettered,
                row.last_error,
            )
            for row in rows
        ],
        title="export",
    )
    return int(ExitCode.OK)


# --------------------------------------------------------------------------- helpers


class _StopFlag:
    """Set by SIGTERM so a follower finishes its batch (and its cursor) before exiting."""

    def __init__(self) -> None:
        self.stopped = False

    def install(self) -> None:
        def handler(signum: int, frame: Any) -> None:
            self.stopped = True

        # Outside the main thread (tests) only Ctrl-C can stop a follower.
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGTERM, handler)

    def __call__(self) -> bool:
        return self.stopped


def _progress(console: Console, name: str) -> Callable[[Any], None] | None:
    if not console.env.stderr_isatty:
        return None

    def show(stats: Any) -> None:
        console.env.stderr.write(
            f"\r{name}: shipped {stats.shipped}, cursor {stats.cursor}/{stats.head}\x1b[K"
        )
        console.env.stderr.flush()

    return show


def _clear_progress(console: Console) -> None:
    if console.env.stderr_isatty:
        console.env.stderr.write("\r\x1b[K")


def _age(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86_400:.1f}d"


def _format(console: Console, fmt: str | None) -> str:
    chosen = fmt or ("table" if console.rich_output else "json")
    if chosen not in ("table", "json"):
        raise UsageError(f"--format must be table or json, got {chosen!r}")
    return chosen


# --------------------------------------------------------------------------- alerts


@alerts_app.callback(invoke_without_command=True)
def alerts_command(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Look at events since this time (default: alerts.window)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the alerts without sending them.")
    ] = False,
    targets: Annotated[
        list[str] | None, typer.Option("--target", help="Only these targets; repeatable.")
    ] = None,
    fmt: FormatOption = None,
    store: StoreOption = None,
) -> int:
    """Evaluate the alert rules over recent events and notify the targets; exit 1 if any fired."""
    if ctx.invoked_subcommand is not None:
        return int(ExitCode.OK)
    import time

    from claudesec.audit.alerts import evaluate
    from claudesec.console import get_console
    from claudesec.timeparse import parse_time_ns

    config = load(ctx).config
    console = get_console()
    fmt = _format(console, fmt)
    now = time.time_ns()
    since_ns = parse_time_ns(since or config.alerts.window, now_ns=now)
    opened = open_reader(config.audit, store)
    try:
        alerts = evaluate(opened, config.alerts, since_ns=since_ns, now_ns=now)
    finally:
        opened.close()
    _render_alerts(console, fmt, alerts)
    if alerts and not dry_run:
        _notify(ctx, console, alerts, targets or [], now)
    return int(ExitCode.FOUND if alerts else ExitCode.OK)


@alerts_app.command("test")
def alerts_test_command(
    ctx: typer.Context,
    targets: Annotated[
        list[str] | None, typer.Option("--target", help="Only these targets; repeatable.")
    ] = None,
) -> int:
    """Send a sample alert to every configured target (or --target NAME)."""
    from claudesec.audit.alerts import build_targets, notify, sample_alert
    from claudesec.console import get_console

    config = load(ctx).config
    console = get_console()
    built = build_targets(config.alerts.targets, targets or [])
    if not built:
        raise UsageError("no alert targets configured: add [alerts.targets.NAME]")
    result = notify([sample_alert()], built, None, config.alerts)
    for failure in result.failures:
        console.error(failure)
    console.out(f"sent a test alert to {result.sent} of {len(built)} targets")
    if result.failures:
        return int(ExitCode.EXTERNAL if result.sent == 0 else ExitCode.PARTIAL)
    return int(ExitCode.OK)


def watch_command(
    ctx: typer.Context,
    targets: Annotated[
        list[str] | None, typer.Option("--target", help="Only these targets; repeatable.")
    ] = None,
    store: StoreOption = None,
) -> int:
    """Follow the audit log and send alerts as rules fire (Ctrl-C or SIGTERM to stop)."""
    import time

    from claudesec.audit.alerts import evaluate_events, evaluate_windows
    from claudesec.audit.query import follow
    from claudesec.console import get_console

    config = load(ctx).config
    console = get_console()
    opened = open_reader(config.audit, store)
    stop = _StopFlag()
    stop.install()
    console.info("watching the audit log for alerts (Ctrl-C to stop)")
    try:
        start = opened.head().seq
        for batch in follow(opened, start, poll_s=config.export.poll_s, stop=stop):
            now = time.time_ns()
            alerts = evaluate_events(batch, config.alerts)
            alerts += evaluate_windows(opened, config.alerts, now_ns=now)
            if alerts:
                _render_alerts(console, "json" if not console.rich_output else "table", alerts)
                _notify(ctx, console, alerts, targets or [], now)
    except KeyboardInterrupt:
        console.info("")
    finally:
        opened.close()
    return int(ExitCode.OK)


def _notify(
    ctx: typer.Context, console: Console, alerts: list[Any], targets: list[str], now: int
) -> None:
    from claudesec.audit.alerts import AlertState, build_targets, notify
    from claudesec.audit.export import state_dir

    config = load(ctx).config
    built = build_targets(config.alerts.targets, targets)
    if not built:
        console.warn("no alert targets configured: alerts were only printed")
        return
    state = AlertState(state_dir(config.export).parent / "alerts.db")
    try:
        result = notify(alerts, built, state, config.alerts, now_ns=now)
    finally:
        state.close()
    for failure in result.failures:
        console.error(failure)
    console.info(
        f"alerts: {result.sent} sent, {result.duplicates} already sent, "
        f"{result.rate_limited} over the rate limit"
    )


def _render_alerts(console: Console, fmt: str, alerts: list[Any]) -> None:
    if fmt == "json":
        console.jsonl(alert.to_dict() for alert in alerts)
        return
    if not alerts:
        console.out("no alerts")
        return
    console.table(
        ("severity", "rule", "user", "count", "first", "last", "detail"),
        [
            (
                a.severity,
                a.rule,
                a.subject,
                a.count,
                a.to_dict()["first"],
                a.to_dict()["last"],
                ", ".join(f"{k}={v}" for k, v in sorted(a.detail.items())),
            )
            for a in alerts
        ],
        title="alerts",
    )


# --------------------------------------------------------------------------- archive


@archive_app.callback(invoke_without_command=True)
def archive_command(
    ctx: typer.Context,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            help="Archive records older than this (default: audit.retention_days), up to the "
            "checkpoint `logs prune` would keep as its anchor.",
        ),
    ] = None,
    prune: Annotated[
        bool, typer.Option("--prune", help="Prune the archived records once the file verifies.")
    ] = False,
    upload: Annotated[
        bool, typer.Option("--upload", help="Also put the file in archive.s3_bucket.")
    ] = False,
    store: StoreOption = None,
) -> int:
    """Write old records to a compressed, AES-GCM encrypted, signed archive file."""
    if ctx.invoked_subcommand is not None:
        return int(ExitCode.OK)
    import time

    from claudesec.audit.archive import archive_old_records
    from claudesec.audit.secrets import AuditKeys
    from claudesec.console import get_console
    from claudesec.timeparse import parse_duration_ns

    config = load(ctx).config
    audit = config.audit
    console = get_console()
    if older_than is None:
        if audit.retention_days <= 0:
            raise UsageError("audit.retention_days is 0 (keep forever); pass --older-than")
        cutoff = time.time_ns() - audit.retention_days * 86_400 * 1_000_000_000
    else:
        cutoff = time.time_ns() - parse_duration_ns(older_than)
    signer = AuditKeys.from_config(audit).signing_key()
    with open_writer(audit, store) as opened:
        run = archive_old_records(
            opened,
            config.archive,
            config.prompt_vault,
            signer,
            cutoff_ns=cutoff,
            upload=upload,
            prune=prune,
        )
    result = run.archive
    if result is None:
        console.out("nothing to archive: no checkpoint covers only records that old")
        return int(ExitCode.OK)
    console.out(
        f"archived records {result.first_seq}..{result.last_seq} ({result.count}) to {result.path}"
    )
    if run.uploaded_key:
        console.out(f"uploaded to s3://{config.archive.s3_bucket}/{run.uploaded_key}")
    if prune:
        console.out(f"pruned {run.pruned} records through {run.pruned_through}")
        if run.prompts_removed:
            console.out(f"removed {run.prompts_removed} prompts from the prompt vault")
    return int(ExitCode.OK)


@archive_app.command("verify")
def archive_verify_command(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Archive file (.csarc).")],
    public_key: Annotated[
        Path | None,
        typer.Option("--public-key", help="The store's public key (`logs public-key`) to pin."),
    ] = None,
    no_decrypt: Annotated[
        bool,
        typer.Option("--no-decrypt", help="Check signature and ciphertext only (no KEK)."),
    ] = False,
    fmt: FormatOption = None,
) -> int:
    """Check an archive's signature, ciphertext and (decrypted) hash chain; exit 1 if damaged."""
    from claudesec.audit.archive import kek_from_config, verify_archive
    from claudesec.audit.checkpoint import load_public_key
    from claudesec.console import get_console

    config = load(ctx).config
    console = get_console()
    fmt = _format(console, fmt)
    pinned = None
    if public_key is not None:
        pinned = load_public_key(public_key.read_text(encoding="utf-8"), source=str(public_key))
    kek = None
    if not no_decrypt:
        kek = kek_from_config(
            config.archive.kek_source,
            region=config.archive.aws_region,
            endpoint_url=config.archive.aws_endpoint_url,
        )
    result = verify_archive(path, kek=kek, public_key=pinned)
    manifest = result.manifest
    if fmt == "json":
        console.json(
            {
                "path": str(path),
                "ok": result.ok,
                "problems": list(result.problems),
                "decrypted": result.decrypted,
                "records": result.records,
                "first_seq": manifest.get("first_seq"),
                "last_seq": manifest.get("last_seq"),
                "store_id": manifest.get("store_id"),
            }
        )
    elif result.ok:
        what = f"{result.records} records, chain verified" if result.decrypted else "not decrypted"
        console.out(
            f"ok: {path.name}: records {manifest.get('first_seq')}..{manifest.get('last_seq')} "
            f"({what})"
        )
    else:
        for problem in result.problems:
            console.out(f"DAMAGED: {path.name}: {problem}")
    return int(ExitCode.OK if result.ok else ExitCode.FOUND)


# --------------------------------------------------------------------------- prompt vault


def prompt_command(
    ctx: typer.Context,
    seq: Annotated[int, typer.Argument(help="The audit record's seq (as `logs show` lists it).")],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="text or json (default: text on a terminal, json when piped).",
            metavar="FORMAT",
        ),
    ] = None,
    store: StoreOption = None,
) -> int:
    """Decrypt the prompt of one record from the prompt vault (needs its KEK; each access is
    itself recorded in the audit log)."""
    import getpass

    from claudesec.audit.prompt_vault import PromptVault, default_vault_path, open_prompt
    from claudesec.console import get_console

    config = load(ctx).config
    audit, settings = config.audit, config.prompt_vault
    console = get_console()
    chosen = fmt or ("text" if console.rich_output else "json")
    if chosen not in ("text", "json"):
        raise UsageError(f"--format must be text or json, got {chosen!r}")
    if not default_vault_path(settings).exists():
        raise UsageError(
            "there is no prompt vault",
            hint="prompts are kept only with [prompt_vault] enabled = true",
        )
    with (
        PromptVault.from_config(settings) as vault,
        open_writer(audit, store) as opened,
    ):
        prompt = open_prompt(opened, vault, seq, reader=getpass.getuser(), app=audit.app)
    if chosen == "json":
        console.json(
            {
                "seq": prompt.seq,
                "request_id": prompt.request_id,
                "time_ns": prompt.time_ns,
                "body": prompt.body,
            }
        )
    else:
        console.out(_prompt_text(prompt.body))
    return int(ExitCode.OK)


def _prompt_text(body: Any) -> str:
    """A readable rendering of a Messages request body: system prompt, then each turn."""
    import json

    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return json.dumps(body, indent=2, ensure_ascii=False)
    lines: list[str] = []
    if body.get("system"):
        lines.append(f"[system] {_content_text(body['system'])}")
    for message in body["messages"]:
        if isinstance(message, dict):
            lines.append(f"[{message.get('role', '?')}] {_content_text(message.get('content'))}")
    return "\n".join(lines)


def _content_text(content: Any) -> str:
    import json

    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            block["text"]
            if isinstance(block, dict) and isinstance(block.get("text"), str)
            else json.dumps(block, ensure_ascii=False)
            for block in content
        )
    return json.dumps(content, ensure_ascii=False)
