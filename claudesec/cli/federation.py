"""`claudesec federation`: workload identity federation as code (plan, apply, list, lint)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from claudesec.cli._common import load
from claudesec.cli.federation_migrate import register as register_migrate

if TYPE_CHECKING:
    from claudesec.console import Console
    from claudesec.federation.apply import ApplyReport
    from claudesec.federation.lint import LintFinding
    from claudesec.federation.org import OrgFederation
    from claudesec.federation.plan import Plan

app = typer.Typer(
    help="Workload identity federation as code: plan, apply, list and lint issuers and rules; "
    "migrate workloads off static keys.",
    no_args_is_help=True,
)
register_migrate(app)

FormatOption = Annotated[
    str | None,
    typer.Option("--format", "-f", help="text or json (default: text on a terminal)."),
]
T = TypeVar("T")


def _checked(call: Callable[[], T]) -> T:
    """Run ``call``; several config problems are printed one per line before exit 2."""
    from claudesec.console import get_console
    from claudesec.federation.run import ConfigProblems

    try:
        return call()
    except ConfigProblems as problems:
        for problem in problems.problems:
            get_console().error(problem.user_message())
        raise


def _format(console: Console, fmt: str | None, allowed: tuple[str, ...]) -> str:
    from claudesec.errors import UsageError

    chosen = fmt or ("text" if console.rich_output else "json")
    if chosen not in allowed:
        raise UsageError(f"unknown format {chosen!r}", hint=f"use {' or '.join(allowed)}")
    return chosen


_SYMBOL = {
    "create": "+",
    "add": "+",
    "update": "~",
    "replace": "-/+",
    "archive": "-",
    "remove": "-",
}


def _render_plan(console: Console, plan: Plan) -> None:
    if plan.empty:
        console.out("The organisation matches the config: no changes.")
        return
    for change in plan.changes:
        line = f"{_SYMBOL[change.action]:>3} {change.action} {change.label}"
        if change.object_id:
            line += f" ({change.object_id})"
        console.styled(line, "yellow" if change.action in ("update", "replace") else "bold")
        for field in change.fields:
            console.out(f"      {field.field}: {_short(field.before)} -> {_short(field.after)}")
        if change.action == "create" and change.params:
            for name, value in change.params.items():
                if name != "name":
                    console.out(f"      {name}: {_short(value)}")
        if change.blocked:
            console.out(f"      blocked: {change.blocked}")
    counts = plan.counts()
    console.out("Plan: " + ", ".join(f"{n} to {action}" for action, n in counts.items()) + ".")


def _short(value: Any) -> str:
    import json

    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 160 else text[:157] + "..."


@app.command("plan")
def plan_command(
    ctx: typer.Context,
    fmt: FormatOption = None,
    check: Annotated[
        bool, typer.Option("--check", help="Exit 1 when the organisation differs (drift).")
    ] = False,
) -> int:
    """Show what apply would create, update and archive to make the organisation match."""
    from claudesec.console import get_console
    from claudesec.federation.run import plan_federation

    console = get_console()
    chosen = _format(console, fmt, ("text", "json"))
    result = _checked(lambda: plan_federation(load(ctx)))
    if chosen == "json":
        console.json(result.plan.to_json())
    else:
        _render_plan(console, result.plan)
    return int(result.exit_code(check=check))


@app.command("apply")
def apply_command(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    fmt: FormatOption = None,
) -> int:
    """Make the organisation match the config (idempotent; confirms on a terminal)."""
    from claudesec.console import get_console
    from claudesec.errors import UsageError
    from claudesec.federation.run import apply_federation, plan_federation

    console = get_console()
    chosen = _format(console, fmt, ("text", "json"))
    if not yes and not (sys.stdin is not None and sys.stdin.isatty()):
        raise UsageError("apply needs --yes when not run on a terminal")
    result = _checked(lambda: plan_federation(load(ctx)))
    if result.plan.empty:
        if chosen == "json":
            console.json({**result.plan.to_json(), "steps": [], "exit_code": 0})
        else:
            console.out("The organisation matches the config: nothing to apply.")
        return 0
    if chosen == "text" or not yes:
        _render_plan(console, result.plan)
    if not yes:
        typer.confirm("Apply these changes?", abort=True)
    report = apply_federation(result)
    if chosen == "json":
        console.json(report.to_json())
    else:
        _render_report(console, report)
    return int(report.exit_code)


def _render_report(console: Console, report: ApplyReport) -> None:
    for step in report.steps:
        line = f"{step.outcome}: {step.change.action} {step.change.label}"
        console.out(line + (f": {step.detail}" if step.detail else ""))
    console.info(
        f"{len(report.of('applied'))} applied, {len(report.of('failed'))} failed, "
        f"{len(report.of('skipped'))} skipped"
    )


@app.command("list")
def list_command(ctx: typer.Context, fmt: FormatOption = None) -> int:
    """List the issuers, rules and service accounts live in the organisation."""
    from claudesec.console import get_console
    from claudesec.federation.run import list_federation

    console = get_console()
    chosen = _format(console, fmt, ("text", "json"))
    org = list_federation(load(ctx))
    if chosen == "json":
        console.json(
            {
                "issuers": org.live(org.issuers),
                "rules": org.rules,
                "service_accounts": [
                    {**a, "workspaces": org.memberships.get(str(a["id"]), ())}
                    for a in org.live(org.service_accounts)
                ],
            }
        )
        return 0
    _render_list(console, org)
    return 0


def _render_list(console: Console, org: OrgFederation) -> None:
    console.table(
        ["issuer", "url", "jwks", "check_jti", "max jwt s", "id"],
        [
            [
                i["name"],
                i["issuer_url"],
                (i.get("jwks") or {}).get("type"),
                i.get("check_jti"),
                i.get("max_jwt_lifetime_seconds"),
                i["id"],
            ]
            for i in org.live(org.issuers)
        ],
        title="Federation issuers",
    )
    console.table(
        ["rule", "issuer", "service account", "subject", "scope", "workspaces", "id"],
        [
            [
                r["name"],
                r.get("issuer_name"),
                (r.get("target") or {}).get("service_account_name"),
                (r.get("match") or {}).get("subject_prefix"),
                r.get("oauth_scope"),
                "all"
                if r.get("applies_to_all_workspaces")
                else ", ".join(org.workspace_name(w) for w in r.get("workspace_ids") or []),
                r["id"],
            ]
            for r in org.rules
        ],
        title="Federation rules",
    )
    console.table(
        ["service account", "role", "workspaces", "id"],
        [
            [
                a["name"],
                a.get("organization_role"),
                ", ".join(
                    f"{org.workspace_name(str(m['workspace_id']))}:{m['workspace_role']}"
                    for m in org.memberships.get(str(a["id"]), ())
                ),
                a["id"],
            ]
            for a in org.live(org.service_accounts)
        ],
        title="Service accounts",
    )


@app.command("lint")
def lint_command(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Option(
            "--source",
            help="config (the [federation] tables), org (rules live in the organisation, "
            "Console-made ones too) or all.",
        ),
    ] = "all",
    fmt: Annotated[
        str | None,
        typer.Option("--format", "-f", help="text, json or sarif (default: text on a terminal)."),
    ] = None,
    severity: Annotated[
        str,
        typer.Option(
            "--severity", help="Exit 1 on findings at or above: low, medium, high, critical."
        ),
    ] = "medium",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the report to this file.")
    ] = None,
) -> int:
    """Find over-broad and risky federation rules (exit 1 at or above --severity)."""
    from claudesec.console import get_console
    from claudesec.errors import UsageError
    from claudesec.federation.lint_catalogue import SEVERITY_ORDER
    from claudesec.federation.run import lint_federation
    from claudesec.federation.sarif import findings_json, findings_sarif

    console = get_console()
    chosen = _format(console, fmt, ("text", "json", "sarif"))
    if source not in ("config", "org", "all"):
        raise UsageError(f"unknown source {source!r}", hint="use config, org or all")
    if severity not in SEVERITY_ORDER:
        raise UsageError(f"unknown severity {severity!r}", hint="low, medium, high or critical")
    loaded = load(ctx)
    result = _checked(
        lambda: lint_federation(loaded, source=source, threshold=severity)  # type: ignore[arg-type]
    )
    if chosen == "text":
        text = _lint_text(result.findings)
    elif chosen == "json":
        text = findings_json(result.findings)
    else:
        root = loaded.path.parent if loaded.path else None
        text = findings_sarif(result.findings, root=root)
    if output is not None:
        output.write_text(text, encoding="utf-8")
        console.info(f"wrote {output}")
    else:
        console.out(text.rstrip("\n"))
    console.info(f"{len(result.findings)} finding(s), {len(result.failing)} at or above {severity}")
    return int(result.exit_code)


def _lint_text(findings: tuple[LintFinding, ...]) -> str:
    lines = []
    for f in findings:
        where = f"{f.path}:{f.line}" if f.path else f"org {f.object_kind} {f.object_id or ''}"
        lines.append(
            f"{where}: {f.rule_id} [{f.severity}] {f.object_kind} {f.object_name}: {f.message}"
        )
        lines.append(f"    fix: {f.fix}")
    return "\n".join(lines) if lines else "No findings."
