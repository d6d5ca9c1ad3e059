"""``claudesec scan`` as one function: options in, report out, exit code back.

Both front ends call :func:`execute`: the Typer command (``claudesec scan``) and the light
``python -m claudesec.scan`` entry the git hook uses, which skips Typer's import on every commit.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from claudesec.detect.catalogue import DETECTORS_BY_ID
from claudesec.errors import ConfigError, UsageError, did_you_mean
from claudesec.scan.model import Finding, ScanResult, ScanStats

if TYPE_CHECKING:
    from claudesec.config import LoadedConfig
    from claudesec.console import Console
    from claudesec.scan.baseline import Baseline
    from claudesec.scan.sources.interface import Source

MIB = 1024 * 1024
MAX_WARNINGS_SHOWN = 20


@dataclass(frozen=True)
class ScanOptions:
    """Everything the user can ask of one scan."""

    targets: tuple[str, ...] = (".",)
    staged: bool = False
    history: bool = False
    since: str | None = None
    branches: tuple[str, ...] = ()
    no_git: bool = False
    format: str = "text"
    output: str | None = None
    baseline: str | None = None
    write_baseline: str | None = None
    verify: bool = False
    jobs: int | None = None
    disable: tuple[str, ...] = ()
    backend: str = "auto"


def validate(options: ScanOptions) -> None:
    """Reject contradictory options with one clear line (exit 2)."""
    from claudesec.scan.reports import FORMATS

    if options.staged and options.history:
        raise UsageError("--staged and --history cannot be combined", hint="pick one")
    if (options.since or options.branches) and not options.history:
        raise UsageError("--since and --branch only apply to --history")
    git_mode = options.staged or options.history
    if git_mode and (len(options.targets) > 1 or "-" in options.targets):
        raise UsageError(
            f"--{'staged' if options.staged else 'history'} takes at most one repository path"
        )
    if "-" in options.targets and len(options.targets) > 1:
        raise UsageError("'-' (stdin) cannot be combined with other paths")
    if options.format not in FORMATS:
        raise UsageError(
            f"unknown format {options.format!r}", hint=f"choose one of {', '.join(FORMATS)}"
        )
    if options.jobs is not None and options.jobs < 0:
        raise UsageError("--jobs must be 0 (one per core) or more")
    _check_rules(options.disable, "--disable")


def _check_rules(rules: Sequence[str], where: str) -> None:
    for rule in rules:
        if rule not in DETECTORS_BY_ID:
            raise UsageError(
                f"{where}: unknown rule {rule!r}",
                hint=did_you_mean(rule, DETECTORS_BY_ID)
                or "known rules: " + ", ".join(DETECTORS_BY_ID),
            )


def _sources(options: ScanOptions, exclude: Sequence[str], stdin: BinaryIO | None) -> list[Source]:
    if options.staged:
        from claudesec.scan.sources.staged import StagedSource

        return [StagedSource(options.targets[0], exclude=exclude)]
    if options.history:
        from claudesec.scan.sources.history import HistorySource

        return [
            HistorySource(
                options.targets[0],
                since=options.since,
                branches=options.branches,
                exclude=exclude,
            )
        ]
    if options.targets == ("-",):
        from claudesec.scan.sources.stdin import StdinSource

        return [StdinSource(stdin)]
    from claudesec.scan.sources.directory import DirectorySource

    for target in options.targets:
        if not os.path.lexists(target):
            raise UsageError(f"no such file or directory: {target}")
    return [
        DirectorySource(t, use_git=not options.no_git, exclude=exclude) for t in options.targets
    ]


def run_scan(
    options: ScanOptions,
    loaded: LoadedConfig | None = None,
    *,
    stdin: BinaryIO | None = None,
) -> tuple[ScanResult, list[Finding]]:
    """Scan and filter. Returns the result and, separately, every finding before the
    baseline was applied (what ``--write-baseline`` records)."""
    from claudesec.config import Config
    from claudesec.detect.engine import default_engine
    from claudesec.scan.scanner import BlobScanner

    validate(options)
    config = loaded.config if loaded is not None else Config()
    scan_config = config.scan
    _check_rules(scan_config.disabled_rules, "scan.disabled_rules")
    started = time.perf_counter()
    engine = default_engine(
        disabled=(*scan_config.disabled_rules, *options.disable), backend=options.backend
    )
    scanner = BlobScanner(
        engine,
        allow_paths=scan_config.allow_paths,
        max_file_size=scan_config.max_file_size_mb * MIB,
    )
    jobs = options.jobs if options.jobs is not None else scan_config.jobs
    jobs = jobs or os.cpu_count() or 1
    sources = _sources(options, scan_config.exclude_paths, stdin)
    findings: list[Finding] = []
    for source in sources:
        found = source.scan(scanner, jobs=jobs)
        if len(sources) > 1:
            found = [dataclasses.replace(f, path=os.path.join(source.root, f.path)) for f in found]
        findings.extend(found)
    unfiltered = list(findings)
    baseline = _load_baseline(options, loaded, scanner.stats)
    if baseline is not None and not options.write_baseline:
        kept = [f for f in findings if not baseline.contains(f)]
        scanner.stats.suppressed_baseline += len(findings) - len(kept)
        findings = kept
    if options.verify and findings and not options.write_baseline:
        from claudesec.scan.verify import VerifySettings, verify_findings

        findings = verify_findings(
            findings,
            VerifySettings(
                anthropic_base_url=config.anthropic.base_url,
                sts_endpoint_url=scan_config.sts_endpoint_url,
                timeout_s=scan_config.verify_timeout_s,
                concurrency=scan_config.verify_concurrency,
            ),
        )
    source = sources[0]
    result = ScanResult(
        source=source.name,
        root=source.root if len(sources) == 1 else ".",
        findings=tuple(findings),
        stats=scanner.stats,
        duration_s=time.perf_counter() - started,
        backend=engine.backend,
    )
    return result, unfiltered


def _baseline_path(options: ScanOptions, loaded: LoadedConfig | None) -> tuple[str | None, bool]:
    """The baseline to apply and whether the user named it explicitly."""
    if options.baseline:
        return options.baseline, True
    if loaded is not None and loaded.config.scan.baseline:
        configured = loaded.config.scan.baseline
        if loaded.path is not None and not os.path.isabs(configured):
            configured = os.path.join(os.path.dirname(str(loaded.path)), configured)
        return configured, False
    return None, False


def _load_baseline(
    options: ScanOptions, loaded: LoadedConfig | None, stats: ScanStats
) -> Baseline | None:
    path, explicit = _baseline_path(options, loaded)
    if path is None:
        return None
    from claudesec.scan.baseline import load_baseline

    if not explicit and not os.path.exists(path):
        stats.warnings.append(f"scan.baseline {path} does not exist yet; nothing suppressed")
        return None
    return load_baseline(path)


def execute(
    options: ScanOptions,
    loaded: LoadedConfig | None,
    console: Console,
    *,
    stdin: BinaryIO | None = None,
) -> int:
    """Run the scan, write the report, and return the exit code (0 clean, 1 findings)."""
    from claudesec.scan.reports import get_format
    from claudesec.scan.reports.text import TextFormat, summary

    result, unfiltered = run_scan(options, loaded, stdin=stdin)
    warnings = result.stats.warnings
    for warning in warnings[:MAX_WARNINGS_SHOWN]:
        console.warn(warning)
    if len(warnings) > MAX_WARNINGS_SHOWN:
        console.warn(f"... and {len(warnings) - MAX_WARNINGS_SHOWN} more warnings")

    if options.write_baseline:
        from claudesec.scan.baseline import load_baseline, write_baseline

        previous = None
        if os.path.exists(options.write_baseline):
            try:
                previous = load_baseline(options.write_baseline)
            except ConfigError:
                previous = None  # unreadable: replace it with a fresh one
        written = write_baseline(options.write_baseline, unfiltered, previous)
        console.info(
            f"claudesec scan: wrote {len(written.entries)} finding(s) to baseline "
            f"{options.write_baseline}"
        )
        return 0

    report = get_format(options.format)
    if options.output:
        _write_report(options.output, report.render(result))
    elif isinstance(report, TextFormat) and console.rich_output:
        for line, style in report.lines(result):
            if style:
                console.styled(line, style)
            else:
                console.out(line)
    else:
        text = report.render(result)
        if text:
            console.env.stdout.write(text)
    console.info(summary(result))
    if result.findings and options.staged:
        console.info(
            "claudesec: commit blocked. Remove each secret above (rotate it if it was real), "
            "or allow a false alarm with `claudesec:allow RULE-ID`, then `git add` and commit."
        )
    return result.exit_code


def _write_report(path: str, text: str) -> None:
    from claudesec.errors import StoreError

    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise StoreError(f"cannot write report {path}: {exc.strerror or exc}") from exc
