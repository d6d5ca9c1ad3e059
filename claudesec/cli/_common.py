"""Small pieces shared by the command modules: loading config from the global options, the
``--format table|json`` choice, and the ``--store`` option with the audit store it names."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from claudesec.audit.store import AuditStore
    from claudesec.config import AuditConfig, LoadedConfig
    from claudesec.config_scan import ScanSettings
    from claudesec.console import Console


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


def load_scan(ctx: typer.Context) -> ScanSettings:
    """What a scan reads of the configuration: ``[scan]`` alone."""
    from claudesec.config_scan import load_scan_config

    return load_scan_config(config_path(ctx))


# --------------------------------------------------------------------------- table or json

TableOrJsonOption = Annotated[
    str | None,
    typer.Option("--format", "-f", help="table or json (default: table on a terminal)."),
]


def table_or_json(console: Console, fmt: str | None) -> str:
    """The ``--format`` asked for: by default a table on a terminal and JSON when piped."""
    from claudesec.errors import UsageError

    chosen = fmt or ("table" if console.rich_output else "json")
    if chosen not in ("table", "json"):
        raise UsageError(f"unknown format {chosen!r}", hint="use table or json")
    return chosen


# --------------------------------------------------------------------------- audit store

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="Audit store file (default: audit.store_path, or audit.db in CLAUDESEC_HOME).",
        metavar="PATH",
    ),
]


def store_path(audit: AuditConfig, store: str | None) -> Path:
    """The file ``--store`` names, or the configured default."""
    from claudesec.audit.store import default_store_path

    return Path(store).expanduser() if store else default_store_path(audit)


def open_reader(audit: AuditConfig, store: str | None) -> AuditStore:
    """The store, read-only."""
    from claudesec.audit.store import AuditStore

    return AuditStore.open(
        store_path(audit, store), readonly=True, busy_timeout_ms=audit.busy_timeout_ms
    )


def open_existing_reader(audit: AuditConfig, store: str | None) -> AuditStore | None:
    """The store read-only, or None when it does not exist yet (nothing recorded)."""
    if not store_path(audit, store).exists():
        return None
    return open_reader(audit, store)


def open_writer(audit: AuditConfig, store: str | None) -> AuditStore:
    """The store for writing, with this host's audit keys."""
    from claudesec.audit.secrets import AuditKeys
    from claudesec.audit.store import AuditStore

    return AuditStore.open(
        store_path(audit, store),
        checkpoint_every=audit.checkpoint_every,
        busy_timeout_ms=audit.busy_timeout_ms,
        synchronous=audit.synchronous,
        keys=AuditKeys.from_config(audit),
        app=audit.app,
    )


def require_extra(module: str, extra: str, what: str) -> None:
    """One clear line (exit 2) when an optional dependency group is not installed."""
    import importlib.util

    from claudesec.errors import UsageError

    if importlib.util.find_spec(module) is None:
        raise UsageError(
            f"{what} needs the optional '{extra}' dependencies ({module} is not installed)",
            hint=f"pip install 'claudesec[{extra}]'",
        )
