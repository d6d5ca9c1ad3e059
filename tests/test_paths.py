from __future__ import annotations

import stat
from pathlib import Path

import pytest

from claudesec.errors import ConfigError, ExitCode
from claudesec.paths import create_private_file, ensure_home, home_dir


def test_home_comes_from_claudesec_home(tmp_path: Path) -> None:
    assert home_dir({"CLAUDESEC_HOME": str(tmp_path / "h")}) == tmp_path / "h"


def test_default_home_is_the_user_data_dir(home: Path) -> None:
    assert home_dir({}).is_relative_to(home)


def test_ensure_home_creates_a_private_directory(tmp_path: Path) -> None:
    target = tmp_path / "h"
    assert ensure_home({"CLAUDESEC_HOME": str(target)}) == target
    assert stat.S_IMODE(target.stat().st_mode) == 0o700


def test_unusable_home_is_a_clear_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        ensure_home({"CLAUDESEC_HOME": str(blocker / "h")})
    assert info.value.exit_code == ExitCode.USAGE
    assert "set CLAUDESEC_HOME to a writable directory" in str(info.value)


def test_home_that_is_a_file_is_rejected(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"cannot create|not a directory"):
        ensure_home({"CLAUDESEC_HOME": str(blocker)})


def test_private_files_are_0600(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    create_private_file(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
