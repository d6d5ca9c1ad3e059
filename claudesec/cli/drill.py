"""`claudesec drill`: Chaos drills that leak a key on purpose and prove each defence blocks it."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Chaos drills that leak a key on purpose and prove each defence blocks it.",
    no_args_is_help=True,
)
