"""`claudesec report`: one offline HTML file (or its JSON twin) for an auditor.

Thin glue: parse the options, read the optional input files, call
:func:`claudesec.audit.report.build_report`, and write the rendering atomically (a crash
leaves the previous report, never half of a new one). Exit 1 when the store fails
verification: the report is still written, and says so on its first line.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from claudesec.cli._common import StoreOption, load, open_existing_reader, store_path
from claudesec.errors import UsageError


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to the root app."""
    app.command("report")(report_command)


def report_command(
    ctx: typer.Context,
    since: Annotated[
        str,
        typer.Option("--since", help="From this time: 30d, 2026-11-01, ISO 8601.", metavar="WHEN"),
    ] = "30d",
    until: Annotated[
        str,
        typer.Option("--until", help="Before this time (same forms; default now).", metavar="WHEN"),
    ] = "now",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Write here (default: report.html or report.json).", metavar="FILE"
        ),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="html or json (the same numbers).", metavar="FORMAT")
    ] = "html",
    anchor: Annotated[
        Path | None,
        typer.Option(
            "--anchor", help="An exported checkpoint kept off the host, to compare.", metavar="FILE"
        ),
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key", help="Trust only this signing key (PEM or hex).", metavar="FILE"
        ),
    ] = None,
    drills: Annotated[
        Path | None,
        typer.Option(
            "--drills", help="A drill JSON report (`drill run --json FILE`).", metavar="FILE"
        ),
    ] = None,
    scan: Annotated[
        Path | None,
        typer.Option("--scan", help="A SARIF log (`scan --format sarif`).", metavar="FILE"),
    ] = None,
    org_check: Annotated[
        Path | None,
        typer.Option(
            "--org-check", help="A SARIF log of `org check --format sarif`.", metavar="FILE"
        ),
    ] = None,
    federation_lint: Annotated[
        Path | None,
        typer.Option(
            "--federation-lint",
            help="A SARIF log of `federation lint --format sarif`.",
            metavar="FILE",
        ),
    ] = None,
    store: StoreOption = None,
    lake: Annotated[
        str,
        typer.Option(
            "--from",
            help="Report over a Security Lake instead of the local store: s3://BUCKET/PREFIX "
            "(the lake sink's objects; AWS settings from the usual AWS chain).",
            metavar="S3_URL",
        ),
    ] = "",
) -> int:
    """Write an offline HTML (or JSON) report for auditors: integrity, access, cost, keys."""
    import json
    import time

    from claudesec.audit.checkpoint import Checkpoint, load_public_key
    from claudesec.audit.report import (
        ReportInputs,
        build_report,
        load_drills,
        load_sarif,
        render_html,
    )
    from claudesec.console import get_console
    from claudesec.timeparse import parse_time_ns

    if fmt not in ("html", "json"):
        raise UsageError(f"--format must be html or json, got {fmt!r}")
    config = load(ctx).config
    audit = config.audit
    now_ns = time.time_ns()
    local_key = None
    if store is None:
        from claudesec.audit.secrets import AuditKeys

        local_key = AuditKeys.from_config(audit).existing_public_key()
    inputs = ReportInputs(
        since_ns=parse_time_ns(since, now_ns=now_ns),
        until_ns=parse_time_ns(until, now_ns=now_ns),
        now_ns=now_ns,
        store_arg=store or "",
        prices=audit.prices,
        alerts=config.alerts,
        anchor=Checkpoint.load_export(_read(anchor), source=str(anchor)) if anchor else None,
        public_key=load_public_key(_read(public_key), source=str(public_key))
        if public_key
        else None,
        local_public_key=local_key,
        drills=load_drills(_read(drills), str(drills)) if drills else None,
        drills_source=drills.name if drills else "",
        sarif=load_sarif(_read(scan), str(scan)) if scan else None,
        sarif_source=scan.name if scan else "",
        org_check=load_sarif(_read(org_check), str(org_check), "claudesec org check --format sarif")
        if org_check
        else None,
        org_check_source=org_check.name if org_check else "",
        federation_lint=load_sarif(
            _read(federation_lint), str(federation_lint), "claudesec federation lint --format sarif"
        )
        if federation_lint
        else None,
        federation_lint_source=federation_lint.name if federation_lint else "",
    )
    if lake:
        from claudesec.audit.report.lake_report import report_from_lake

        report = report_from_lake(lake, inputs)
    else:
        opened = open_existing_reader(audit, store)
        if opened is None:
            raise UsageError(
                f"no audit store at {store_path(audit, store)}",
                hint="pass --store PATH, or record events first",
            )
        with opened:
            report = build_report(opened, inputs)
    text = (
        json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
        if fmt == "json"
        else render_html(report)
    )
    target = out or Path(f"report.{fmt}")
    _write_atomic(target, text)
    console = get_console()
    verdict = "integrity verified" if report.integrity_ok else "INTEGRITY CHECK FAILED"
    console.info(f"wrote {target} ({report.since} to {report.until}, {verdict})")
    return report.exit_code


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from exc


def _write_atomic(path: Path, text: str) -> None:
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc}") from exc
