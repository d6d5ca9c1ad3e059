"""`claudesec org`: the Claude organisation's inventory, and its posture against a catalogue.

Thin glue. ``inventory`` reads every Admin resource once (:mod:`claudesec.org.inventory`) and
prints a summary table on a terminal, the JSON document with ``--json`` (or when piped), and
writes the evidence file with ``--out``; exit 0 when every kind the credentials may read was
read, 4 when some failed. ``check`` reads an inventory (a JSON file from ``org inventory``,
or the live organisation through :mod:`claudesec.org.inventory`), calls
:func:`claudesec.org.check.run_checks`, renders the result, and with ``--fix`` plans (and
with ``--yes`` applies) the safe remediations of :mod:`claudesec.org.fix`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from claudesec.cli._common import config_path, load
from claudesec.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from claudesec.config import Config
    from claudesec.console import Console
    from claudesec.org.check import CheckRun
    from claudesec.org.model import OrgInventory

app = typer.Typer(
    help="The Claude organisation: inventory its Admin resources and check them against a "
    "catalogue mapped to SOC 2, ISO 27001 and CIS.",
    no_args_is_help=True,
)

FORMATS = ("text", "json", "sarif", "junit", "ocsf")
SEVERITIES = ("critical", "high", "medium", "low")


@app.command("inventory")
def inventory_command(
    ctx: typer.Context,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Write the inventory as JSON evidence here.", metavar="FILE"
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the JSON document on stdout.")
    ] = False,
) -> int:
    """Read every Admin resource once (paginated, retried) and summarise or export it."""
    import os

    from claudesec.console import get_console
    from claudesec.org import inventory_json
    from claudesec.org.inventory import OAUTH_TOKEN_ENV, exit_code, reader_from_config

    config = load(ctx).config
    inventory = reader_from_config(config, environ=os.environ).read()
    console = get_console()
    if out is not None:
        inventory_json.write(out, inventory)
        console.info(f"wrote {out}")
    if as_json or (out is None and not console.rich_output):
        console.json(inventory_json.to_json(inventory))
    elif console.rich_output:
        rows: list[tuple[str, object, str]] = [
            (name, len(items), "read") for name, items in inventory.lists.items()
        ]
        rows += [(name, 1, "read") for name in inventory.singletons]
        rows += [(u.kind, "", f"{u.reason}: {u.message}") for u in inventory.unavailable]
        console.table(("kind", "items", "status"), rows, title="Organisation inventory")
    for entry in inventory.unavailable:
        console.warn(f"{entry.kind} not read ({entry.reason}): {entry.message}")
    if any(u.message.endswith("none was configured") for u in inventory.unavailable):
        console.info(
            f"service accounts and federation need an org:admin OAuth token in {OAUTH_TOKEN_ENV}"
        )
    return int(exit_code(inventory))


@app.command("check")
def check(
    ctx: typer.Context,
    inventory: Annotated[
        Path | None,
        typer.Option(
            "--inventory",
            help="Judge this JSON inventory (from `org inventory`) instead of the live org.",
            metavar="FILE",
        ),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help=f"Output: {', '.join(FORMATS)}.")
    ] = "text",
    framework: Annotated[
        str | None,
        typer.Option("--framework", help="Group by control: soc2, iso27001 or cis."),
    ] = None,
    severity: Annotated[
        str | None,
        typer.Option(
            "--severity", help="Exit 1 on findings at or above this (default: org.fail_severity)."
        ),
    ] = None,
    only: Annotated[
        list[str] | None,
        typer.Option("--check", help="Run only this check (repeatable).", metavar="ID"),
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option("--baseline", help="Ignore findings listed in this file.", metavar="FILE"),
    ] = None,
    write_baseline: Annotated[
        Path | None,
        typer.Option(
            "--write-baseline", help="Write the current findings to FILE.", metavar="FILE"
        ),
    ] = None,
    keys: Annotated[
        bool,
        typer.Option(
            "--keys",
            help="Read claudesec's key store to tell managed keys from the others.",
        ),
    ] = False,
    fix: Annotated[
        bool, typer.Option("--fix", help="Plan the safe remediations (a dry run without --yes).")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="With --fix: apply the plan.")] = False,
    list_checks: Annotated[bool, typer.Option("--list", help="List the checks and exit.")] = False,
    sink: Annotated[
        str | None,
        typer.Option(
            "--sink",
            help="Also ship the results as OCSF Compliance Findings to this export sink.",
            metavar="NAME",
        ),
    ] = None,
) -> int:
    """Judge the organisation against the check catalogue (exit 1 on findings)."""
    from claudesec.console import get_console

    console = get_console()
    if list_checks:
        _list(console)
        return int(ExitCode.OK)
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}", hint=f"choose {', '.join(FORMATS)}")
    if severity is not None and severity not in SEVERITIES:
        raise UsageError(f"unknown severity {severity!r}", hint=f"choose {', '.join(SEVERITIES)}")
    if yes and not fix:
        raise UsageError("--yes applies --fix", hint="add --fix")
    config = load(ctx).config
    code = _check(
        ctx,
        console,
        config,
        inventory,
        fmt,
        framework,
        severity,
        only or [],
        baseline,
        write_baseline,
        keys,
        fix,
        yes,
        sink,
    )
    return int(code)


def _check(
    ctx: typer.Context,
    console: Console,
    config: Config,
    inventory_path: Path | None,
    fmt: str,
    framework: str | None,
    severity: str | None,
    only: list[str],
    baseline: Path | None,
    write_baseline: Path | None,
    keys: bool,
    fix: bool,
    yes: bool,
    sink: str | None = None,
) -> ExitCode:
    from claudesec.org import federation
    from claudesec.org.check import read_baseline, run_checks
    from claudesec.org.check import write_baseline as write
    from claudesec.org.reports import get_format
    from claudesec.org.rules import FRAMEWORK_NAMES, Severity

    if framework is not None and framework not in FRAMEWORK_NAMES:
        raise UsageError(
            f"unknown framework {framework!r}", hint=f"choose {', '.join(FRAMEWORK_NAMES)}"
        )
    inventory = _inventory(config, inventory_path)
    markings = _markings(config, inventory) if keys else None
    where = config_path(ctx)
    run = run_checks(
        inventory,
        config.org,
        now=datetime.now(UTC),
        key_markings=markings,
        federation_findings=federation.lint(inventory),
        only=only,
        threshold=Severity(severity) if severity else None,
        baseline=read_baseline(baseline) if baseline else frozenset(),
        config_path=str(where) if where else None,
    )
    _render(console, run, fmt, framework, get_format(fmt))
    if write_baseline is not None:
        count = write(run, write_baseline)
        console.info(f"claudesec org check: wrote {count} finding(s) to {write_baseline}")
    if sink is not None:
        from claudesec.org.ship import ship_findings

        shipped = ship_findings(run, config.export, sink)
        console.info(f"claudesec org check: sent {shipped.sent} OCSF event(s) to sink {sink}")
        for rejection in shipped.rejected:
            console.warn(f"sink {sink} rejected event {rejection}")
        if shipped.exit_code != ExitCode.OK and not fix:
            return shipped.exit_code
    if not fix:
        return run.exit_code
    return _fix(console, config, run, inventory, markings, yes) or run.exit_code


def _render(console: Console, run: CheckRun, fmt: str, framework: str | None, render: Any) -> None:
    from claudesec.org.reports import text

    if fmt == "text":
        for line, style in text.lines(run, framework):
            console.styled(line, style)
        console.info(text.summary(run))
        return
    console.env.stdout.write(render(run, framework))
    console.info(text.summary(run))
    for warning in run.warnings:
        console.warn(warning)


def _inventory(config: Config, path: Path | None) -> OrgInventory:
    import os

    from claudesec.org import inventory_json
    from claudesec.org.inventory import reader_from_config

    if path is not None:
        return inventory_json.read(path)
    return reader_from_config(config, environ=os.environ).read()


def _markings(config: Config, inventory: OrgInventory) -> dict[str, str]:
    """How claudesec's key store knows each key of the inventory (managed, unmanaged...)."""
    from claudesec.keys.factory import open_manager
    from claudesec.org.keystore import key_markings

    manager = open_manager(config, admin=False, audit=False)
    try:
        return key_markings(manager, inventory)
    finally:
        manager.close()


def _fix(
    console: Console,
    config: Config,
    run: CheckRun,
    inventory: OrgInventory,
    markings: dict[str, str] | None,
    yes: bool,
) -> ExitCode:
    from claudesec.anthropic_admin import resolve_admin_key
    from claudesec.org.fix import AdminOrgWriter, StoreRecorder, apply_fixes, describe, plan_fixes

    plan = plan_fixes(run, inventory, config.org, key_markings=markings)
    for line in describe(plan):
        console.info(line)
    if not plan.to_apply:
        console.info("claudesec org check --fix: nothing to change")
        return ExitCode.OK
    if not yes:
        console.info(
            f"claudesec org check --fix: dry run, {len(plan.to_apply)} change(s) planned; "
            "add --yes to apply"
        )
        return ExitCode.OK
    writer = AdminOrgWriter(
        config.anthropic.base_url,
        resolve_admin_key(config.anthropic.admin_key_source, keys_config=config.keys),
        timeout_s=config.anthropic.timeout_s,
        max_retries=config.keys.admin_max_retries,
        max_retry_wait_s=config.keys.admin_max_retry_wait_s,
    )
    recorder = StoreRecorder(config.audit)
    try:
        report = apply_fixes(plan, writer, recorder)
    finally:
        recorder.close()
    for result in report.results:
        detail = f": {result.detail}" if result.detail else ""
        console.info(f"{result.outcome} {result.action.check_id} {result.action.target}{detail}")
    console.info(
        f"claudesec org check --fix: {len(report.results) - len(report.failed)} applied, "
        f"{len(report.failed)} failed"
    )
    return report.exit_code


def _list(console: Console) -> None:
    from claudesec.org.catalogue import CHECKS

    console.table(
        ("id", "severity", "area", "title", "soc2", "iso27001", "cis"),
        [
            (
                c.id,
                c.severity.value,
                c.area,
                c.title,
                " ".join(c.soc2),
                " ".join(c.iso27001),
                " ".join(c.cis),
            )
            for c in CHECKS
        ],
    )
