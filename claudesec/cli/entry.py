"""The ``claudesec`` console script: routes plain scans around Typer before importing it.

A pre-commit hook runs ``claudesec scan --staged`` on every commit, so this module imports only
the standard library until it knows which path the call takes.
"""

from __future__ import annotations

import contextlib
import sys


def run(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    args = sys.argv[1:] if argv is None else argv
    try:
        scan_args = plain_scan_args(args)
        if scan_args is not None:
            # claudesec.scan's own stdlib parser: no Typer app is built (~40-60 ms saved).
            # Help, completion and every other command go through Typer.
            from claudesec.scan.__main__ import main as scan_main

            code = scan_main(scan_args)
        else:
            from claudesec.cli.main import invoke

            code = invoke(args)
    except KeyboardInterrupt:
        # Ctrl-C in the first tens of milliseconds, while modules are still being imported and
        # before a command's own handler is in place: the same line as later, no traceback.
        sys.stderr.write("claudesec: error: interrupted\n")
        code = 130  # ExitCode.INTERRUPTED, not imported: the import may be what was cut short
    _exit(code)


def _exit(code: int) -> None:
    """Exit with ``code`` without the interpreter's last garbage collections.

    The command is done and its output flushed; what remains is tearing down what it imported.
    After a drill run (moto, boto3) the collector walked that graph for about a second, which
    a user sees as a Ctrl-C or a finished run that will not end. Freezing moves every object
    out of the collector's reach; plain reference counting still closes files and sockets.
    """
    import gc

    flush_std_streams()
    gc.freeze()
    sys.exit(code)


def flush_std_streams() -> None:
    """Flush stdout and stderr before an exit that skips the interpreter's own flushing
    (a closed or broken pipe is no reason to fail the exit)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


def plain_scan_args(args: list[str]) -> list[str] | None:
    """The arguments for the stdlib scan parser, or None when Typer must handle the call."""
    config: list[str] = []
    rest = args
    if len(rest) >= 2 and rest[0] in ("-c", "--config"):
        config, rest = ["--config", rest[1]], rest[2:]
    elif rest and rest[0].startswith("--config="):
        config, rest = [rest[0]], rest[1:]
    if not rest or rest[0] != "scan" or {"-h", "--help"} & set(rest):
        return None
    return [*rest[1:], *config]
