"""``claudesec scan`` as one function: options in, report out, exit code back.

Both front ends call :func:`execute`: the Typer command (``claudesec scan``) and the light
``python -m claudesec.scan`` entry the git hook uses, which skips Typer's import on every commit.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from claudesec.detect.catalogue import DETECTORS_BY_ID
from claudesec.errors import ConfigError, UsageError, did_you_mean
from claudesec.scan.model import Finding, ScanResult, ScanStats

if TYPE_CHECKING:
    from claudesec.config import Config
    from claudesec.config_scan import ScanSettings
    from claudesec.console import Console
    from claudesec.scan.baseline import Baseline
    from claudesec.scan.custom_rules import CustomRules
    from claudesec.scan.progress import ProgressFn
    from claudesec.scan.sources.interface import Source

MIB = 1024 * 1024
MAX_WARNINGS_SHOWN = 20
# Read when neither --baseline nor scan.baseline names one: what the commit-blocked hint writes,
# so following the hint unblocks the hook with no other step.
DEFAULT_BASELINE = ".claudesec-baseline.json"
VERDICTS = ("live", "invalid", "unknown")


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
    show_skipped: bool = False
    only_verified: bool = False
    # Verdicts that fail the run: "any" (default) or a comma list of live, invalid, unknown.
    fail_on: str = "any"
    all_occurrences: bool = False
    gitleaks_config: str | None = None
    # Deactivate live Anthropic API keys at once (implies --verify); None: scan.on_live_key.
    revoke: bool | None = None
    # One finding per distinct secret, its other places listed (claudesec.scan.dedup).
    dedup: bool = False

    def fail_verdicts(self) -> frozenset[str]:
        """The verdicts that make exit 1 (empty: every finding does)."""
        if self.fail_on.strip() in ("", "any"):
            return frozenset()
        return frozenset(v.strip() for v in self.fail_on.split(",") if v.strip())


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
    unknown = options.fail_verdicts() - set(VERDICTS)
    if unknown:
        raise UsageError(
            f"--fail-on: unknown verdict {sorted(unknown)[0]!r}",
            hint="use any, or a comma list of live, invalid, unknown (e.g. --fail-on live)",
        )
    if options.fail_verdicts() and not (options.verify or options.only_verified or options.revoke):
        raise UsageError(
            f"--fail-on {options.fail_on} needs verdicts", hint="add --verify to ask each issuer"
        )
    if options.dedup and options.history:
        raise UsageError(
            "--dedup does not apply to --history, which already reports each distinct secret "
            "once (--all-occurrences for every blob)"
        )
    if options.all_occurrences and not options.history:
        raise UsageError("--all-occurrences only applies to --history")
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
                all_occurrences=options.all_occurrences,
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
    loaded: ScanSettings | None = None,
    *,
    stdin: BinaryIO | None = None,
    progress: ProgressFn | None = None,
) -> tuple[ScanResult, list[Finding]]:
    """Scan and filter. Returns the result and, separately, every finding before the
    baseline was applied (what ``--write-baseline`` records). ``progress`` is told how far
    a directory or history scan has got."""
    from claudesec.config_scan import ScanConfig
    from claudesec.detect.engine import default_engine
    from claudesec.scan import custom_rules, decode
    from claudesec.scan.scanner import BlobScanner

    validate(options)
    # No configuration loaded: the defaults, without building every other section for a scan
    # that reads only this one (claudesec.config_scan).
    scan_config = loaded.scan if loaded is not None else ScanConfig()
    whole = functools.cache(lambda: _whole(loaded))  # loaded once, if at all
    revoke = options.revoke if options.revoke is not None else scan_config.on_live_key == "revoke"
    if revoke and not options.write_baseline:
        from claudesec.scan.respond import require_admin

        require_admin(whole())  # fail closed before scanning, not after finding a live key
    _check_rules(scan_config.disabled_rules, "scan.disabled_rules")
    custom = _custom_rules(options, loaded)
    started = time.perf_counter()
    engine = default_engine(
        disabled=(*scan_config.disabled_rules, *options.disable),
        backend=options.backend,
        passive=(*custom_rules.detectors(custom), *decode.DECODERS),
    )
    scanner = BlobScanner(
        engine,
        allow_paths=scan_config.allow_paths,
        max_file_size=scan_config.max_file_size_mb * MIB,
        limits=decode.Limits(
            max_depth=scan_config.archive_max_depth, max_bytes=scan_config.archive_max_mb * MIB
        ),
        path_filter=custom_rules.finding_filter(custom),
        path_rules=custom.path_only,
        hold_examples=scan_config.examples == "hold",
    )
    scanner.progress = progress
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
    baseline = _load_baseline(options, loaded, scanner.stats, sources[0]) if findings else None
    if baseline is not None and not options.write_baseline:
        kept = [f for f in findings if not baseline.contains(f)]
        scanner.stats.suppressed_baseline += len(findings) - len(kept)
        findings = kept
    if options.dedup:
        from claudesec.scan.dedup import one_per_secret

        findings, scanner.stats.duplicates = one_per_secret(findings)
    if (
        (options.verify or options.only_verified or revoke)
        and findings
        and not options.write_baseline
    ):
        from claudesec.scan.verify import VerifySettings, verify_findings

        findings = verify_findings(
            findings,
            VerifySettings(
                anthropic_base_url=whole().anthropic.base_url,
                sts_endpoint_url=scan_config.sts_endpoint_url,
                timeout_s=scan_config.verify_timeout_s,
                concurrency=scan_config.verify_concurrency,
            ),
        )
        if revoke:
            from claudesec.scan.respond import respond

            findings, alert_warnings = respond(findings, whole(), revoke=True)
            scanner.stats.warnings.extend(alert_warnings)
        if options.only_verified:
            findings = [f for f in findings if f.verification == "live"]
    source = sources[0]
    result = ScanResult(
        source=source.name,
        root=source.root if len(sources) == 1 else ".",
        findings=tuple(findings),
        stats=scanner.stats,
        duration_s=time.perf_counter() - started,
        backend=engine.backend,
        fail_on=options.fail_verdicts(),
    )
    return result, unfiltered


def _whole(loaded: ScanSettings | None) -> Config:
    """The whole configuration, for what reaches past ``[scan]`` (--verify, --revoke): the
    one loaded, else the file ``[scan]`` came from, loaded now with all its checks."""
    from claudesec.config import Config, LoadedConfig, load_config

    if loaded is None:
        return Config()
    if isinstance(loaded, LoadedConfig):
        return loaded.config
    return load_config(loaded.path).config


def load_custom_rules(loaded: ScanSettings | None) -> CustomRules:
    """The config's custom rules, checked (``config validate`` and every scan)."""
    return _custom_rules(ScanOptions(), loaded)


def _custom_rules(options: ScanOptions, loaded: ScanSettings | None) -> CustomRules:
    """``[[scan.rules]]``, the config's gitleaks file, then the one --gitleaks-config names."""
    from pathlib import Path

    from claudesec.scan import custom_rules

    custom = custom_rules.CustomRules()
    if loaded is not None:
        scan_config = loaded.scan
        if scan_config.rules:
            in_pyproject = loaded.path is not None and loaded.path.name == "pyproject.toml"
            custom = custom_rules.from_config(scan_config.rules, loaded.path, in_pyproject)
        if scan_config.gitleaks_config:
            configured = Path(scan_config.gitleaks_config)
            if loaded.path is not None and not configured.is_absolute():
                configured = loaded.path.parent / configured
            custom = custom.merged(custom_rules.from_gitleaks(configured))
    if options.gitleaks_config:
        custom = custom.merged(custom_rules.from_gitleaks(Path(options.gitleaks_config)))
    return custom


def baseline_path(
    options: ScanOptions, loaded: ScanSettings | None, source: Source | None = None
) -> tuple[str | None, bool]:
    """The baseline a scan applies, and whether the user named it (--baseline).

    ``--baseline``, else ``scan.baseline`` (relative to the config file), else
    :data:`DEFAULT_BASELINE` at the top of the repository (or of the scanned directory).
    """
    if options.baseline:
        return options.baseline, True
    if loaded is not None and loaded.scan.baseline:
        configured = loaded.scan.baseline
        if loaded.path is not None and not os.path.isabs(configured):
            configured = os.path.join(os.path.dirname(str(loaded.path)), configured)
        return configured, False
    root = _default_root(options, source)
    return (os.path.join(root, DEFAULT_BASELINE) if root is not None else None), False


def _default_root(options: ScanOptions, source: Source | None) -> str | None:
    if options.targets == ("-",) or len(options.targets) > 1:
        return None
    target = options.targets[0]
    if options.staged or options.history:
        from claudesec.scan.sources._git import repo_top

        return repo_top(target)
    if os.path.isdir(target):
        return target
    return os.path.dirname(target) or "."


def _load_baseline(
    options: ScanOptions, loaded: ScanSettings | None, stats: ScanStats, source: Source
) -> Baseline | None:
    path, explicit = baseline_path(options, loaded, source)
    if path is None:
        return None
    from claudesec.scan.baseline import load_baseline

    if not explicit and not os.path.exists(path):
        if loaded is not None and loaded.scan.baseline:
            stats.warnings.append(f"scan.baseline {path} does not exist yet; nothing suppressed")
        return None
    return load_baseline(path)


def accept_hint(options: ScanOptions, loaded: ScanSettings | None) -> str:
    """The one command that accepts the current findings, so the next run (the pre-commit
    hook included) passes: it writes the very baseline every scan reads."""
    path, _ = baseline_path(dataclasses.replace(options, baseline=None), loaded)
    shown = options.baseline or DEFAULT_BASELINE
    if not options.baseline and path is not None:
        relative = os.path.relpath(path)
        shown = relative if not relative.startswith("..") else os.path.abspath(path)
    words = ["claudesec", "scan"]
    if options.staged:
        words.append("--staged")
    elif options.history:
        words.append("--history")
    if options.targets not in ((".",), ("-",)):
        words.extend(options.targets)
    words.extend(["--write-baseline", shown])
    reader = "this scan and the pre-commit hook read it" if path else "then pass --baseline"
    if options.baseline:
        reader = "then keep passing --baseline " + options.baseline
    return f"to accept these findings: {shlex.join(words)} ({reader})"


def execute(
    options: ScanOptions,
    loaded: ScanSettings | None,
    console: Console,
    *,
    stdin: BinaryIO | None = None,
) -> int:
    """Run the scan, write the report, and return the exit code (0 clean, 1 findings)."""
    from claudesec.scan.reports import get_format
    from claudesec.scan.reports.text import TextFormat, summary

    drawer = None
    if console.env.stderr_isatty and not options.staged:
        from claudesec.scan.progress import TerminalProgress

        drawer = TerminalProgress(console.env.stderr)
    try:
        result, unfiltered = run_scan(options, loaded, stdin=stdin, progress=drawer)
    finally:
        if drawer is not None:
            drawer.close()
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
        # The hook sees only what is staged: keep what earlier commits accepted.
        written = write_baseline(options.write_baseline, unfiltered, previous, merge=options.staged)
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
    if options.show_skipped:
        for skipped in sorted(result.stats.skipped, key=lambda s: (s.path, s.reason)):
            console.info(f"  skipped ({skipped.reason}): {skipped.path}")
    if result.failing:
        console.info("  " + accept_hint(options, loaded))
    if result.failing and options.staged:
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
