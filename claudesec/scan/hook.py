"""``claudesec hook install``: a plain git pre-commit hook for repositories without the
pre-commit framework.

The hook runs ``python -m claudesec.scan --staged`` with the interpreter claudesec is installed
in (so it works whatever PATH the committing tool has), falling back to ``claudesec`` on PATH.
A hook that claudesec did not write is never overwritten without ``--force``, and then it is
kept beside ours as a backup that ``hook uninstall`` restores.
"""

from __future__ import annotations

import os
import shlex
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from claudesec.errors import StoreError, UsageError
from claudesec.scan.sources._git import run_git

MARKER = "# claudesec-hook v1"
BACKUP_SUFFIX = ".claudesec-backup"


@dataclass(frozen=True)
class HookChange:
    """What ``install``/``uninstall`` did."""

    path: Path
    action: str  # installed | updated | unchanged | removed | restored | absent
    backup: Path | None = None


def hook_script(python: str | None = None) -> str:
    interpreter = shlex.quote(python or sys.executable)
    return (
        "#!/bin/sh\n"
        f"{MARKER}: installed by `claudesec hook install`; `claudesec hook uninstall` removes it.\n"
        "# Blocks a commit whose staged content holds a leaked key or other secret.\n"
        f"if [ -x {interpreter} ]; then\n"
        f"    exec {interpreter} -m claudesec.scan --staged\n"
        "fi\n"
        "exec claudesec scan --staged\n"
    )


def hook_path(repo: str = ".") -> Path:
    """Where git looks for the pre-commit hook (honours ``core.hooksPath``)."""
    out = run_git(["rev-parse", "--git-path", "hooks/pre-commit"], repo).decode().strip()
    path = Path(out)
    return path if path.is_absolute() else Path(repo) / path


def is_ours(path: Path) -> bool:
    try:
        return MARKER in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def install_hook(repo: str = ".", *, force: bool = False, python: str | None = None) -> HookChange:
    path = hook_path(repo)
    script = hook_script(python)
    backup: Path | None = None
    action = "installed"
    if path.exists() or path.is_symlink():
        if is_ours(path):
            if path.read_text(encoding="utf-8", errors="replace") == script:
                return HookChange(path, "unchanged")
            action = "updated"
        elif not force:
            raise UsageError(
                f"{path} already exists and was not written by claudesec",
                hint="add `claudesec scan --staged` to it yourself, or use --force "
                "(the existing hook is kept as a backup)",
            )
        else:
            backup = path.with_name(path.name + BACKUP_SUFFIX)
            os.replace(path, backup)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(script, encoding="utf-8")
        mode = path.stat().st_mode
        path.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return HookChange(path, action, backup)


def uninstall_hook(repo: str = ".") -> HookChange:
    path = hook_path(repo)
    backup = path.with_name(path.name + BACKUP_SUFFIX)
    if not path.exists():
        return HookChange(path, "absent")
    if not is_ours(path):
        raise UsageError(
            f"{path} was not written by claudesec; leaving it alone",
            hint="remove it yourself if you no longer want it",
        )
    try:
        path.unlink()
        if backup.exists():
            os.replace(backup, path)
            return HookChange(path, "restored", backup)
    except OSError as exc:
        raise StoreError(f"cannot remove {path}: {exc.strerror or exc}") from exc
    return HookChange(path, "removed")
