"""Stores with varied events, and the CLI with the export commands registered."""

from __future__ import annotations

from pathlib import Path

from claudesec.audit import AuditStore
from tests.audit.helpers import event, open_store


def make_store(path: Path, n: int, **kwargs: object) -> AuditStore:
    store = open_store(path, checkpoint_every=50)
    store.append_many(event(i, **kwargs) for i in range(1, n + 1))
    return store


def register_commands() -> None:
    from claudesec.cli import logs, logs_export

    logs_export.register(logs.app)


def write_config(directory: Path, text: str) -> Path:
    path = directory / "claudesec.toml"
    path.write_text(text, encoding="utf-8")
    return path
