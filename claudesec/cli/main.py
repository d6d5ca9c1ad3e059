"""The ``claudesec`` entry point: global options, command groups, and error handling.

Every error becomes one line on stderr and a documented exit code
(:class:`claudesec.errors.ExitCode`); ``CLAUDESEC_DEBUG=1`` adds the traceback.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer

from claudesec import __version__
from claudesec.cli import completion, drill, emulator, hook, keys, logs, policy, scan
from claudesec.cli import config as config_cli
from claudesec.cli import mesh as mesh_cli
from claudesec.cli import proxy as proxy_cli
from claudesec.errors import ClaudesecError, ExitCode

INTERNAL_ERROR = 70  # EX_SOFTWARE: a bug in claudesec, not in the user's input

app = typer.Typer(
    name="claudesec",
    help="Zero-trust control for Anthropic Claude API deployments.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"claudesec {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def main(
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            "-c",
            help="Config file (default: claudesec.toml or pyproject.toml from here upwards).",
            metavar="PATH",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Zero-trust control for Anthropic Claude API deployments."""


scan.register(app)
app.add_typer(keys.app, name="keys")
app.add_typer(logs.app, name="logs")
app.add_typer(drill.app, name="drill")
app.add_typer(policy.app, name="policy")
app.add_typer(config_cli.app, name="config")
app.add_typer(emulator.app, name="emulator")
app.add_typer(proxy_cli.app, name="proxy")
app.add_typer(mesh_cli.app, name="mesh")
app.add_typer(hook.app, name="hook")
app.add_typer(completion.app, name="completion")


def run(argv: list[str] | None = None) -> None:
    """Entry point for callers that already imported this module (tests, embedding)."""
    from claudesec.cli.entry import run as entry_run

    entry_run(argv)


def invoke(argv: list[str] | None = None, root: typer.Typer | None = None) -> int:
    """Run the CLI and return its exit code, turning every error into one line on stderr."""
    debug = bool(os.environ.get("CLAUDESEC_DEBUG"))
    command = typer.main.get_command(root or app)
    try:
        result: Any = command.main(args=argv, prog_name="claudesec", standalone_mode=False)
    except ClaudesecError as exc:
        _report(exc, exc.user_message(), debug)
        return int(exc.exit_code)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("aborted\n")
        return 130
    except typer.TyperException as exc:
        # Usage errors (unknown command or option, bad value), in Typer's own wording.
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            sys.stderr.write(f"claudesec: error: {exc}\n")
        return int(getattr(exc, "exit_code", ExitCode.USAGE))
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error worth a traceback.
        _silence_stdout()
        return int(ExitCode.OK)
    except Exception as exc:
        _report(
            exc,
            f"internal error: {type(exc).__name__}: {exc} "
            "(a bug in claudesec; rerun with CLAUDESEC_DEBUG=1 and report the traceback)",
            debug,
        )
        return INTERNAL_ERROR
    if isinstance(result, int):
        return result
    return int(ExitCode.OK)


def _report(exc: BaseException, line: str, debug: bool) -> None:
    if debug:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    sys.stderr.write(f"claudesec: error: {line}\n")


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
