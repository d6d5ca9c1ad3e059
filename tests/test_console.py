from __future__ import annotations

import io
import json

from claudesec.console import Console, Environment


def make(tty: bool, color: bool = False) -> tuple[Console, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    env = Environment(
        stdout=out, stderr=err, stdout_isatty=tty, stderr_isatty=tty, color=color, width=80
    )
    return Console(env), out, err


def test_piped_table_is_tab_separated_with_a_header() -> None:
    console, out, _ = make(tty=False)
    console.table(("user", "calls"), [("alice", 3), ("bob", None)])
    assert out.getvalue() == "user\tcalls\nalice\t3\nbob\t\n"


def test_terminal_table_is_drawn_by_rich() -> None:
    console, out, _ = make(tty=True)
    console.table(("user", "calls"), [("alice", 3)])
    text = out.getvalue()
    assert "alice" in text
    assert "\t" not in text
    assert "─" in text or "━" in text


def test_no_color_means_no_escape_codes_even_on_a_terminal() -> None:
    console, out, _ = make(tty=True, color=False)
    console.styled("leak found", "bold red")
    assert "\x1b[" not in out.getvalue()


def test_color_on_a_terminal_uses_escape_codes() -> None:
    console, out, _ = make(tty=True, color=True)
    console.styled("leak found", "bold red")
    assert "\x1b[" in out.getvalue()


def test_styled_text_is_not_interpreted_as_markup() -> None:
    console, out, _ = make(tty=True)
    console.styled("[bold]literal[/bold]", "red")
    assert "[bold]literal[/bold]" in out.getvalue()


def test_diagnostics_go_to_stderr_and_reports_to_stdout() -> None:
    console, out, err = make(tty=False)
    console.json({"a": 1})
    console.warn("careful")
    console.error("broken")
    assert json.loads(out.getvalue()) == {"a": 1}
    assert err.getvalue() == "claudesec: warning: careful\nclaudesec: error: broken\n"


def test_no_color_env_disables_colour_detection() -> None:
    env = Environment.detect({"NO_COLOR": "1", "FORCE_COLOR": "1"})
    assert env.color is False
    assert Environment.detect({"FORCE_COLOR": "1"}).color is True


def test_jsonl_writes_one_object_per_line() -> None:
    console, out, _ = make(tty=False)
    console.jsonl([{"seq": 1}, {"seq": 2}])
    assert [json.loads(line) for line in out.getvalue().splitlines()] == [{"seq": 1}, {"seq": 2}]


def test_identifier_columns_are_never_cut_and_other_cells_fold() -> None:
    key_id = "apikey_01Md0Jh8TWd8Zu9pnhlzdQ7xRtYvKwPe"
    note = "a long note " * 12
    for width in (60, 100, 150):
        out = io.StringIO()
        console = Console(
            Environment(stdout=out, stderr=io.StringIO(), stdout_isatty=True, width=width)
        )
        console.table(["key id", "name", "note"], [[key_id, "ci-deploy", note]])
        text = out.getvalue()
        assert key_id in text, text
        assert "…" not in text, text


def test_progress_shows_on_a_terminal_and_stays_silent_when_piped() -> None:
    for tty in (True, False):
        err = io.StringIO()
        console = Console(Environment(stdout=io.StringIO(), stderr=err, stderr_isatty=tty))
        with console.progress("verifying", total=10) as update:
            for done in range(1, 11):
                update(done)
        assert ("verifying" in err.getvalue()) is tty
