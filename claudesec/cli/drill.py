"""`claudesec drill`: Chaos drills that leak a key on purpose and prove each defence blocks it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from claudesec.cli._common import load

if TYPE_CHECKING:
    from claudesec.console import Console
    from claudesec.drill.model import DrillResult, RunReport

app = typer.Typer(
    help="Chaos drills that leak a key on purpose and prove each defence blocks it.",
    no_args_is_help=True,
)

TagOption = Annotated[
    list[str] | None,
    typer.Option(
        "--tag",
        "-t",
        help="Only drills with this tag: offline or live (repeatable).",
        metavar="TAG",
    ),
]


@app.command("list")
def list_command(tag: TagOption = None) -> int:
    """List every drill, its tags and what it proves."""
    from claudesec.console import get_console
    from claudesec.drill.catalogue import select

    drills = select((), tag or ())
    get_console().table(
        ("drill", "tags", "proves"),
        [(d.name, ",".join(d.tags), d.title) for d in drills],
    )
    return 0


@app.command("run")
def run_command(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Drills to run (default: all; live ones skip without credentials)."),
    ] = None,
    tag: TagOption = None,
    junit: Annotated[
        str | None, typer.Option("--junit", help="Also write a JUnit XML report.", metavar="FILE")
    ] = None,
    json_file: Annotated[
        str | None, typer.Option("--json", help="Also write a JSON report.", metavar="FILE")
    ] = None,
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", help="Drills run at once (0 = automatic).", min=0)
    ] = 0,
) -> int:
    """Run drills; exit 0 when every defence held, 1 when one failed, 3 when a drill could
    not run its breach."""
    from claudesec.console import get_console
    from claudesec.drill.catalogue import select
    from claudesec.drill.reports import get_format
    from claudesec.drill.runner import run_drills
    from claudesec.drill.settings import DrillSettings
    from claudesec.errors import ExitCode

    drills = select(names or (), tag or ())
    console = get_console()
    wants_live = any("live" in d.tags for d in drills)
    # The configuration matters to live drills only; offline drills build their own world.
    settings = DrillSettings(config=load(ctx).config if wants_live else None)
    with _progress(console, len(drills)) as progress:
        report = run_drills(drills, settings, jobs=jobs, progress=progress)
    for path, fmt in ((junit, "junit"), (json_file, "json")):
        if path:
            _write(path, get_format(fmt).render(report))
    _print(console, report)
    if report.abandoned:
        console.error(
            "drills interrupted; stopped waiting for "
            + ", ".join(report.abandoned)
            + " (their processes killed, their files removed)"
        )
        _exit_now(int(report.exit_code), report.run_dir)
    if report.interrupted:
        console.error("drills interrupted; everything they started was cleaned up")
    elif report.exit_code != ExitCode.OK:
        console.info(
            "claudesec drill: a defence failed; see the evidence and fix above"
            if report.exit_code == ExitCode.FOUND
            else "claudesec drill: a drill could not run its breach (see above)"
        )
    return int(report.exit_code)


def _exit_now(code: int, run_dir: str) -> None:
    """Exit without joining the abandoned drills' threads (the interpreter would wait for
    them, which is the wait Ctrl-C asked to end); output is flushed and the run's directory
    removed once more first."""
    import os

    from claudesec.cli.entry import flush_std_streams
    from claudesec.drill.runner import remove_run_dir

    if run_dir:
        remove_run_dir(run_dir)
    flush_std_streams()
    os._exit(code)


def _print(console: Console, report: RunReport) -> None:
    from claudesec.drill.model import Status
    from claudesec.drill.reports.text import detail_lines, result_line, summary

    width = max([len(r.name) for r in report.results] + [20])
    styles = {
        Status.BLOCKED: "green",
        Status.FAILED: "bold red",
        Status.ERROR: "yellow",
        Status.SKIPPED: "dim",
    }
    for result in report.results:
        console.styled(result_line(result, width), styles[result.status])
        for line in detail_lines(result):
            console.out(line)
    console.info(summary(report))


class _Progress:
    """A rich progress bar on stderr when it is a terminal; nothing otherwise."""

    def __init__(self, console: Console, total: int) -> None:
        self._console = console
        self._total = total
        self._bar: object = None
        self._task: object = None

    def __enter__(self) -> _Progress:
        if self._console.env.stderr_isatty:
            from rich.console import Console as RichConsole
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            bar = Progress(
                TextColumn("drills"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total} {task.description}"),
                TimeElapsedColumn(),
                console=RichConsole(file=self._console.env.stderr),
                transient=True,
            )
            bar.start()
            self._task = bar.add_task("", total=self._total)
            self._bar = bar
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()  # type: ignore[attr-defined]

    def __call__(self, event: str, name: str, result: DrillResult | None) -> None:
        if self._bar is None:
            return
        if event == "start":
            self._bar.update(self._task, description=name)  # type: ignore[attr-defined]
        else:
            self._bar.advance(self._task)  # type: ignore[attr-defined]


def _progress(console: Console, total: int) -> _Progress:
    return _Progress(console, total)


def _write(path: str, text: str) -> None:
    from claudesec.errors import StoreError

    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise StoreError(f"cannot write report {path}: {exc.strerror or exc}") from exc
