"""``python -m claudesec.scan``: the scan command without Typer, for the git hook.

A pre-commit hook runs on every commit, so start-up is the budget: this entry imports only the
standard library, the engine and the config loader (no typer, rich, boto3 or anthropic), and
accepts the same options as ``claudesec scan``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from claudesec.errors import INTERRUPTED_LINE, ClaudesecError, ExitCode, did_you_mean
from claudesec.scan.sources import listing


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in claudesec's one-line format instead of a usage block."""

    def error(self, message: str) -> NoReturn:
        hint = "see claudesec scan --help"
        unknown = message.partition("unrecognized arguments: ")[2].split()
        if unknown:
            options = [o for action in self._actions for o in action.option_strings]
            hint = did_you_mean(unknown[0], options) or hint
        sys.stderr.write(f"claudesec: error: scan: {message} ({hint})\n")
        sys.exit(int(ExitCode.USAGE))


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="claudesec scan", description="Find leaked keys and other secrets.")
    p.add_argument("targets", nargs="*", default=["."], metavar="PATH")
    p.add_argument("-c", "--config", default=None)
    p.add_argument("--staged", action="store_true")
    p.add_argument("--history", action="store_true")
    p.add_argument("--since", default=None)
    p.add_argument("--branch", action="append", default=[], dest="branches")
    p.add_argument("--no-git", action="store_true")
    p.add_argument("-f", "--format", default="text", choices=["text", "json", "sarif", "jsonl"])
    p.add_argument("-o", "--output", default=None)
    p.add_argument("--baseline", default=None)
    p.add_argument("--write-baseline", default=None)
    p.add_argument("--verify", action="store_true")
    p.add_argument("-j", "--jobs", type=int, default=None)
    p.add_argument("--disable", action="append", default=[])
    p.add_argument("--show-skipped", action="store_true")
    p.add_argument("--only-verified", action="store_true")
    p.add_argument("--fail-on", default="any")
    p.add_argument("--all-occurrences", action="store_true")
    p.add_argument("--dedup", action="store_true")
    p.add_argument("--gitleaks-config", default=None)
    p.add_argument("--revoke", action=argparse.BooleanOptionalAction, default=None)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    # The tree is listed in a forked process while the engine is imported and built.
    listing.prefetch_for_scan(
        args.targets, staged=args.staged, history=args.history, no_git=args.no_git, jobs=args.jobs
    )
    try:
        from claudesec.config_load import nothing_to_load
        from claudesec.console import get_console
        from claudesec.scan.command import ScanOptions, execute

        path = Path(args.config) if args.config else None
        loaded = None
        if not nothing_to_load(path):
            from claudesec.config_scan import load_scan_config

            loaded = load_scan_config(path)
        options = ScanOptions(
            targets=tuple(args.targets) or (".",),
            staged=args.staged,
            history=args.history,
            since=args.since,
            branches=tuple(args.branches),
            no_git=args.no_git,
            format=args.format,
            output=args.output,
            baseline=args.baseline,
            write_baseline=args.write_baseline,
            verify=args.verify,
            jobs=args.jobs,
            disable=tuple(args.disable),
            show_skipped=args.show_skipped,
            only_verified=args.only_verified,
            fail_on=args.fail_on,
            all_occurrences=args.all_occurrences,
            dedup=args.dedup,
            gitleaks_config=args.gitleaks_config,
            revoke=args.revoke,
        )
        return execute(options, loaded, get_console())
    except ClaudesecError as exc:
        sys.stderr.write(f"claudesec: error: {exc.user_message()}\n")
        return int(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write(INTERRUPTED_LINE + "\n")
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return int(ExitCode.OK)
    finally:
        listing.discard()


if __name__ == "__main__":
    sys.exit(main())
