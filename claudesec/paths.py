"""Where claudesec keeps its own files: ``$CLAUDESEC_HOME`` or the user's app data dir."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from claudesec.errors import ConfigError

APP_NAME = "claudesec"


def home_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The claudesec home directory (not created)."""
    env = os.environ if environ is None else environ
    if env.get("CLAUDESEC_HOME"):
        return Path(env["CLAUDESEC_HOME"]).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False))


def ensure_home(environ: Mapping[str, str] | None = None) -> Path:
    """The home directory, created 0700 if missing; a clear error if it is not usable."""
    home = home_dir(environ)
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the claudesec home {home}: {exc.strerror or exc}",
            hint="set CLAUDESEC_HOME to a writable directory",
        ) from exc
    if not home.is_dir():
        raise ConfigError(
            f"the claudesec home {home} is not a directory",
            hint="set CLAUDESEC_HOME to a writable directory",
        )
    if not os.access(home, os.W_OK | os.X_OK):
        raise ConfigError(
            f"the claudesec home {home} is not writable",
            hint="fix its permissions or set CLAUDESEC_HOME to a writable directory",
        )
    return home


def create_private_file(path: Path) -> None:
    """Create ``path`` (if missing) with mode 0600 before anything secret is written to it."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)
