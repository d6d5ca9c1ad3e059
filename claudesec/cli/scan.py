"""`claudesec scan`: find leaked secrets in a tree, the staged index, history, or stdin."""

from __future__ import annotations

from typing import Annotated

import typer

from claudesec.cli._common import load_scan


def register(app: typer.Typer) -> None:
    """Add the ``scan`` command to the root app."""

    @app.command("scan")
    def scan(
        ctx: typer.Context,
        targets: Annotated[
            list[str] | None,
            typer.Argument(
                help="Files or directories to scan (default: .); '-' reads stdin; with "
                "--staged/--history, the repository.",
                show_default=False,
                metavar="[PATH]...",
            ),
        ] = None,
        staged: Annotated[
            bool, typer.Option("--staged", help="Scan what is staged for commit (the index).")
        ] = False,
        history: Annotated[
            bool,
            typer.Option(
                "--history", help="Scan every commit reachable from any ref, once per blob."
            ),
        ] = False,
        since: Annotated[
            str | None,
            typer.Option(
                "--since", help="With --history: only commits after this date.", metavar="DATE"
            ),
        ] = None,
        branch: Annotated[
            list[str] | None,
            typer.Option(
                "--branch",
                help="With --history: only commits reachable from this ref "
                "(repeatable; default: all refs).",
                metavar="REF",
            ),
        ] = None,
        no_git: Annotated[
            bool,
            typer.Option("--no-git", help="Scan every file, ignoring .gitignore."),
        ] = False,
        output_format: Annotated[
            str,
            typer.Option(
                "--format",
                "-f",
                help="Report format: text, json, sarif or jsonl (one finding per line).",
                metavar="FORMAT",
            ),
        ] = "text",
        output: Annotated[
            str | None,
            typer.Option("--output", "-o", help="Write the report to this file.", metavar="FILE"),
        ] = None,
        baseline: Annotated[
            str | None,
            typer.Option(
                "--baseline",
                help="Suppress findings recorded in this baseline file.",
                metavar="FILE",
            ),
        ] = None,
        write_baseline: Annotated[
            str | None,
            typer.Option(
                "--write-baseline",
                help="Record the current findings as the baseline and exit 0.",
                metavar="FILE",
            ),
        ] = None,
        verify: Annotated[
            bool,
            typer.Option(
                "--verify",
                help="Ask each issuer whether found keys are live "
                "(network calls; never by default).",
            ),
        ] = False,
        jobs: Annotated[
            int | None,
            typer.Option(
                "--jobs",
                "-j",
                help="Worker processes for large trees (0 = one per core).",
                metavar="N",
            ),
        ] = None,
        disable: Annotated[
            list[str] | None,
            typer.Option("--disable", help="Switch off a rule id (repeatable).", metavar="RULE"),
        ] = None,
        show_skipped: Annotated[
            bool,
            typer.Option(
                "--show-skipped",
                help="List each file not scanned and why (binary, too large, unreadable, "
                "limit hit).",
            ),
        ] = False,
        only_verified: Annotated[
            bool,
            typer.Option(
                "--only-verified",
                help="Report only keys their issuer says are live (implies --verify).",
            ),
        ] = False,
        fail_on: Annotated[
            str,
            typer.Option(
                "--fail-on",
                help="Verdicts that exit 1: any (default), or a comma list of live, invalid, "
                "unknown; with --verify, e.g. --fail-on live reports dead keys without failing.",
                metavar="VERDICTS",
            ),
        ] = "any",
        all_occurrences: Annotated[
            bool,
            typer.Option(
                "--all-occurrences",
                help="With --history: one finding per blob that holds a secret, not one per "
                "distinct secret.",
            ),
        ] = False,
        dedup: Annotated[
            bool,
            typer.Option(
                "--dedup",
                help="One finding per distinct secret, at its first place, with the other "
                "places it was found listed (default: one finding per place).",
            ),
        ] = False,
        gitleaks_config: Annotated[
            str | None,
            typer.Option(
                "--gitleaks-config",
                help="Also run the rules and allowlists of this gitleaks rule file.",
                metavar="FILE",
            ),
        ] = None,
        revoke: Annotated[
            bool | None,
            typer.Option(
                "--revoke/--no-revoke",
                help="Deactivate live Anthropic API keys at once through the Admin API "
                "(implies --verify; a managed key is rotated to a spare). Default: "
                "scan.on_live_key.",
                show_default=False,
            ),
        ] = None,
    ) -> int:
        """Find leaked keys and other secrets. Exit 0 clean, 1 findings, 2 usage, 3 git failed."""
        from claudesec.console import get_console
        from claudesec.scan.command import ScanOptions, execute
        from claudesec.scan.sources import listing

        # The tree is listed in a forked process while the config and engine load.
        listing.prefetch_for_scan(
            targets or [], staged=staged, history=history, no_git=no_git, jobs=jobs
        )
        options = ScanOptions(
            targets=tuple(targets or ()) or (".",),
            staged=staged,
            history=history,
            since=since,
            branches=tuple(branch or ()),
            no_git=no_git,
            format=output_format,
            output=output,
            baseline=baseline,
            write_baseline=write_baseline,
            verify=verify,
            jobs=jobs,
            disable=tuple(disable or ()),
            show_skipped=show_skipped,
            only_verified=only_verified,
            fail_on=fail_on,
            all_occurrences=all_occurrences,
            dedup=dedup,
            gitleaks_config=gitleaks_config,
            revoke=revoke,
        )
        try:
            return execute(options, load_scan(ctx), get_console())
        finally:
            listing.discard()
