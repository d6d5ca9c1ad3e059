"""`claudesec scan`: find leaked secrets."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the ``scan`` command to the root app."""

    @app.command("scan")
    def scan() -> int:
        """Find leaked keys and other secrets."""
        return 0
