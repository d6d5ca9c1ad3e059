"""`claudesec policy`: Inspect and check the role policy of the audited client and proxy."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Inspect and check the role policy of the audited client and proxy.", no_args_is_help=True
)
