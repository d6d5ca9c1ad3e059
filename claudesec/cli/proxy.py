"""`claudesec proxy`: the audit pipeline over HTTP for Claude Code, n8n, MCP servers, any client."""

from __future__ import annotations

from typing import Annotated

import typer

from claudesec.cli._common import load, require_extra

app = typer.Typer(
    help="Run the zero-trust proxy (no subcommand), manage its tokens, print client settings.",
    invoke_without_command=True,
)
token_app = typer.Typer(help="Issue, list and revoke proxy tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")


@app.callback(invoke_without_command=True)
def serve(
    ctx: typer.Context,
    listen: Annotated[
        str | None,
        typer.Option(
            "--listen", "-l", help="HOST:PORT to listen on (proxy.listen).", metavar="ADDR"
        ),
    ] = None,
    upstream: Annotated[
        str | None,
        typer.Option(
            "--upstream",
            help="Anthropic API URL to forward to (proxy.upstream; default the real API).",
            metavar="URL",
        ),
    ] = None,
    tls_cert: Annotated[
        str | None,
        typer.Option("--tls-cert", help="PEM certificate to serve HTTPS.", metavar="PATH"),
    ] = None,
    tls_key: Annotated[
        str | None, typer.Option("--tls-key", help="PEM key of --tls-cert.", metavar="PATH")
    ] = None,
) -> None:
    """Serve until SIGTERM/SIGINT; in-flight streams finish within proxy.shutdown_grace_s."""
    if ctx.invoked_subcommand is not None:
        return
    require_extra("aiohttp", "proxy", "claudesec proxy")
    import logging

    from claudesec.console import get_console
    from claudesec.proxy.service import ServeOptions, build_server

    logging.basicConfig(level=logging.INFO, format="claudesec proxy: %(message)s")
    loaded = load(ctx)
    server = build_server(
        loaded.config,
        ServeOptions(
            listen=listen, upstream=upstream, tls_cert_file=tls_cert, tls_key_file=tls_key
        ),
    )
    console = get_console()

    def ready(running: object) -> None:
        console.info(
            f"claudesec proxy on {server.base_url} -> {server.settings.upstream}; "
            "SIGTERM or Ctrl-C stops"
        )

    server.run(on_ready=ready)
    console.info("claudesec proxy stopped")


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    user: Annotated[str, typer.Option("--user", "-u", help="User the token identifies.")],
    role: Annotated[str, typer.Option("--role", "-r", help="Role from policy.roles.")],
    expires: Annotated[
        str | None,
        typer.Option(
            "--expires",
            help="Lifetime, e.g. 30d or 12h (default proxy.token_default_days).",
            metavar="DURATION",
        ),
    ] = None,
    name: Annotated[
        str, typer.Option("--name", help="A label, e.g. the machine or workflow using it.")
    ] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> int:
    """Issue a token. It is printed once, on stdout; only its hash is kept."""
    from claudesec.console import get_console
    from claudesec.proxy.service import create_token
    from claudesec.timeparse import format_ns

    loaded = load(ctx)
    issued = create_token(loaded.config, user=user, role=role, expires=expires, name=name)
    console = get_console()
    record = issued.record
    expires_at = format_ns(int(record.expires_at * 1e9))
    if as_json:
        console.json(
            {
                "id": record.id,
                "token": issued.secret,
                "user": record.user,
                "role": record.role,
                "expires_at": expires_at,
            }
        )
    else:
        console.out(issued.secret)
        console.info(
            f"token {record.id} for {record.user} as {record.role}, expires {expires_at}; "
            "it is shown only now: give it to the client as ANTHROPIC_API_KEY"
        )
    return 0


@token_app.command("list")
def token_list(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
    show_all: Annotated[
        bool, typer.Option("--all", help="Include expired and revoked tokens.")
    ] = False,
) -> int:
    """Tokens issued (hints only, never the tokens)."""
    from claudesec.console import get_console
    from claudesec.proxy.service import token_rows
    from claudesec.proxy.tokens import TokenStore
    from claudesec.timeparse import format_ns

    loaded = load(ctx)
    rows = token_rows(TokenStore.from_config(loaded.config.proxy))
    if not show_all:
        rows = [r for r in rows if r["status"] == "active"]
    console = get_console()
    if as_json:
        console.jsonl(rows)
        return 0
    if not rows:
        console.info("no proxy tokens" if show_all else "no active proxy tokens (--all for more)")
        return 0
    console.table(
        ["id", "user", "role", "status", "expires", "hint", "name"],
        [
            [
                str(r["id"]),
                str(r["user"]),
                str(r["role"]),
                str(r["status"]),
                format_ns(int(float(str(r["expires_at"])) * 1e9)),
                str(r["hint"]),
                str(r["name"]),
            ]
            for r in rows
        ],
    )
    return 0


@token_app.command("revoke")
def token_revoke(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(help="The token's id (pt_...), from token list.")],
) -> int:
    """Revoke a token; a running proxy refuses it from the next request on."""
    from claudesec.console import get_console
    from claudesec.proxy.tokens import TokenStore

    loaded = load(ctx)
    record = TokenStore.from_config(loaded.config.proxy).revoke(token_id)
    get_console().info(f"revoked {record.id} ({record.user} as {record.role})")
    return 0


@app.command("env")
def env(
    ctx: typer.Context,
    shell: Annotated[str, typer.Option("--shell", help="sh, fish, powershell or dotenv.")] = "sh",
    url: Annotated[
        str | None,
        typer.Option("--url", help="The proxy's URL as clients reach it (proxy.public_url)."),
    ] = None,
) -> int:
    """Print the lines that point Claude Code or another client at the proxy."""
    from claudesec.console import get_console
    from claudesec.proxy.service import env_lines, public_url

    loaded = load(ctx)
    target = (url or public_url(loaded.config.proxy)).rstrip("/")
    console = get_console()
    for line in env_lines(target, shell):
        console.out(line)
    return 0
