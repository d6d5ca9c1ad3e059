"""`claudesec config`: write, show and validate the configuration."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from claudesec.cli._common import TableOrJsonOption, config_path, load, table_or_json

app = typer.Typer(help="Write, show and validate claudesec.toml.", no_args_is_help=True)


@app.command("init")
def init(
    path: Annotated[
        Path, typer.Argument(help="Where to write the template.", dir_okay=False)
    ] = Path("claudesec.toml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> int:
    """Write a commented claudesec.toml: every setting at its default, and a marked starter
    policy that lets you (your login name) call Claude through the audited client."""
    import getpass

    from claudesec.config import template
    from claudesec.console import get_console
    from claudesec.errors import ExternalServiceError, UsageError

    if path.exists() and not force:
        raise UsageError(f"{path} already exists", hint="use --force to overwrite it")
    try:
        path.write_text(template(starter_user=getpass.getuser()), encoding="utf-8")
    except OSError as exc:
        raise ExternalServiceError(
            f"cannot write {path}: {exc.strerror or exc}", hint="check the directory's permissions"
        ) from exc
    get_console().info(
        f"wrote {path} with a starter policy for {getpass.getuser()} (marked STARTER POLICY); "
        "edit it, then run `claudesec config validate`"
    )
    return 0


@app.command("show")
def show(
    ctx: typer.Context,
    output_format: TableOrJsonOption = None,
) -> int:
    """Print the effective configuration, each value's source, secrets redacted."""
    from claudesec.config import flatten
    from claudesec.console import get_console
    from claudesec.redact import redact

    loaded = load(ctx)
    console = get_console()
    fmt = table_or_json(console, output_format)
    rows: list[tuple[str, Any, str]] = []
    for key, value, secret in flatten(loaded.config):
        shown = _display(value, secret, redact)
        rows.append((key, shown, loaded.sources.get(key, "default")))
    if fmt == "json":
        console.json(
            {
                "file": str(loaded.path) if loaded.path else None,
                "values": {k: {"value": v, "source": s} for k, v, s in rows},
            }
        )
    else:
        console.info(f"config file: {loaded.path or '(none: embedded defaults)'}")
        console.table(("key", "value", "source"), ((k, _text(v), s) for k, v, s in rows))
    return 0


def _display(value: Any, secret: bool, redact: Any) -> Any:
    from claudesec.redact import looks_like_secret

    if isinstance(value, str) and value and (secret or looks_like_secret(value)):
        return redact(value)
    if isinstance(value, tuple):
        return [_display(v, secret, redact) for v in value]
    if isinstance(value, dict):
        return {k: _display(v, secret, redact) for k, v in value.items()}
    return value


def _text(value: Any) -> str:
    import json

    if isinstance(value, str):
        return json.dumps(value)
    return json.dumps(value) if isinstance(value, (list, dict, bool)) else str(value)


@app.command("validate")
def validate(ctx: typer.Context) -> int:
    """Check the configuration: exit 0 when valid; 2 listing every problem (file, line, key)."""
    from claudesec.config_check import check_config
    from claudesec.console import get_console

    console = get_console()
    result = check_config(config_path(ctx))
    where = result.loaded.path or "(no config file: embedded defaults)"
    for problem in result.problems:
        console.error(problem.user_message())
    if result.problems:
        count = len(result.problems)
        console.info(f"{where}: {count} problem{'s' if count > 1 else ''}")
    else:
        console.info(f"{where}: ok")
    return int(result.exit_code)


@app.command("path")
def path_cmd(ctx: typer.Context) -> int:
    """Print the config file in effect (nothing, exit 1, when defaults are used)."""
    from claudesec.config_load import find_config_file

    explicit = config_path(ctx)
    found = explicit or find_config_file(Path.cwd())
    if found is None:
        return 1
    typer.echo(str(found))
    return 0
