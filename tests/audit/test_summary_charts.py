"""`logs summary` draws bars (user/model/role) and sparklines (day) on a terminal, and stays
plain when piped; labels from the store cannot smuggle terminal escape sequences."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import claudesec.console as console_module
from claudesec.audit import AuditStore
from claudesec.console import Console, Environment

from ..fixtures.cli import RunCli
from .helpers import DAY_NS, event

EVIL = "mallory\x1b]0;owned\x07\x1b[2J"
MARKUP = "[/][bold red]trudy"  # rich markup: a stray closing tag made rich raise


@pytest.fixture
def store(claudesec_home: Path) -> Path:
    from claudesec.config import load_config

    with AuditStore.from_config(load_config().config.audit) as opened:
        for i in range(1, 31):
            opened.append(event(i, time_ns=event(i).time_ns + (i % 5) * DAY_NS))
        opened.append(event(99, user=EVIL))
        opened.append(event(100, user=MARKUP))
    return claudesec_home / "audit.db"


def _tty(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    out = io.StringIO()
    tty = Console(Environment(stdout=out, stderr=io.StringIO(), stdout_isatty=True, width=120))
    monkeypatch.setattr(console_module, "get_console", lambda: tty)
    return out


def test_a_terminal_gets_bars_by_user(
    run_cli: RunCli, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _tty(monkeypatch)
    assert run_cli("logs", "summary", "--by", "user").exit_code == 0
    text = out.getvalue()
    assert "calls by user" in text and "est. cost USD by user" in text
    assert "\u2588" in text  # full block: the longest bar
    assert "mallory" in text and "\x1b]0;owned" not in text and "\x1b[2J" not in text
    assert MARKUP in text  # shown as typed, not interpreted


def test_a_terminal_gets_sparklines_by_day(
    run_cli: RunCli, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = _tty(monkeypatch)
    assert run_cli("logs", "summary", "--by", "day").exit_code == 0
    lines = [line for line in out.getvalue().splitlines() if line.startswith("calls ")]
    assert len(lines) == 1
    spark = [ch for ch in lines[0] if "\u2581" <= ch <= "\u2588"]
    assert len(spark) == 5 and "\u2588" in spark  # one block per day, the peak full


def test_piped_output_has_no_chart(run_cli: RunCli, store: Path) -> None:
    result = run_cli("logs", "summary", "--by", "user", "--format", "table")
    assert result.exit_code == 0
    assert "calls by user" not in result.stdout
    assert not any("\u2581" <= ch <= "\u2588" for ch in result.stdout)
    assert result.stdout.splitlines()[0].split("\t")[0] == "user"
