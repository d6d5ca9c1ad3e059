"""`claudesec emulator`: a loopback Anthropic API for offline tests, drills and demos."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="Run a loopback Anthropic API emulator (offline tests and drills).", no_args_is_help=True
)


@app.command("serve")
def serve(
    port: Annotated[int, typer.Option("--port", "-p", help="TCP port (0 = any free port).")] = 8765,
    host: Annotated[
        str, typer.Option("--host", help="Address to bind; keep it on loopback.")
    ] = "127.0.0.1",
    api_keys: Annotated[
        int | None,
        typer.Option(
            "--api-keys",
            help="Active API keys to create at start (default 1; 0 with --org, whose keys "
            "are part of what is judged).",
        ),
    ] = None,
    admin_keys: Annotated[
        int, typer.Option("--admin-keys", help="Admin API keys to create at start.")
    ] = 1,
    keys_file: Annotated[
        Path | None,
        typer.Option(
            "--keys-file",
            help="Write the created keys as JSON to this file (mode 0600), for clients and drills.",
        ),
    ] = None,
    open_mode: Annotated[
        bool, typer.Option("--open", help="Accept any key (no authentication).")
    ] = False,
    org: Annotated[
        str | None,
        typer.Option(
            "--org",
            help="Seed an organisation for `org inventory` / `org check`: messy, clean, or "
            "clean+CHECK-ID (clean with the one defect that fails that check).",
            metavar="NAME",
        ),
    ] = None,
    control_token: Annotated[
        str | None,
        typer.Option(
            "--control-token-env",
            help="Require the control API token held in this environment variable.",
            metavar="VAR",
        ),
    ] = None,
) -> int:
    """Serve the emulated API until Ctrl-C. Keys are never printed: use --keys-file."""
    import os

    from claudesec.console import get_console
    from claudesec.emulator import Emulator, EmulatorState, serve_forever
    from claudesec.errors import ExternalServiceError, UsageError
    from claudesec.paths import create_private_file
    from claudesec.redact import redact

    token = None
    if control_token:
        token = os.environ.get(control_token)
        if not token:
            raise UsageError(
                f"environment variable {control_token} is empty", hint="export the token first"
            )
    state = EmulatorState(open_mode=open_mode)
    if org is not None:
        from claudesec.emulator.org_fixtures import ORG_NAMES
        from claudesec.emulator.orgs import seed_org

        try:
            seed_org(state, org)
        except ValueError:
            raise UsageError(
                f"unknown organisation {org!r}",
                hint=f"use {' or '.join(ORG_NAMES)}, or clean+CHECK-ID for one check's "
                "failing variant (`claudesec org check --list`)",
            ) from None
    if api_keys is None:
        api_keys = 0 if org is not None else 1
    issued = [("api", state.add_key("api", name=f"emulator-api-{i + 1}")) for i in range(api_keys)]
    issued += [
        ("admin", state.add_key("admin", name=f"emulator-admin-{i + 1}")) for i in range(admin_keys)
    ]
    # With an organisation, an org:admin OAuth token too: service accounts and federation take
    # nothing else, and `org inventory` should read every kind of the seeded organisation.
    oauth = (
        state.add_oauth_token(scopes=("org:admin",), lifetime_s=86_400) if org is not None else None
    )
    console = get_console()

    def ready(emulator: Emulator) -> None:
        if keys_file is not None:
            records = [{"kind": kind, "key_id": key.id, "key": key.secret} for kind, key in issued]
            if oauth is not None:
                records.append({"kind": "oauth", "key_id": "", "key": oauth.access_token})
            create_private_file(keys_file)
            keys_file.write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
        console.out(f"ANTHROPIC_BASE_URL={emulator.base_url}")
        for kind, key in issued:
            console.info(f"{kind} key {key.id} ({redact(key.secret)})")
        if keys_file is not None:
            console.info(f"keys written to {keys_file}")
        if org is not None:
            console.info(f"seeded the {org} organisation")
            if oauth is not None and keys_file is not None:
                console.info(f"an org:admin OAuth token is in {keys_file} (kind 'oauth')")
        console.info("serving; Ctrl-C stops")

    try:
        serve_forever(host, port, state=state, control_token=token, on_ready=ready)
    except OSError as exc:
        raise ExternalServiceError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="choose another --port",
        ) from exc
    return 0


@app.command("seed-audit")
def seed_audit_command(
    ctx: typer.Context,
    days: Annotated[int, typer.Option("--days", help="Days of traffic, ending now.")] = 30,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same events).")] = 19,
    store: Annotated[
        str | None,
        typer.Option(
            "--store", help="Audit store file to write (created if absent).", metavar="PATH"
        ),
    ] = None,
) -> int:
    """Write a month of realistic traffic to an audit store, for `claudesec report`."""
    import time

    from claudesec.cli._common import load, open_writer
    from claudesec.console import get_console
    from claudesec.emulator.seed import seed_audit
    from claudesec.errors import UsageError
    from claudesec.timeparse import format_ns

    if not 1 <= days <= 366:
        raise UsageError("--days must be between 1 and 366")
    with open_writer(load(ctx).config.audit, store) as opened:
        result = seed_audit(opened, days=days, now_ns=time.time_ns(), seed=seed)
        path = opened.path
    get_console().info(
        f"wrote {result.events} events ({format_ns(result.first_ns)} to "
        f"{format_ns(result.last_ns)}), pruned {result.pruned} older ones, to {path}"
    )
    return 0
