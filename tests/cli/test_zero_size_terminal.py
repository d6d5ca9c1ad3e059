"""Output survives a terminal that reports its size as 0x0 (``script``, some CI runners and
containers): rich given width 0 printed nothing but the last line. Each command runs under a
real pseudo-terminal set to 0 rows and 0 columns."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from claudesec.console import DEFAULT_WIDTH, terminal_width
from tests.fixtures.cli import REPO_ROOT
from tests.fixtures.keys import KeyFactory


def run_in_pty(*args: str, cwd: Path, columns: str | None = None) -> tuple[int, str]:
    """``claudesec ARGS`` with stdin/stdout/stderr on a pty of size 0x0; (exit code, output)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(PYTHONPATH=str(REPO_ROOT), TERM="xterm", NO_COLOR="1")
    if columns is not None:
        env["COLUMNS"] = columns
    proc = subprocess.Popen(
        [sys.executable, "-m", "claudesec", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=cwd,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    code = proc.wait(timeout=240)
    os.close(master)
    return code, b"".join(chunks).decode("utf-8", "replace")


def test_width_falls_back_to_columns_then_80(tmp_path: Path) -> None:
    with open(tmp_path / "not-a-tty", "w", encoding="utf-8") as stream:
        assert terminal_width(stream, {}) == DEFAULT_WIDTH == 80
        assert terminal_width(stream, {"COLUMNS": "132"}) == 132
        assert terminal_width(stream, {"COLUMNS": "0"}) == 80
        assert terminal_width(stream, {"COLUMNS": "wide"}) == 80


@pytest.mark.parametrize("columns", [None, "150"])
def test_scan_findings_are_printed_on_a_zero_size_terminal(
    tmp_path: Path, columns: str | None
) -> None:
    key = KeyFactory(7).anthropic_api()
    (tmp_path / "settings.py").write_text(f'ANTHROPIC_API_KEY = "{key.value}"\n', encoding="utf-8")
    code, output = run_in_pty("scan", ".", cwd=tmp_path, columns=columns)
    assert code == 1, output
    assert "anthropic-api-key" in output
    assert "settings.py" in output
    assert key.value not in output


def test_tables_are_printed_on_a_zero_size_terminal(tmp_path: Path) -> None:
    code, output = run_in_pty("config", "show", cwd=tmp_path)
    assert code == 0, output
    assert "keys.store" in output
    assert "audit.retention_days" in output


def test_drill_results_are_printed_on_a_zero_size_terminal(tmp_path: Path) -> None:
    code, output = run_in_pty("drill", "run", "scan-dotenv", cwd=tmp_path)
    assert code == 0, output
    assert "scan-dotenv" in output
    assert "blocked" in output
