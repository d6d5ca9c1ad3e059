"""`claudesec keys`: rotate, scope and revoke Anthropic keys (Secrets Manager or keyring)."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Rotate, scope and revoke Anthropic API keys in AWS Secrets Manager or the keyring.",
    no_args_is_help=True,
)
