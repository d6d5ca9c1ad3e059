"""What a scan needs of the configuration before the rest of it: where a config file is,
whether a load would read anything at all, and the ``[scan]`` section's schema.

Building :class:`claudesec.config.Config` means creating 21 frozen dataclasses at import, 17 ms
that Python 3.11 spends compiling their methods: a sixth of a pre-commit hook's run. With no
file and no ``CLAUDESEC_*`` override there is nothing to load, and a scan takes
:class:`ScanConfig`'s defaults from here (:func:`nothing_to_load`); anything else loads the
whole configuration as before. :mod:`claudesec.config` imports everything here, so the schema
and discovery have one definition.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

CONFIG_FILENAMES = ("claudesec.toml", ".claudesec.toml")
ENV_PREFIX = "CLAUDESEC_"
# Environment variables with a meaning of their own, not config overrides.
RESERVED_ENV = frozenset({"CLAUDESEC_HOME", "CLAUDESEC_CONFIG", "CLAUDESEC_DEBUG"})


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


def find_config_file(start: Path) -> Path | None:
    """The nearest config file from ``start`` upwards: claudesec.toml, .claudesec.toml, or a
    pyproject.toml with a ``[tool.claudesec]`` table."""
    for directory in (start, *start.parents):
        for name in CONFIG_FILENAMES:
            candidate = directory / name
            if candidate.is_file():
                return candidate
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file() and _has_tool_table(pyproject):
            return pyproject
    return None


def _has_tool_table(pyproject: Path) -> bool:
    try:
        text = pyproject.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return re.search(r"^\s*\[tool\.claudesec[\].]", text, re.MULTILINE) is not None


def nothing_to_load(
    path: Path | None = None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> bool:
    """Whether :func:`claudesec.config.load_config` would return the embedded defaults:
    no ``--config``, no ``CLAUDESEC_CONFIG``, no file found from ``cwd`` upwards and no
    ``CLAUDESEC_*`` override in the environment."""
    env = os.environ if environ is None else environ
    if path is not None or env.get("CLAUDESEC_CONFIG"):
        return False
    if any(name.startswith(ENV_PREFIX) and name not in RESERVED_ENV for name in env):
        return False
    return find_config_file(cwd or Path.cwd()) is None
