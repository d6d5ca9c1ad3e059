"""`claudesec hook`: Install the claudesec pre-commit hook into a git repository."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(
    help="Install the claudesec pre-commit hook into a git repository.", no_args_is_help=True
)

_REPO = typer.Option(
    "--repo", "-C", help="The repository (default: the current directory).", metavar="PATH"
)


@app.command("install")
def install(
    repo: Annotated[str, _REPO] = ".",
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace a pre-commit hook claudesec did not write (it is kept as a backup).",
        ),
    ] = False,
) -> int:
    """Write .git/hooks/pre-commit so every commit runs `claudesec scan --staged`."""
    from claudesec.console import get_console
    from claudesec.scan.hook import install_hook

    change = install_hook(repo, force=force)
    console = get_console()
    message = f"{change.action} {change.path}"
    if change.backup is not None:
        message += f" (previous hook kept as {change.backup})"
    console.out(message)
    return 0


@app.command("uninstall")
def uninstall(repo: Annotated[str, _REPO] = ".") -> int:
    """Remove the claudesec pre-commit hook (restoring a hook it replaced)."""
    from claudesec.console import get_console
    from claudesec.scan.hook import uninstall_hook

    change = uninstall_hook(repo)
    get_console().out(f"{change.action} {change.path}")
    return 0
