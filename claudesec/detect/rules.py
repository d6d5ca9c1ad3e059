"""The shapes of what the catalogue holds: a secret rule, a PII rule, and a secret found.

Rules are frozen dataclasses so the catalogue (:mod:`claudesec.detect.catalogue`) reads as a
table of data; their regexes compile once, when the catalogue module is imported.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


class Severity(StrEnum):
    """How bad a leak of this kind is; ``critical`` keys grant organisation-wide power."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


# A validator sees the secret and the whole match (for context such as quotes or the line).
Validator = Callable[[bytes, "re.Match[bytes]"], bool]


@dataclass(frozen=True, slots=True)
class Detector:
    """One rule of the catalogue."""

    id: str
    kind: str
    keywords: tuple[str, ...]
    pattern: str
    severity: Severity
    fix: str
    validate: Validator | None = None
    # Keywords matched without regard to case (only for the generic assignment rule).
    caseless: bool = False
    # How many bytes before the keyword a match may start (0 = the match starts at it).
    before: int = 0
    # How many bytes a match may extend past the keyword's start.
    after: int = 256
    # Optional: a regex every match starts with, keyword first (a prefix of ``pattern``). A
    # prefilter that runs regexes (hyperscan) reports only keyword hits that go on to match it,
    # which spares Python most of the hits of common words ("token", "://"). The result is the
    # same with or without it; only anchored rules may have one. Not verbose: spaces count.
    gate: str = ""
    # "near": the match is found at or around each keyword hit (built-in rules). "buffer": a
    # keyword anywhere in the buffer runs the regex over the whole buffer, and a rule without
    # keywords runs on every buffer: what gitleaks does, so custom rules find what it finds.
    scope: str = "near"
    # Where the secret is in a match; default: the group named ``secret``. Custom rules name
    # a group by number or take the first non-empty one, as gitleaks does.
    secret_span: Callable[[re.Match[bytes]], tuple[int, int]] | None = None
    # Built-in patterns are verbose (spaces are layout); a custom rule's regex is taken as is.
    verbose: bool = True
    _regex: re.Pattern[bytes] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.verbose:
            # A custom rule's regex fails where the rule is defined (its id and file line).
            _ = self.regex

    @property
    def regex(self) -> re.Pattern[bytes]:
        """The rule's regex, compiled on first use: most rules see no keyword hit in a run,
        and compiling all of them cost every ``scan --staged`` ~15 ms of its start."""
        compiled = self._regex
        if compiled is None:
            flags = re.VERBOSE if self.verbose else 0
            compiled = re.compile(self.pattern.encode("utf-8"), flags)
            object.__setattr__(self, "_regex", compiled)  # a race compiles it twice: harmless
        return compiled

    def span_of(self, match: re.Match[bytes]) -> tuple[int, int]:
        """Start and end of the secret in a match of this rule."""
        if self.secret_span is not None:
            return self.secret_span(match)
        return match.span("secret")

    @property
    def anchored(self) -> bool:
        """Whether every match starts exactly at a keyword hit."""
        return self.before == 0

    def kind_of(self, match: re.Match[bytes]) -> str:
        """The kind label of one match (the Anthropic family names its token kind)."""
        if "kind" in self.regex.groupindex and match.group("kind"):
            return self.kind.format(kind=match.group("kind").decode("ascii", "replace"))
        return self.kind


@dataclass(frozen=True, slots=True)
class SecretMatch:
    """A secret found in a buffer: offsets are into that buffer (bytes, or str for str input)."""

    detector: Detector
    kind: str
    start: int
    end: int
    secret: str = field(repr=False)

    @property
    def rule_id(self) -> str:
        return self.detector.id


@dataclass(frozen=True, slots=True)
class PiiRule:
    """One personal-data rule: the exact pattern (with its boundaries), the shapes a one-pass
    prefilter uses to find where a candidate may end, and a validator over the matched bytes.

    A rule with an ``anchor`` (email's ``@``) is found from each occurrence of that literal
    instead of from shapes.
    """

    id: str
    label: str
    pattern: str
    shapes: tuple[str, ...]
    max_len: int
    validate: Callable[[bytes], bool] | None = None
    anchor: str = ""
    # Contexts where a match is not this kind of value, each ``(data, start, end) -> bool``: a
    # hex dump, a run of number groups, a URL's path (validators.in_hex_dump, in_number_run,
    # in_url_path).
    unless: tuple[Callable[[bytes, int, int], bool], ...] = ()
    _compiled: tuple[re.Pattern[bytes], tuple[re.Pattern[bytes], ...]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def _patterns(self) -> tuple[re.Pattern[bytes], tuple[re.Pattern[bytes], ...]]:
        # Compiled on first use: a secrets-only scan (the pre-commit hook) never needs them.
        compiled = self._compiled
        if compiled is None:
            compiled = (
                re.compile(self.pattern.encode("ascii")),
                tuple(re.compile(s.encode("ascii")) for s in self.shapes),
            )
            object.__setattr__(self, "_compiled", compiled)
        return compiled

    @property
    def regex(self) -> re.Pattern[bytes]:
        return self._patterns()[0]

    @property
    def shape_regexes(self) -> tuple[re.Pattern[bytes], ...]:
        return self._patterns()[1]
