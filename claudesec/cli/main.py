"""The ``claudesec`` entry point: global options, command groups, and error handling.

Every error becomes one line on stderr and a documented exit code
(:class:`claudesec.errors.ExitCode`); ``CLAUDESEC_DEBUG=1`` adds the traceback.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from claudesec import __version__
from claudesec.errors import INTERRUPTED_LINE, ClaudesecError, ExitCode, did_you_mean

# Each command group's module and its one-line help, in help order. Modules are imported and
# their commands built only when that group is invoked: building every command's parameters
# costs ~70 ms, which `claudesec --help` and cron jobs should not pay for groups they never
# use. A test keeps these lines equal to each module's own help.
COMMANDS: dict[str, tuple[str, str]] = {
    "scan": ("claudesec.cli.scan", "Find leaked keys and other secrets."),
    "keys": (
        "claudesec.cli.keys",
        "Rotate, scope and revoke Anthropic API keys in AWS Secrets Manager or the keyring.",
    ),
    "logs": ("claudesec.cli.logs", "Tail, query, summarise, verify and prune the audit log."),
    "drill": (
        "claudesec.cli.drill",
        "Chaos drills that leak a key on purpose and prove each defence blocks it.",
    ),
    "policy": (
        "claudesec.cli.policy",
        "Inspect and check the role policy of the audited client and proxy.",
    ),
    "config": ("claudesec.cli.config", "Write, show and validate claudesec.toml."),
    "emulator": (
        "claudesec.cli.emulator",
        "Run a loopback Anthropic API emulator (offline tests and drills).",
    ),
    "proxy": (
        "claudesec.cli.proxy",
        "Run the zero-trust proxy (no subcommand), manage its tokens, print client settings.",
    ),
    "mesh": (
        "claudesec.cli.mesh",
        "Render and lint Istio/Linkerd manifests that force Claude traffic through the proxy.",
    ),
    "federation": (
        "claudesec.cli.federation",
        "Workload identity federation as code: plan, apply, list and lint issuers and rules; "
        "migrate workloads off static keys.",
    ),
    "hook": ("claudesec.cli.hook", "Install the claudesec pre-commit hook into a git repository."),
    "org": (
        "claudesec.cli.org",
        "The Claude organisation: inventory its Admin resources and check them against a "
        "catalogue mapped to SOC 2, ISO 27001 and CIS.",
    ),
    "report": (
        "claudesec.cli.report",
        "Write an offline HTML (or JSON) report for auditors: integrity, access, cost, keys.",
    ),
    "completion": (
        "claudesec.cli.completion",
        "Print or install shell completions (bash, zsh, fish).",
    ),
}


def load_command(name: str) -> Any:
    """Import one group's module and build its click command (plain help, no rich)."""
    module = importlib.import_module(COMMANDS[name][0])
    command: Any
    if hasattr(module, "app"):
        command = typer.main.get_group(module.app)
    else:  # a single command registered on a Typer of its own (scan)
        single = typer.Typer(add_completion=False)
        module.register(single)
        command = typer.main.get_command(single)
    command.name = name
    _plain_help(command)
    return command


def _plain_help(command: Any) -> None:
    # The root sets rich_markup_mode=None; groups built on their own would default to rich.
    command.rich_markup_mode = None
    for sub in getattr(command, "commands", {}).values():
        _plain_help(sub)


class LazyGroup(TyperGroup):
    """The root group: lists every command group, builds one only when it is used."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*COMMANDS, *(name for name in self.commands if name not in COMMANDS)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            self.commands[cmd_name] = load_command(cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        rows = [(name, help_line) for name, (_, help_line) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


app = typer.Typer(
    cls=LazyGroup,
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
        sys.stderr.write(INTERRUPTED_LINE + "\n")
        return int(ExitCode.INTERRUPTED)
    except typer.TyperException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()  # type: ignore[attr-defined]  # a group run bare prints its help
        else:
            sys.stderr.write(f"claudesec: error: {usage_line(exc)}\n")
        return int(getattr(exc, "exit_code", ExitCode.USAGE))
    except KeyboardInterrupt:
        sys.stderr.write(INTERRUPTED_LINE + "\n")
        return int(ExitCode.INTERRUPTED)
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
        return int(ExitCode.INTERNAL)
    if isinstance(result, int):
        return result
    return int(ExitCode.OK)


def usage_line(exc: Exception) -> str:
    """A usage error as one line: click's message, a "did you mean" for a mistyped command or
    option, and where to look otherwise."""
    ctx = getattr(exc, "ctx", None)
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    # Typer adds its own "Did you mean" sentence to some messages: keep the first sentence.
    message = message.split(". Did you mean")[0].rstrip(".")
    message = message[:1].lower() + message[1:]
    path = ctx.command_path if ctx is not None else "claudesec"
    hint = None
    option = getattr(exc, "option_name", None)
    if type(exc).__name__ == "NoSuchOption" and option:
        message = f"no such option {option!r}"
        hint = did_you_mean(option, getattr(exc, "possibilities", None) or _options(ctx))
    elif message.startswith("no such command") and ctx is not None:
        name = message.partition("'")[2].rpartition("'")[0]
        hint = did_you_mean(name, ctx.command.list_commands(ctx))
    return f"{message} ({hint or f'see {path} --help'})"


def _options(ctx: Any) -> list[str]:
    if ctx is None:
        return []
    return [opt for param in ctx.command.params for opt in getattr(param, "opts", ())]


def _report(exc: BaseException, line: str, debug: bool) -> None:
    if debug:
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    sys.stderr.write(f"claudesec: error: {line}\n")


def _silence_stdout() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
