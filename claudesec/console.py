"""The one place that decides how output looks.

Reports go to stdout, diagnostics and progress to stderr. On a terminal, rich formatting and
colour (unless ``NO_COLOR`` is set); when piped, plain text or JSON so that
``claudesec scan --format json > out.json`` stays machine-readable. ``rich`` is imported only
when something is actually rendered on a terminal, to keep start-up fast.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any


@dataclass
class Environment:
    """Terminal facts, injectable so tests need not patch globals."""

    stdout: IO[str] = field(default_factory=lambda: sys.stdout)
    stderr: IO[str] = field(default_factory=lambda: sys.stderr)
    stdout_isatty: bool = False
    stderr_isatty: bool = False
    color: bool = False
    width: int = 100

    @classmethod
    def detect(cls, environ: Mapping[str, str] | None = None) -> Environment:
        env = os.environ if environ is None else environ
        out_tty = _isatty(sys.stdout)
        err_tty = _isatty(sys.stderr)
        if env.get("NO_COLOR"):
            color = False
        elif env.get("FORCE_COLOR"):
            color = True
        else:
            color = out_tty and env.get("TERM") != "dumb"
        return cls(
            stdout=sys.stdout,
            stderr=sys.stderr,
            stdout_isatty=out_tty,
            stderr_isatty=err_tty,
            color=color,
            width=terminal_width(sys.stdout, env) if out_tty else 100,
        )


DEFAULT_WIDTH = 80
# Column names whose values are identifiers: shown whole, whatever the width.
_IDENTIFIER = re.compile(r"(?:^|[ _])id$")


def terminal_width(stream: IO[str], environ: Mapping[str, str]) -> int:
    """The terminal's width: its reported size, then ``COLUMNS``, then 80.

    Some terminals (``script``, CI runners, containers without a size) report 0x0; rich given
    a width of 0 prints nothing at all, so a zero or unknown size must never reach it.
    """
    try:
        columns = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    configured = environ.get("COLUMNS", "")
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    return DEFAULT_WIDTH


_BLOCKS = "\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _printable(text: str) -> str:
    """``text`` without control characters (no terminal escape sequence gets through)."""
    return _CONTROL.sub("", text)


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Console:
    """Writes reports, tables and diagnostics according to the environment."""

    def __init__(self, env: Environment | None = None) -> None:
        self.env = env or Environment.detect()

    # ----------------------------------------------------------------- reports (stdout)

    @property
    def rich_output(self) -> bool:
        """Whether reports on stdout may use rich formatting."""
        return self.env.stdout_isatty

    def out(self, text: str = "") -> None:
        self.env.stdout.write(text + "\n")

    def json(self, data: Any) -> None:
        self.env.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")

    def jsonl(self, records: Iterable[Any]) -> None:
        for record in records:
            self.env.stdout.write(json.dumps(record, separators=(",", ":"), default=str) + "\n")

    def table(
        self,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        title: str | None = None,
        whole: Sequence[str] = (),
    ) -> None:
        """A rich table on a terminal, tab-separated text with a header line otherwise.

        No cell is ever cut with an ellipsis: long values fold onto the next line. Identifier
        columns (named ``id`` or ``... id``, and any named in ``whole``) are never folded
        either; the other columns give way to them.
        """
        # Cells come from stores anyone can write to: no control character reaches the
        # terminal, and rich markup in a value is shown as typed (a stray "[/]" made rich
        # raise, and "[red]" would restyle the report).
        cells = [["" if v is None else _printable(str(v)) for v in row] for row in rows]
        if not self.rich_output:
            self.out("\t".join(columns))
            for row in cells:
                self.out("\t".join(row))
            return
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title, header_style="bold")
        for index, column in enumerate(columns):
            if column in whole or _IDENTIFIER.search(column):
                widest = max((len(row[index]) for row in cells if index < len(row)), default=0)
                table.add_column(column, no_wrap=True, min_width=max(widest, len(column)))
            else:
                table.add_column(column, overflow="fold")
        for row in cells:
            table.add_row(*(Text(cell) for cell in row))
        self._rich(self.env.stdout).print(table)

    def styled(self, text: str, style: str) -> None:
        """One report line, styled on a terminal (rich markup is not interpreted)."""
        if not self.rich_output:
            self.out(text)
            return
        from rich.text import Text

        self._rich(self.env.stdout).print(Text(text, style=style))

    def bars(self, title: str, items: Sequence[tuple[str, float]], *, decimals: int = 0) -> None:
        """Horizontal bars, one per ``(label, value)``, on a terminal; nothing when piped (the
        table or JSON beside it carries the numbers). Labels are shown as plain text with
        control characters removed: they come from the audit store, which anyone calling the
        API writes to."""
        if not self.rich_output or not items:
            return
        from rich.bar import Bar
        from rich.table import Table
        from rich.text import Text

        top = max(value for _, value in items) or 1.0
        width = max(10, min(50, self.env.width - 40))
        table = Table(title=title, show_header=False, box=None, pad_edge=False)
        table.add_column(no_wrap=True, max_width=30, overflow="ellipsis")
        table.add_column(width=width)
        table.add_column(justify="right", no_wrap=True)
        for label, value in items:
            table.add_row(
                Text(_printable(label)),
                Bar(top, 0, max(0.0, value), width=width, color="blue"),
                Text(f"{value:,.{decimals}f}"),
            )
        self._rich(self.env.stdout).print(table)

    def sparkline(
        self, label: str, points: Sequence[tuple[str, float]], *, decimals: int = 0
    ) -> None:
        """One line of block characters over ordered ``(label, value)`` points (days), with
        the first and last label and the peak; on a terminal only, like :meth:`bars`."""
        if not self.rich_output or not points:
            return
        from rich.text import Text

        room = max(8, self.env.width - len(label) - 50)
        shown = points[-room:]
        top = max(value for _, value in shown) or 1.0
        line = "".join(_BLOCKS[round(max(0.0, v) / top * (len(_BLOCKS) - 1))] for _, v in shown)
        text = Text()
        text.append(f"{label:<14} ", style="bold")
        text.append(_printable(shown[0][0]) + " ")
        text.append(line, style="blue")
        text.append(f" {_printable(shown[-1][0])}  peak {top:,.{decimals}f}")
        self._rich(self.env.stdout).print(text)

    # ----------------------------------------------------------------- diagnostics (stderr)

    @contextlib.contextmanager
    def progress(self, label: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
        """A progress bar on stderr while long work runs, when stderr is a terminal.

        Yields ``update(completed)``; it does nothing when stderr is piped, so reports and
        logs stay clean. The bar disappears when the work ends.
        """
        if not self.env.stderr_isatty:
            yield lambda _completed: None
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        bar = Progress(
            TextColumn(label),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self._rich(self.env.stderr),
            transient=True,
        )
        task = bar.add_task(label, total=total)
        with bar:
            yield lambda completed: bar.update(task, completed=completed)

    def info(self, message: str) -> None:
        self.env.stderr.write(message + "\n")

    def warn(self, message: str) -> None:
        self.env.stderr.write(f"claudesec: warning: {message}\n")

    def error(self, message: str) -> None:
        self.env.stderr.write(f"claudesec: error: {message}\n")

    def _rich(self, stream: IO[str]) -> Any:
        from rich.console import Console as RichConsole

        return RichConsole(
            file=stream,
            force_terminal=True,
            # No colour means no escape codes at all: tables keep their box drawing.
            color_system="auto" if self.env.color else None,
            width=self.env.width,
            highlight=False,
        )


_default: Console | None = None


def get_console() -> Console:
    """The process-wide console (tests build their own :class:`Console`)."""
    global _default  # noqa: PLW0603
    if _default is None:
        _default = Console()
    return _default


def reset_console() -> None:
    """Forget the cached console (after stdout/stderr were swapped, e.g. by a test runner)."""
    global _default  # noqa: PLW0603
    _default = None
