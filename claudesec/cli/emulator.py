"""`claudesec emulator`: a loopback Anthropic API for offline tests and drills."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Run a loopback Anthropic API emulator (offline tests and drills).", no_args_is_help=True
)
