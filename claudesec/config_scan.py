"""What a scan needs of the configuration: the ``[scan]`` section's schema, and a load of that
section alone.

Building :class:`claudesec.config.Config` means creating 21 frozen dataclasses at import, 17 ms
that Python 3.11 spends compiling their methods: a sixth of a pre-commit hook's run. A scan
reads only ``[scan]``. With no file and no ``CLAUDESEC_*`` override there is nothing to load
and it takes :class:`ScanConfig`'s defaults (:func:`claudesec.config_load.nothing_to_load`);
with a file it builds its one section through the same checks as every other
(:func:`load_scan_config`), and names an unknown top-level table as the whole load would.
Problems in another section are for the commands that read it; ``--verify`` and ``--revoke``,
which reach past ``[scan]`` for the Admin key, load the whole file. :mod:`claudesec.config`
takes the section's schema from here, so it has one definition.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from claudesec.config_load import build, check_keys, open_config

# The top-level tables of claudesec.config.Config, in its order (a test keeps them equal).
SECTION_NAMES = (
    "anthropic", "scan", "audit", "keys", "policy", "identity", "dlp", "export", "alerts",
    "archive", "prompt_vault", "proxy", "federation", "org",
)  # fmt: skip


def config_field(default: Any, help: str, *, secret: bool = False, positive: bool = False) -> Any:
    """A field with help text; mutable defaults are passed as factories.

    No count, size or duration here is negative, so numbers must be >= 0; fields where 0 means
    nothing useful (a timeout, a cap, a batch size) say ``positive=True`` and must be > 0.
    """
    meta = {"help": help, "secret": secret, "positive": positive}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class ScanConfig:
    """``[scan]``: what ``claudesec scan`` reads, skips, reports and does with live keys."""

    exclude_paths: tuple[str, ...] = config_field(
        (), "Glob patterns of paths never scanned (matched against repo-relative paths)."
    )
    allow_paths: tuple[str, ...] = config_field(
        (), "Glob patterns of paths whose findings are suppressed (fixtures, docs)."
    )
    disabled_rules: tuple[str, ...] = config_field((), "Detector rule ids that are switched off.")
    baseline: str = config_field(
        "", "Baseline file of known findings (relative to the config file)."
    )
    max_file_size_mb: int = config_field(
        256,
        "Files larger than this are skipped with a warning (0 = no limit).",
        positive=True,
    )
    jobs: int = config_field(0, "Worker processes for large trees (0 = one per core).")
    verify_timeout_s: float = config_field(
        5.0, "Timeout of each --verify request, in seconds.", positive=True
    )
    verify_concurrency: int = config_field(
        8, "How many --verify requests may run at once.", positive=True
    )
    sts_endpoint_url: str = config_field(
        "", "AWS STS endpoint used by --verify (empty = AWS default)."
    )
    archive_max_depth: int = config_field(4, "How deep archives inside archives are opened.")
    archive_max_mb: int = config_field(
        256, "Most bytes one file's archives may expand to; beyond, it is skipped (limit hit)."
    )
    rules: tuple[dict[str, str | float | bool | tuple[str, ...]], ...] = config_field(
        (),
        "Custom rules, one [[scan.rules]] table each: id, regex, keywords, secret_group, "
        "entropy, severity, description, paths, allow_paths, allow_values, allow_stopwords.",
    )
    gitleaks_config: str = config_field(
        "", "A gitleaks rule file used as is (relative to the config file), e.g. .gitleaks.toml."
    )
    examples: Literal["hold", "report"] = config_field(
        "hold",
        "Name-based findings (generic assignments, passwords in URLs, Basic/Bearer headers, an "
        "AWS key id alone) in tests, fixtures and docs: 'hold' counts them in the summary, "
        "'report' reports them. Format-recognised keys are reported everywhere.",
    )
    on_live_key: Literal["report", "revoke"] = config_field(
        "report",
        "What `scan --verify` does with a live Anthropic key: 'report' it, or 'revoke' it "
        "through the Admin API at once (as `--revoke`; for CI).",
    )


if TYPE_CHECKING:

    class ScanSettings(Protocol):
        """What a scan reads of a load: a :class:`LoadedScanConfig` or a whole
        :class:`claudesec.config.LoadedConfig` (``--verify`` and ``--revoke``, which reach
        past ``[scan]``, load the whole file from ``path`` when given the first)."""

        @property
        def scan(self) -> ScanConfig: ...

        @property
        def path(self) -> Path | None: ...


class LoadedScanConfig:
    """The ``[scan]`` section in effect and the file it came from (None: defaults only).

    A plain class: a dataclass here would cost every scan ~0.5 ms to create at import."""

    __slots__ = ("path", "scan")

    def __init__(self, scan: ScanConfig, path: Path | None) -> None:
        self.scan = scan
        self.path = path


def load_scan_config(
    path: Path | None = None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> LoadedScanConfig:
    """``[scan]`` as :func:`claudesec.config.load_config` would build it, from the same file
    and ``CLAUDESEC_SCAN_*`` overrides, with the same errors; no other section is built."""

    env = os.environ if environ is None else environ
    data, ctx = open_config(path, cwd=cwd, environ=env, sections={"scan": ScanConfig})
    check_keys(data, SECTION_NAMES, "", ctx)
    scan = build(ScanConfig, data.get("scan", {}), "scan", ctx)
    return LoadedScanConfig(scan=scan, path=ctx.path)
