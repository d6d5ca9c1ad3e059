"""`claudesec federation migrate`: who still uses static keys, proposed rules, key retirement.

Registered on the ``federation`` group by :func:`register` (one line in
:mod:`claudesec.cli.federation`); the work is :mod:`claudesec.federation.migrate`'s.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from claudesec.cli._common import load
from claudesec.errors import ExitCode

if TYPE_CHECKING:
    from collections.abc import Callable

    from claudesec.config import Config
    from claudesec.federation.migrate import MigrationReport, Retirement


def register(app: typer.Typer) -> None:
    app.command("migrate")(migrate_command)


def migrate_command(
    ctx: typer.Context,
    retire_keys: Annotated[
        list[str] | None,
        typer.Option(
            "--retire",
            metavar="KEY_ID",
            help="Deactivate this key once its workload runs on federation (repeatable). "
            "Dry run unless --yes.",
        ),
    ] = None,
    min_federated_days: Annotated[
        int,
        typer.Option(
            "--min-federated-days",
            help="How long every caller of a key must have run on federation, with no static "
            "use of it, before --retire deactivates it.",
        ),
    ] = 7,
    days: Annotated[
        int, typer.Option("--days", help="How much of the audit log to read (days).")
    ] = 90,
    yes: Annotated[bool, typer.Option("--yes", help="Act: deactivate the keys --retire names.")] = (
        False
    ),
    skip_managed_check: Annotated[
        bool,
        typer.Option(
            "--skip-managed-check",
            help="Do not ask the `claudesec keys` store whether a key is managed or in an "
            "overlap window (for organisations that do not use it; the audit log and the "
            "usage report still decide).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> int:
    """Which callers still use static keys (and which keys never expire), a proposed
    `[[federation.rules]]` per workload, and `--retire KEY_ID` to deactivate a key its workload
    no longer needs. Exit 1 while static keys are in use or a retirement was refused."""
    from claudesec.audit.store import AuditStore
    from claudesec.console import get_console
    from claudesec.federation.migrate import AuditEvidence, RetirePolicy, report, retire
    from claudesec.keys.events import open_sink
    from claudesec.keys.factory import admin_client

    config = load(ctx).config
    now = datetime.now(UTC)
    since = now - timedelta(days=max(days, min_federated_days))
    with AuditStore.from_config(config.audit, readonly=True) as store, store.snapshot() as conn:
        evidence = AuditEvidence.read(conn, int(since.timestamp() * 1e9))
    admin = admin_client(config)
    found = report(evidence, admin.list_keys(), since=since)
    retirements: tuple[Retirement, ...] = ()
    if retire_keys:
        sink = open_sink(config.audit)
        try:
            retirements = retire(
                retire_keys,
                evidence=evidence,
                admin=admin,
                sink=sink,
                policy=RetirePolicy(min_federated_days=min_federated_days, act=yes),
                now=now,
                in_service=None if skip_managed_check else _managed_check(config),
            )
        finally:
            close = getattr(sink, "close", None)
            if callable(close):
                close()
    from dataclasses import replace

    found = replace(found, retirements=retirements)
    code = _exit_code(found)
    if as_json:
        get_console().jsonl([{**found.to_json(), "exit_code": int(code)}])
        return int(code)
    _render(found)
    return int(code)


def _managed_check(config: Config) -> Callable[[str], str | None]:
    """``claudesec keys``' own in-service check (managed versions, overlap windows, recent
    usage). Its store failing stops the retirement (exit 3): nothing is deactivated on a
    guess."""
    from claudesec.keys.factory import open_manager

    return open_manager(config, admin=True, audit=False).in_service


def _exit_code(found: MigrationReport) -> ExitCode:
    if found.retirements:
        kept = any(r.action == "kept" for r in found.retirements)
        return ExitCode.FOUND if kept else ExitCode.OK
    return found.exit_code


def _render(found: MigrationReport) -> None:
    from claudesec.console import get_console

    console = get_console()
    if found.static:
        console.table(
            ["key id", "name", "hint", "expires", "callers", "calls", "last used"],
            [
                [
                    s.key_id or "?",
                    s.key_name,
                    s.key_hint,
                    (s.expires_at or "NEVER") if s.key_id else "",
                    ", ".join(s.users),
                    str(s.calls),
                    s.last_seen,
                ]
                for s in found.static
            ],
        )
    else:
        console.info("no caller used a static key in the audit log's window")
    for key in found.never_expiring:
        console.warn(f"key {key.id} ({key.name}, {key.partial_key_hint}) never expires")
    for workload in found.federated:
        console.info(
            f"on federation: rule {workload.rule_id} {workload.subject} "
            f"({', '.join(workload.users)}; {workload.calls} calls since {workload.first_seen})"
        )
    for result in found.retirements:
        console.out(f"{result.key_id} ({result.key_hint}): {result.action}: {result.reason}")
    if found.proposals and not found.retirements:
        console.info("proposed rules (review, fill in, add to claudesec.toml):")
        console.out(found.proposals.rstrip("\n"))
