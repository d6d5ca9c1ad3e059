"""`claudesec hook`: Install the claudesec pre-commit hook into a git repository."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Install the claudesec pre-commit hook into a git repository.", no_args_is_help=True
)
