"""What a scan produces: frozen findings and the result of one run.

A :class:`Finding` holds the secret in memory (verification needs it) but never shows it:
``repr`` leaves it out, and every rendering goes through :attr:`Finding.hint`
(:func:`claudesec.redact.redact`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import cast

from claudesec.redact import redact

# Fingerprints are published (SARIF partialFingerprints, JSON reports), so they must not let a
# reader confirm a guess of a short secret cheaply: the secret goes through PBKDF2 first. The
# salt is fixed so the same finding keeps the same fingerprint across runs and machines; the
# iteration count is what one scan can afford per distinct secret.
FINGERPRINT_SALT = b"claudesec.fingerprint.v1"
FINGERPRINT_ITERATIONS = 2_000


class Verdict:
    """Outcomes of ``--verify``."""

    LIVE = "live"
    INVALID = "invalid"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class CommitInfo:
    """Where a history finding was introduced."""

    sha: str
    author: str
    email: str
    date: str


@dataclass(frozen=True, slots=True)
class HistorySpan:
    """How long one distinct secret lived in a repository's history (``--history``).

    ``first`` (the commit that introduced it) is :attr:`Finding.commit`; this holds the rest.
    """

    last: CommitInfo  # the newest commit whose tree still has it
    commits: int  # how many commits' trees carry it
    in_tree: bool  # whether HEAD still has it
    paths: int = 1  # how many distinct paths it appeared under


@dataclass(frozen=True, slots=True)
class Finding:
    """One leaked secret at one place."""

    rule_id: str
    kind: str
    severity: str
    path: str  # relative to the scan root (repository top for --staged and --history)
    line: int
    column: int
    fix: str
    secret: str = field(repr=False, compare=False)
    commit: CommitInfo | None = None
    # The AWS access key id paired with a secret key: needed by --verify, never displayed.
    related: str | None = field(default=None, repr=False, compare=False)
    verification: str | None = None
    verification_detail: str | None = None
    history: HistorySpan | None = None
    # What ``--revoke`` (or identification) did about a live key: identified, revoked,
    # rotated, refused, failed; and the one-line account of it.
    response: str | None = None
    response_detail: str | None = None
    # With ``--dedup``: the other places (``path:line``) holding the same secret.
    also_at: tuple[str, ...] = ()

    @property
    def hint(self) -> str:
        """The displayable form of the secret."""
        return redact(self.secret)

    @property
    def fingerprint(self) -> str:
        """Stable id of (rule, path, secret) for baselines and SARIF; reveals nothing usable."""
        return finding_fingerprint(self.rule_id, self.path, self.secret)


@lru_cache(maxsize=8192)
def stretched_secret(secret: str, salt: bytes = FINGERPRINT_SALT, iterations: int = 0) -> bytes:
    """PBKDF2-HMAC-SHA256 of the secret; cached because one secret often appears many times."""
    return hashlib.pbkdf2_hmac(
        "sha256",
        secret.encode("utf-8", "surrogateescape"),
        salt,
        iterations or FINGERPRINT_ITERATIONS,
    )


def finding_fingerprint(rule_id: str, path: str, secret: str) -> str:
    digest = hashlib.sha256()
    digest.update(f"{rule_id}\0{path}\0".encode("utf-8", "surrogateescape"))
    digest.update(stretched_secret(secret))
    return digest.hexdigest()[:32]


class SkipReason:
    """Why a file was not scanned, as counted in the summary."""

    BINARY = "binary"
    TOO_LARGE = "too large"
    UNREADABLE = "unreadable"
    LIMIT = "limit hit"  # an archive's depth, member count or expanded size limit


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file that was not scanned, and why (one of :class:`SkipReason`)."""

    path: str
    reason: str


@dataclass
class ScanStats:
    """Counters filled while scanning; mutable because sources and workers add to them."""

    files: int = 0
    bytes: int = 0
    blobs: int = 0
    commits: int = 0
    suppressed_inline: int = 0
    suppressed_path: int = 0
    suppressed_baseline: int = 0
    # Name-based findings in tests, fixtures and docs, not reported (scan.examples = "hold").
    held_examples: int = 0
    # With ``--dedup``: findings folded into the first finding of the same secret.
    duplicates: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def __getstate__(self) -> dict[str, object]:
        # Forked scan workers send their stats back pickled, and a tree's skipped files are
        # thousands (every binary): one Skipped object at a time that cost ~25 ms after the
        # last worker finished, while nothing else ran; two columns of strings cost ~3 ms.
        state = dict(self.__dict__)
        skipped: list[Skipped] = state.pop("skipped")
        state["skipped_columns"] = ([s.path for s in skipped], [s.reason for s in skipped])
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        state = dict(state)
        paths, reasons = cast("tuple[list[str], list[str]]", state.pop("skipped_columns"))
        self.__dict__.update(state)
        self.skipped = list(map(Skipped, paths, reasons))

    def merge(self, other: ScanStats) -> None:
        self.files += other.files
        self.bytes += other.bytes
        self.blobs += other.blobs
        self.commits += other.commits
        self.suppressed_inline += other.suppressed_inline
        self.suppressed_path += other.suppressed_path
        self.suppressed_baseline += other.suppressed_baseline
        self.held_examples += other.held_examples
        self.duplicates += other.duplicates
        self.skipped.extend(other.skipped)
        self.warnings.extend(other.warnings)


@dataclass(frozen=True)
class ScanResult:
    """Everything one scan run found and skipped."""

    source: str  # directory | staged | history | stdin
    root: str
    findings: tuple[Finding, ...]
    stats: ScanStats
    duration_s: float
    backend: str
    # Verdicts that fail the run (``--fail-on live``); empty means every finding fails it.
    fail_on: frozenset[str] = frozenset()

    @property
    def failing(self) -> tuple[Finding, ...]:
        """The findings that make the exit code 1."""
        if not self.fail_on:
            return self.findings
        return tuple(f for f in self.findings if f.verification in self.fail_on)

    @property
    def exit_code(self) -> int:
        # A live key that could not be revoked because a service failed may still work: that
        # outranks "found something".
        if any(f.response == "failed" for f in self.findings):
            return 3
        return 1 if self.failing else 0
