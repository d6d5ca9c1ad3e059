"""Small pieces shared by the command modules: loading config from the global options."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from claudesec.config import LoadedConfig


def config_path(ctx: typer.Context) -> Path | None:
    """The ``--config`` given to the top-level command, if any."""
    root = ctx.find_root()
    value = root.params.get("config") if root.params else None
    return Path(value) if value else None


def load(ctx: typer.Context) -> LoadedConfig:
    """The effective configuration for this invocation (cached on the root context)."""
    from claudesec.config import load_config

    root = ctx.find_root()
    cached = root.meta.get("claudesec.config")
    if cached is None:
        cached = load_config(config_path(ctx))
        root.meta["claudesec.config"] = cached
    return cached
