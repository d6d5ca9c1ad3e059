"""`claudesec logs`: Tail, query, summarise, verify and prune the audit log."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Tail, query, summarise, verify and prune the audit log.", no_args_is_help=True
)
