"""`claudesec keys`: rotate, scope and revoke Anthropic keys (Secrets Manager or keyring).

Thin glue: each command loads the config, calls one function of ``claudesec.keys`` and
renders the result. Keys are read from stdin or a hidden prompt, never from argv (argv is
visible to every user of the machine and lands in shell history).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import closing
from typing import TYPE_CHECKING, Annotated, cast

import typer

from claudesec.cli._common import load
from claudesec.errors import (
    ClaudesecError,
    CommandNotExecutable,
    CommandNotFound,
    ExitCode,
    UsageError,
    one_line,
)

if TYPE_CHECKING:
    from claudesec.console import Console
    from claudesec.keys.rotation import AbandonResult, KeyManager, KeyResult, RotationReport
    from claudesec.keys.scope import PlanEntry
    from claudesec.keys.status import StatusReport
    from claudesec.stores.secretsmanager import SecretsManagerStore

app = typer.Typer(
    help="Rotate, scope and revoke Anthropic API keys in AWS Secrets Manager or the keyring.",
    no_args_is_help=True,
)
pool_app = typer.Typer(help="Spare keys waiting to be rotated in.", no_args_is_help=True)
scope_app = typer.Typer(
    help="Least-privilege resource policies for the managed secrets.", no_args_is_help=True
)
app.add_typer(pool_app, name="pool")
app.add_typer(scope_app, name="scope")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (for monitoring).")]
KeyIdOption = Annotated[
    str | None,
    typer.Option(
        "--key-id",
        help="The key's id, when several keys share its hint (`keys remote` lists them).",
        metavar="ID",
    ),
]


def _manager(
    ctx: typer.Context, *, admin: bool = True, audit: bool = True, lazy_audit: bool = False
) -> KeyManager:
    from claudesec.keys.factory import open_manager

    return open_manager(load(ctx).config, admin=admin, audit=audit, lazy_audit=lazy_audit)


def _emit_json(data: object) -> None:
    """One JSON document on one line: ``--json >> file.jsonl`` from cron gets a line a run."""
    from claudesec.console import get_console

    get_console().jsonl([data])


def _json_or_error(as_json: bool, command: str, body: Callable[[], int]) -> int:
    """Run ``body``; with ``--json``, a failure (AWS unreachable, a config error, a bug) still
    prints exactly one JSON document on stdout, beside the usual one line on stderr."""
    if not as_json:
        return body()
    try:
        return body()
    except ClaudesecError as exc:
        code, message, hint = int(exc.exit_code), exc.message, exc.hint
        line = exc.user_message()
    except Exception as exc:  # a bug: the monitor must still get its line
        code, message, hint = int(ExitCode.INTERNAL), f"internal error: {type(exc).__name__}", None
        line = f"{message}: {exc} (a bug in claudesec; rerun with CLAUDESEC_DEBUG=1)"
    _emit_json(
        {
            "command": f"keys {command}",
            "exit_code": code,
            "error": {"message": one_line(message), "hint": one_line(hint or "")},
        }
    )
    sys.stderr.write(f"claudesec: error: {one_line(line)}\n")
    return code


def _read_keys(prompt: str, *, many: bool = False) -> list[str]:
    """Keys from stdin (one per line) or a hidden prompt on a terminal."""
    if sys.stdin is not None and sys.stdin.isatty():
        import getpass

        raw = [getpass.getpass(f"{prompt}: ")]
    else:
        raw = (sys.stdin.read() if sys.stdin is not None else "").splitlines()
    keys = [line.strip() for line in raw if line.strip() and not line.startswith("#")]
    if not keys:
        raise UsageError("no key given", hint="pipe it on stdin or type it at the prompt")
    if not many and len(keys) > 1:
        raise UsageError("expected one key on stdin, got several lines")
    for number, key in enumerate(keys, start=1):
        if not key.startswith("sk-ant-") or len(key) < 40:
            raise UsageError(
                f"line {number} of the input is not an Anthropic API key",
                hint="keys start with sk-ant-api",
            )
        if key.startswith("sk-ant-admin"):
            raise UsageError(f"line {number} is an Admin API key; only API keys are managed")
    return keys


# --------------------------------------------------------------------------- add, pool


@app.command("add")
def add_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Name of the managed key (secret prefix added).")],
    key_id: KeyIdOption = None,
) -> int:
    """Start managing the key consumers use now (read from stdin or a hidden prompt)."""
    from claudesec.console import get_console

    key = _read_keys(f"API key for {name}")[0]
    with closing(_manager(ctx)) as manager:
        added = manager.add(name, key, key_id=key_id)
    get_console().out(
        f"{manager.secret_name(name)}: managing {added.key_id} ({added.hint}) "
        f"in {manager.store.kind}"
    )
    return int(ExitCode.OK)


@pool_app.command("add")
def pool_add_command(
    ctx: typer.Context,
    key_id: KeyIdOption = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Load a key even though it looks in use (a managed secret's version, recent "
            "calls in the usage report or the audit log): it is deactivated at once.",
        ),
    ] = False,
) -> int:
    """Load spare keys (one per line on stdin, or a hidden prompt) and deactivate them.

    A key in use is refused (exit 2) unless --force: deactivating it would break its clients.
    """
    from claudesec.console import get_console

    keys = _read_keys("Spare API key", many=True)
    if key_id is not None and len(keys) > 1:
        raise UsageError("--key-id applies to a single key")
    console = get_console()
    other_use = _audit_log_use(ctx)
    with closing(_manager(ctx)) as manager:
        for key in keys:
            spare, added = manager.pool_add(key, key_id=key_id, force=force, other_use=other_use)
            state = "added, deactivated" if added else "already in the pool"
            console.out(f"{spare.key_id} ({spare.hint}): {state}")
        size = len(manager.pool.read().unclaimed())
    console.info(f"pool {manager.settings.pool_secret}: {size} spare key(s)")
    return int(ExitCode.OK)


def _audit_log_use(ctx: typer.Context) -> Callable[[str], str | None]:
    """A check of the local audit log: was this key put in service recently?"""
    from datetime import timedelta

    from claudesec.audit.store import AuditStore, default_store_path
    from claudesec.keys.model import utcnow
    from claudesec.keys.usage import put_in_service_since

    config = load(ctx).config

    def check(key_id: str) -> str | None:
        if not default_store_path(config.audit).exists():
            return None
        since = utcnow() - timedelta(days=max(config.keys.max_age_days, 1))
        with (
            AuditStore.from_config(config.audit, readonly=True) as store,
            store.snapshot() as conn,
        ):
            return put_in_service_since(conn, key_id, int(since.timestamp() * 1e9))

    return check


@pool_app.command("list")
def pool_list_command(ctx: typer.Context, as_json: JsonOption = False) -> int:
    """List the spare keys (hints only) and their claims."""
    return _json_or_error(as_json, "pool list", lambda: _pool_list(ctx, as_json))


def _pool_list(ctx: typer.Context, as_json: bool) -> int:
    from claudesec.console import get_console

    manager = _manager(ctx, admin=False, audit=False)
    doc = manager.pool.read()
    rows = [
        {
            "key_id": s.key_id,
            "hint": s.hint,
            "workspace": s.workspace,
            "added_at": s.added_at,
            "claimed_by": s.claim.secret if s.claim else None,
        }
        for s in doc.spares
    ]
    console = get_console()
    if as_json:
        _emit_json({"pool": manager.settings.pool_secret, "spares": rows})
    else:
        console.table(
            ["key id", "hint", "workspace", "added", "claimed by"],
            [
                [r["key_id"], r["hint"], r["workspace"], r["added_at"], r["claimed_by"]]
                for r in rows
            ],
        )
    return int(ExitCode.OK)


# --------------------------------------------------------------------------- rotate


@app.command("rotate")
def rotate_command(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="The managed key to rotate.")] = None,
    all_keys: Annotated[bool, typer.Option("--all", help="Rotate every managed key.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would happen; change nothing.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Rotate even keys that are not due yet.")
    ] = False,
    abandon_pending: Annotated[
        bool,
        typer.Option(
            "--abandon-pending",
            help="Give up NAME's pending rotation (its spare is archived, deleted or refused): "
            "drop AWSPENDING, return a healthy spare to the pool deactivated, discard a bad "
            "one. AWSCURRENT is not touched.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> int:
    """Rotate due keys to spares from the pool (resumes interrupted rotations).

    Exit 0: all rotated or not due; 1: a key is due but cannot rotate until you act (empty
    pool, or a pending rotation stuck on a bad spare: the line names the command); 2: refused
    (e.g. a revoked key); 3: a service failed (rerun to resume); 4: some keys rotated and
    some failed.
    """

    def body() -> int:
        if (name is None) == (not all_keys):
            raise UsageError("name one key or pass --all")
        if abandon_pending:
            if name is None or dry_run or force:
                raise UsageError(
                    "--abandon-pending takes one key NAME, without --all/--dry-run/--force"
                )
            return _abandon(ctx, name, as_json)
        with closing(_manager(ctx, admin=not dry_run, audit=not dry_run)) as manager:
            names = None if all_keys else [name or ""]
            report = manager.rotate(names, force=force, dry_run=dry_run)
        _render_report(report, as_json)
        return int(report.exit_code)

    return _json_or_error(as_json, "rotate", body)


def _abandon(ctx: typer.Context, name: str, as_json: bool) -> int:
    from claudesec.console import get_console

    with closing(_manager(ctx)) as manager:
        result = manager.abandon_pending(name)
    console = get_console()
    if as_json:
        _emit_json(result.to_json())
        return int(ExitCode.OK)
    _render_abandon(console, result)
    return int(ExitCode.OK)


def _render_abandon(console: Console, result: AbandonResult) -> None:
    if result.nothing_pending:
        console.out(f"{result.name}: no pending rotation; nothing to abandon")
        return
    console.out(
        f"{result.name}: pending rotation abandoned; AWSCURRENT unchanged ({result.current_key_id})"
    )
    for key in result.keys:
        if key.disposition == "returned":
            console.out(f"{key.key_id} ({key.key_hint}): back in the pool, deactivated")
        elif key.disposition == "discarded":
            console.warn(f"{key.key_id} ({key.key_hint}): removed from the pool: {key.reason}")
        else:
            console.out(f"{key.key_id} ({key.key_hint}): claim dropped; {key.reason}")


def _render_report(report: RotationReport, as_json: bool) -> None:
    from claudesec.console import get_console

    console = get_console()
    for notice in report.notices:
        console.warn(notice)
    if as_json:
        _emit_json(report.to_json())
        return
    for result in report.results:
        _render_result(console, result)
    size = "unknown" if report.pool_size is None else report.pool_size
    console.info(f"pool: {size} spare key(s); exit {int(report.exit_code)}")


_STYLES = {
    "rotated": "green",
    "not_due": "dim",
    "locked": "yellow",
    "pool_empty": "red",
    "failed": "bold red",
    "rolled_back": "green",
    "already_done": "dim",
    "revoked": "green",
}


def _show_result(result: KeyResult, as_json: bool) -> None:
    from claudesec.console import get_console

    if as_json:
        _emit_json(result.to_json())
    else:
        _render_result(get_console(), result)


def _render_result(console: Console, result: KeyResult) -> None:
    if result.outcome in ("rolled_back", "already_done", "revoked"):
        # The message says what happened, in full (the version moved to, or found there).
        console.styled(f"{result.name}: {result.message}", _STYLES[result.outcome])
        return
    line = f"{result.name}: {result.outcome.replace('_', ' ')}"
    if result.key_id:
        line += f" {result.key_id} ({result.key_hint})"
    if result.rotated and result.previous_key_id:
        line += f" replaces {result.previous_key_id}"
    if result.retired:
        line += f"; retired {', '.join(result.retired)}"
    if result.outcome == "not_due" and result.due_at:
        line += f"; due {result.due_at}"
    if result.message:
        line += f"; {result.message}"
    console.styled(line, _STYLES.get(result.outcome, ""))


# --------------------------------------------------------------------------- rollback, revoke


@app.command("rollback")
def rollback_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The managed key.")],
    to_version: Annotated[
        str | None,
        typer.Option(
            "--to", help="The version to move AWSCURRENT to (default: AWSPREVIOUS).", metavar="V"
        ),
    ] = None,
    as_json: JsonOption = False,
) -> int:
    """Move AWSCURRENT back to AWSPREVIOUS (reactivating the old key if needed).

    Safe to retry: a rerun that finds AWSCURRENT already on the version rolled back to
    reports success and moves nothing. --to names the version explicitly.
    """

    def body() -> int:
        with closing(_manager(ctx)) as manager:
            result = manager.rollback(name, to_version=to_version)
        _show_result(result, as_json)
        return int(ExitCode.OK)

    return _json_or_error(as_json, "rollback", body)


@app.command("revoke")
def revoke_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The managed key whose current key leaked.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    key_id: Annotated[
        str | None,
        typer.Option(
            "--key-id",
            help="The key to revoke (AWSCURRENT or AWSPREVIOUS of NAME); needed to revoke a "
            "key that replaced a revoked one over an hour ago.",
            metavar="ID",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> int:
    """Emergency: deactivate the current key now and promote a spare.

    Consumers fail until they re-read the secret. Exit 1 if no spare was left. A rerun
    finishes an interrupted revoke and never revokes the key that replaced it.
    """

    def body() -> int:
        if not yes:
            if not (sys.stdin is not None and sys.stdin.isatty()):
                raise UsageError("revoke needs --yes when not run on a terminal")
            typer.confirm(f"Deactivate the current key of {name} now?", abort=True)
        with closing(_manager(ctx)) as manager:
            result = manager.revoke(name, key_id=key_id)
        _show_result(result, as_json)
        if result.outcome == "pool_empty":
            return int(ExitCode.FOUND)
        if result.outcome == "failed":
            return result.exit_code or int(ExitCode.EXTERNAL)
        return int(ExitCode.OK)

    return _json_or_error(as_json, "revoke", body)


@app.command("forget")
def forget_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A managed key deleted on purpose.")],
) -> int:
    """Stop expecting NAME: runs that do not find a key they saw before fail (exit 2),
    because a wrong region or account must not look like "no keys"."""
    from claudesec.console import get_console

    manager = _manager(ctx, admin=False, audit=False)
    secret = manager.secret_name(name)
    if manager.seen is None or not manager.seen.forget(secret):
        get_console().out(f"{secret}: was not expected; nothing to forget")
        return int(ExitCode.OK)
    get_console().out(f"{secret}: forgotten; runs no longer expect it")
    return int(ExitCode.OK)


# --------------------------------------------------------------------------- exec

_ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"


@app.command(
    "exec",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def exec_command(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Argument(help="The managed key to hand to the command (not with --federation)."),
    ] = None,
    env_var: Annotated[
        str,
        typer.Option("--env", help="Environment variable that receives the key.", metavar="VAR"),
    ] = "ANTHROPIC_API_KEY",
    federation: Annotated[
        bool,
        typer.Option(
            "--federation",
            help="No key: the command gets the SDK's federation variables (rule, organisation, "
            "identity token file) and exchanges its own short-lived tokens.",
        ),
    ] = False,
    mint: Annotated[
        bool,
        typer.Option(
            "--mint",
            help="With --federation: exchange once now and give the command the access token "
            "as ANTHROPIC_AUTH_TOKEN (for tools that do not speak federation).",
        ),
    ] = False,
    rule_id: Annotated[
        str | None,
        typer.Option("--rule-id", help="Federation rule (default $ANTHROPIC_FEDERATION_RULE_ID)."),
    ] = None,
    organization_id: Annotated[
        str | None,
        typer.Option(
            "--organization-id", help="Organisation UUID (default $ANTHROPIC_ORGANIZATION_ID)."
        ),
    ] = None,
    identity_token_file: Annotated[
        str | None,
        typer.Option(
            "--identity-token-file",
            help="The workload's OIDC token file (default $ANTHROPIC_IDENTITY_TOKEN_FILE).",
        ),
    ] = None,
) -> int:
    """Run a command with the current key in its environment: `keys exec NAME -- CMD ARGS...`,
    or with no key at all: `keys exec --federation -- CMD ARGS...`.

    The credential goes into the child's environment only, never argv or output (argv is
    readable by every user of the machine). The child does not inherit the Admin API key
    variable; on federation it inherits no static key either (it would shadow the chain).
    Exit: the command's own exit code (128+N if killed by signal N).
    """
    import os
    import re
    import subprocess

    command = list(ctx.args)
    if federation and name is not None:
        # With --federation there is no NAME: click hands the command's first word (after
        # "--") to the NAME argument, so it goes back to the front of the command.
        command, name = [name, *command], None
    usage = (
        "claudesec keys exec --federation -- CMD ARGS..."
        if federation or not name
        else f"claudesec keys exec {name} -- CMD ARGS..."
    )
    if not federation and not name:
        raise UsageError(
            "give a managed key NAME or --federation", hint="claudesec keys exec --help"
        )
    if not command:
        raise UsageError("no command given", hint=usage)
    if mint and not federation:
        raise UsageError("--mint goes with --federation")
    if not re.fullmatch(_ENV_NAME, env_var):
        raise UsageError(f"--env {env_var!r} is not a valid environment variable name")
    config = load(ctx).config
    scheme, _, admin_var = config.anthropic.admin_key_source.partition(":")
    if federation:
        from claudesec.keys.federated_exec import Workload, federated_environment

        workload = Workload.resolve(
            rule_id=rule_id,
            organization_id=organization_id,
            identity_token_file=identity_token_file,
            environ=os.environ,
        )
        env = federated_environment(
            os.environ, workload, mint=mint, base_url=config.anthropic.base_url
        )
        if scheme == "env":
            env.pop(admin_var, None)
    else:
        from claudesec.keys import current_key

        assert name is not None
        key = current_key(name, config, ttl_s=0)
        env = dict(os.environ)
        if scheme == "env" and admin_var != env_var:
            # The command is an application, not the rotation job: least privilege.
            env.pop(admin_var, None)
        env[env_var] = key
    try:
        # argv comes from the operator's own command line; no shell is involved.
        code = subprocess.call(command, env=env)
    except FileNotFoundError:
        raise CommandNotFound(
            f"command not found: {command[0]}", hint="check the name and PATH"
        ) from None
    except PermissionError:
        raise CommandNotExecutable(
            f"command not executable: {command[0]}", hint="check its permissions (chmod +x)"
        ) from None
    return code if code >= 0 else 128 - code


# --------------------------------------------------------------------------- status, remote


@app.command("status")
def status_command(
    ctx: typer.Context,
    as_json: JsonOption = False,
    offline: Annotated[
        bool, typer.Option("--offline", help="Skip the Admin API (store and pool only).")
    ] = False,
) -> int:
    """Age, due date, stages and Anthropic status of each key; pool size; warnings.

    Online, it first finishes any revoke a previous run left undone. Exit 1 when a key is
    past its max age, a revoked key was found working (or re-enabled in the Console), a
    current key is revoked or not active, or a rotation was left unfinished.
    """

    def body() -> int:
        from claudesec.keys.status import status

        with closing(_manager(ctx, admin=not offline, lazy_audit=True)) as manager:
            report = status(manager, remote=not offline)
        if as_json:
            _emit_json(report.to_json())
            return int(report.exit_code)
        _render_status(report)
        return int(report.exit_code)

    return _json_or_error(as_json, "status", body)


def _render_status(report: StatusReport) -> None:
    from claudesec.console import get_console

    console = get_console()
    console.table(
        [
            "key",
            "key id",
            "hint",
            "age (days)",
            "due",
            "stages",
            "anthropic",
            "expires",
            "scope",
            "principal",
        ],
        [
            [
                k.name,
                k.key_id,
                k.key_hint,
                f"{k.age_days:.1f}",
                k.due_at + (" OVERDUE" if k.overdue else ""),
                " ".join(f"{s.removeprefix('AWS')}={i}" for s, i in k.stages.items()),
                k.anthropic_status,
                "NEVER" if k.never_expires else (k.expires_at or ""),
                k.scope,
                k.principal,
            ]
            for k in report.keys
        ],
    )
    console.info(f"pool: {report.pool_size} spare key(s)")
    for warning in report.warnings:
        console.warn(warning)


@app.command("remote")
def remote_command(ctx: typer.Context, as_json: JsonOption = False) -> int:
    """The organisation's API keys from the Admin API, marked managed, spare, retiring,
    retired, unmanaged or orphaned."""

    def body() -> int:
        from claudesec.console import get_console
        from claudesec.keys.status import remote_inventory

        entries = remote_inventory(_manager(ctx, audit=False))
        if as_json:
            _emit_json([e.to_json() for e in entries])
            return int(ExitCode.OK)
        get_console().table(
            [
                "key id",
                "name",
                "status",
                "hint",
                "expires",
                "scope",
                "principal",
                "marking",
                "where",
            ],
            [
                [
                    e.key.id,
                    e.key.name,
                    e.key.status,
                    e.key.partial_key_hint,
                    e.key.expires_at or "NEVER",
                    e.key.scope,
                    e.key.principal,
                    e.marking,
                    e.secret,
                ]
                for e in entries
            ],
        )
        return int(ExitCode.OK)

    return _json_or_error(as_json, "remote", body)


# --------------------------------------------------------------------------- scope


def _scope_plan(ctx: typer.Context) -> tuple[SecretsManagerStore, list[PlanEntry]]:
    from claudesec.keys.scope import plan
    from claudesec.stores.secretsmanager import SecretsManagerStore

    config = load(ctx).config
    manager = _manager(ctx, admin=False, audit=False)
    store = manager.store
    if not isinstance(store, SecretsManagerStore):
        raise UsageError("`keys scope` applies to AWS Secrets Manager (keys.store)")
    secrets = [s.name for s in manager.managed()]
    if _exists(store, config.keys.pool_secret):
        secrets.append(config.keys.pool_secret)
    short = {s: manager.short_name(s) for s in secrets}
    return store, plan(store, config.keys, secrets, short)


def _exists(store: SecretsManagerStore, name: str) -> bool:
    from claudesec.stores.interface import SecretNotFound

    try:
        store.describe(name)
    except SecretNotFound:
        return False
    return True


@scope_app.command("plan")
def scope_plan_command(ctx: typer.Context, as_json: JsonOption = False) -> int:
    """Show the policy each secret should have, as a diff against the applied one."""
    import json

    from claudesec.console import get_console

    _, typed = _scope_plan(ctx)
    console = get_console()
    if as_json:
        console.json(
            [
                {
                    "secret": e.secret,
                    "changed": e.changed,
                    "policy": json.loads(e.desired),
                    "findings": [f.to_json() for f in e.findings],
                }
                for e in typed
            ]
        )
    else:
        for entry in typed:
            console.out(entry.diff() if entry.changed else f"{entry.secret}: up to date")
    changed = sum(e.changed for e in typed)
    console.info(f"{changed} of {len(typed)} secret(s) would change")
    return int(ExitCode.OK)


@scope_app.command("lint")
def scope_lint_command(
    ctx: typer.Context,
    path: Annotated[
        str | None,
        typer.Argument(help="A policy JSON file to lint (default: the applied policies)."),
    ] = None,
    as_json: JsonOption = False,
) -> int:
    """Flag public or wildcard principals, wildcard actions, a missing deny, readers that
    can write. Exit 1 on any error finding."""
    from pathlib import Path

    from claudesec.console import get_console
    from claudesec.keys.scope import Finding, lint_policy

    config = load(ctx).config
    results: list[tuple[str, list[Finding]]] = []
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
        results.append(
            (
                path,
                lint_policy(
                    text,
                    # A file names no secret: any reader the config names is acceptable.
                    readers=(
                        *config.keys.scope_readers,
                        *(r for rs in config.keys.scope_secret_readers.values() for r in rs),
                    ),
                    break_glass=config.keys.scope_break_glass,
                    rotator=config.keys.scope_rotator,
                ),
            )
        )
    else:
        _, entries = _scope_plan(ctx)
        for entry in entries:
            if entry.applied is None:
                results.append(
                    (entry.secret, [Finding("no-policy", "error", "no resource policy")])
                )
                continue
            results.append(
                (
                    entry.secret,
                    lint_policy(
                        entry.applied,
                        readers=entry.spec.readers,
                        break_glass=entry.spec.break_glass,
                        rotator=entry.spec.rotator,
                    ),
                )
            )
    console = get_console()
    if as_json:
        console.json({name: [f.to_json() for f in found] for name, found in results})
    else:
        for name, found in results:
            if not found:
                console.out(f"{name}: ok")
            for finding in found:
                console.out(f"{name}: {finding.severity}: {finding.rule}: {finding.message}")
    errors = any(f.severity == "error" for _, found in results for f in found)
    return int(ExitCode.FOUND if errors else ExitCode.OK)


@scope_app.command("apply")
def scope_apply_command(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> int:
    """Apply the planned policies (with BlockPublicPolicy); refuses policies with lint errors."""
    from claudesec.console import get_console
    from claudesec.keys.scope import apply

    store, typed = _scope_plan(ctx)
    console = get_console()
    if not yes:
        if not (sys.stdin is not None and sys.stdin.isatty()):
            raise UsageError("apply needs --yes when not run on a terminal")
        for entry in typed:
            if entry.changed:
                console.out(entry.diff())
        typer.confirm("Apply these policies?", abort=True)
    applied = apply(store, typed)
    for name in applied:
        console.out(f"{name}: policy applied")
    console.info(f"{len(applied)} polic(ies) applied, {len(typed) - len(applied)} unchanged")
    return int(ExitCode.OK)


# --------------------------------------------------------------------------- usage


@app.command("usage")
def usage_command(
    ctx: typer.Context,
    since: Annotated[
        str, typer.Option("--since", help="Start: a duration (30d) or a date.", metavar="WHEN")
    ] = "30d",
    by: Annotated[
        str, typer.Option("--by", help="Group by key, workspace or model.", metavar="GROUP")
    ] = "key",
    reconcile_log: Annotated[
        bool,
        typer.Option(
            "--reconcile",
            help="Compare tokens per model with the local audit log; exit 1 on a gap.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> int:
    """Usage and cost from the Admin API's usage report."""
    from datetime import UTC, datetime

    from claudesec.console import get_console
    from claudesec.keys.factory import admin_client
    from claudesec.keys.usage import GroupBy, audited_tokens, reconcile, usage
    from claudesec.timeparse import parse_time_ns

    if by not in ("key", "workspace", "model"):
        raise UsageError(f"--by must be key, workspace or model, got {by!r}")
    config = load(ctx).config
    since_ns = parse_time_ns(since)
    start = datetime.fromtimestamp(since_ns / 1e9, UTC)
    admin = admin_client(config)
    group: GroupBy = cast("GroupBy", by)  # checked above
    lines = usage(admin, since=start, by=group, prices=config.audit.prices)
    gaps = []
    if reconcile_log:
        from claudesec.audit.store import AuditStore, default_store_path

        model_lines = lines if by == "model" else usage(admin, since=start, by="model")
        audited: dict[str, int] = {}
        if default_store_path(config.audit).exists():
            with (
                AuditStore.from_config(config.audit, readonly=True) as store,
                store.snapshot() as conn,
            ):
                audited = audited_tokens(conn, since_ns)
        gaps = reconcile(model_lines, audited)
    console = get_console()
    if as_json:
        console.json(
            {
                "since": start.isoformat(),
                "by": by,
                "usage": [line.to_json() for line in lines],
                "unaudited": [gap.to_json() for gap in gaps] if reconcile_log else None,
            }
        )
    else:
        console.table(
            [by, "input tokens", "output tokens", "cost (USD)"],
            [
                [
                    line.group,
                    line.input_tokens,
                    line.output_tokens,
                    "" if line.cost_usd is None else f"{line.cost_usd:.4f}",
                ]
                for line in lines
            ],
        )
        for gap in gaps:
            console.warn(
                f"{gap.model}: Anthropic counted {gap.api_tokens} tokens, the audit log "
                f"{gap.audited_tokens}: {gap.unaudited_tokens} tokens bypassed the audited client"
            )
    return int(ExitCode.FOUND if gaps else ExitCode.OK)
