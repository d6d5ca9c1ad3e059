"""Data-loss prevention for Claude requests and responses: secrets and PII, found and redacted.

Secrets and personal data come from the one catalogue (:mod:`claudesec.detect.catalogue`)
through its matchers (:mod:`claudesec.detect.engine`, :mod:`claudesec.detect.pii`), so a key
``claudesec scan`` reports in a file is the key DLP stops in a prompt. Only the custom patterns
of ``[dlp] custom_patterns`` are DLP's own. This module decides what a request's texts are,
how findings are resolved against each other, and how they are redacted.

A request is inspected by walking its JSON generically (:func:`request_text_slots`): every
string and every free-form key is a text part, whatever block type holds it, so a block type
the API adds later is scanned without a code change. The parts are joined with a separator no
detector matches across and scanned in one pass. Findings carry a kind and a position, never
the matched value: what leaves this module for the audit log is kinds and counts.

Allowlists (``[dlp] allow_values`` / ``allow_patterns``, and per role) name benign values, such
as the fixed addresses a client puts in its own system prompt: a finding whose value is on the
list is neither blocked nor redacted, but still counted apart (``allowed``). Optional
normalisation (``[dlp] normalize``) also finds values hidden by zero-width characters or split
by whitespace; the findings map back to the original text, so redaction removes every
character of the hidden value.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from claudesec.errors import ConfigError

if TYPE_CHECKING:
    from claudesec.config import DlpConfig
    from claudesec.detect.engine import Engine

DlpMode = Literal["block", "redact", "log"]
Category = Literal["secret", "pii", "custom"]

# Between joined parts: a NUL no pattern accepts, between newlines so line-based validators
# (the generic assignment rule) see each part's lines as they are.
_SEPARATOR = b"\n\x00\n"
_KIND_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")


def placeholder(kind: str) -> str:
    """The typed text that replaces a redacted value, e.g. ``[REDACTED:anthropic-api-key]``."""
    return f"[REDACTED:{kind}]"


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Finding:
    """Where a sensitive value is, and what kind it is. Deliberately no value.

    ``part`` marks the second part of a paired secret (the access key id of an AWS key pair):
    it is redacted with its secret but not counted again.
    """

    kind: str
    category: Category
    start: int
    end: int
    part: bool = False


@dataclass(frozen=True)
class DlpReport:
    """Kinds and counts of what DLP found: the only DLP facts that reach a record."""

    counts: Mapping[str, int] = field(default_factory=dict)

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(sorted(self.counts))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def __bool__(self) -> bool:
        return bool(self.counts)

    def merged(self, other: DlpReport) -> DlpReport:
        if not other:
            return self
        if not self:
            return other
        return DlpReport(dict(Counter(self.counts) + Counter(other.counts)))

    def describe(self) -> str:
        """``"1 anthropic-api-key, 2 email"``: safe for messages (no values)."""
        return ", ".join(f"{n} {kind}" for kind, n in sorted(self.counts.items()))

    @classmethod
    def of(cls, findings: Sequence[Finding]) -> DlpReport:
        if not findings:
            return _EMPTY
        return cls(dict(Counter(f.kind for f in findings if not f.part)))


_EMPTY = DlpReport()


# --------------------------------------------------------------------------- the scanner


class DlpScanner:
    """Finds secrets and PII in text. Build once (patterns compile), reuse from any thread."""

    def __init__(
        self,
        *,
        secrets: bool = True,
        pii: bool = True,
        custom_patterns: Mapping[str, str] | None = None,
        disabled: Sequence[str] = (),
        backend: Literal["auto", "hyperscan", "python"] = "auto",
        allow_values: Sequence[str] = (),
        allow_patterns: Sequence[str] = (),
        normalize: bool = False,
    ) -> None:
        from claudesec.detect.catalogue import DETECTORS, PII_KIND_ALIASES, PII_RULES
        from claudesec.detect.engine import default_engine, hyperscan_available
        from claudesec.detect.pii import PiiMatcher

        off = set(disabled)
        if backend == "auto":
            backend = "hyperscan" if hyperscan_available() else "python"
        self.backend = backend
        self._engine: Engine | None = None
        if secrets:
            engine_backend = "hyperscan" if backend == "hyperscan" else "python"
            self._engine = default_engine(
                DETECTORS, disabled=off & {d.id for d in DETECTORS}, backend=engine_backend
            )
        rules = (
            tuple(
                rule
                for rule in PII_RULES
                if rule.id not in off and PII_KIND_ALIASES.get(rule.id) not in off
            )
            if pii
            else ()
        )
        self._pii = PiiMatcher(rules, hyperscan=backend == "hyperscan")
        self._custom = compile_custom_patterns(custom_patterns or {})
        self.normalize = normalize
        self.allow = compile_allowlist(allow_values, allow_patterns, "dlp")
        self._role_allow: dict[tuple[tuple[str, ...], tuple[str, ...]], Allowlist] = {}
        # Digest of a large text part -> its findings and allowlisted findings.
        self._cache: dict[
            tuple[bytes, bool, Allowlist], tuple[tuple[Finding, ...], tuple[Finding, ...]]
        ] = {}

    @classmethod
    def from_config(cls, dlp: DlpConfig) -> DlpScanner:
        return cls(
            custom_patterns=dlp.custom_patterns,
            disabled=dlp.disabled,
            allow_values=dlp.allow_values,
            allow_patterns=dlp.allow_patterns,
            normalize=dlp.normalize,
        )

    def allowlist(
        self, values: Sequence[str] = (), patterns: Sequence[str] = (), *, key: str = "role"
    ) -> Allowlist:
        """The global allowlist joined with a role's (compiled once per distinct list)."""
        if not values and not patterns:
            return self.allow
        cache_key = (tuple(values), tuple(patterns))
        found = self._role_allow.get(cache_key)
        if found is None:
            found = self.allow.joined(compile_allowlist(values, patterns, key))
            self._role_allow[cache_key] = found
        return found

    # ----------------------------------------------------------------- scanning

    def scan_bytes(
        self,
        data: bytes,
        *,
        pii: bool = True,
        allow: Allowlist | None = None,
        allowed: list[Finding] | None = None,
    ) -> list[Finding]:
        """Non-overlapping findings in ``data`` (UTF-8), by position; secrets win overlaps.

        Findings whose value ``allow`` (default: the global allowlist) names are left out, and
        appended to ``allowed`` when given.
        """
        allow = self.allow if allow is None else allow
        if not self.normalize:
            return self._scan(data, pii, allow, allowed)
        return self._scan_normalized(data, pii, allow, allowed)

    def _scan(
        self, data: bytes, pii: bool, allow: Allowlist, allowed: list[Finding] | None
    ) -> list[Finding]:
        pairs: dict[int, tuple[int, int]] = {}
        findings: list[Finding] = []
        if self._engine is not None:
            for hit in self._engine.find(data):
                findings.append(Finding(hit.detector.id, "secret", hit.start, hit.end))
                if hit.related_span is not None:
                    pairs[hit.start] = hit.related_span
        if pii:
            candidates = [
                Finding(hit.kind, "pii", hit.start, hit.end) for hit in self._pii.find(data)
            ]
            for kind, regex in self._custom:
                candidates.extend(
                    Finding(kind, "custom", m.start(), m.end())
                    for m in regex.finditer(data)
                    if m.end() > m.start()
                )
            if candidates:
                findings = _resolve(findings, candidates, pairs.values())
        if allow and findings:
            findings = _allowed_out(data, findings, pairs, allow, allowed)
        if pairs:
            # Both parts of a pair go: a redacted secret beside its clear key id still names
            # the credential (and halves what an attacker must guess).
            findings.extend(
                Finding(f.kind, f.category, *pairs[f.start], part=True)
                for f in list(findings)
                if f.start in pairs and f.category == "secret"
            )
            findings.sort(key=lambda f: f.start)
        return findings

    def _scan_normalized(
        self, data: bytes, pii: bool, allow: Allowlist, allowed: list[Finding] | None
    ) -> list[Finding]:
        # Zero-width characters removed, everything scanned; then keys split by whitespace.
        squeezed = _Squeezed.of(data, _ZERO_WIDTH)
        visible = data if squeezed is None else squeezed.data
        findings = self._scan(visible, pii, allow, allowed)
        findings.extend(self._split_keys(visible, findings, allow))
        if squeezed is not None:
            findings = [squeezed.back(f) for f in findings]
        findings.sort(key=lambda f: f.start)
        return findings

    def _split_keys(self, data: bytes, found: Sequence[Finding], allow: Allowlist) -> list[Finding]:
        """Secrets broken into pieces by spaces or newlines (``ghp_abc\\ndef``).

        From each whitespace-separated token holding a rule's keyword, the following tokens
        are joined one at a time (up to a key's length) until a rule matches across a joint.
        Joining stops there: joining every token of the text would glue the key to the next
        word and invent matches in prose.
        """
        if self._engine is None:
            return []
        detectors = self._engine.detectors
        marks = sorted(
            {
                at
                for index, at in self._engine.keyword_hits(data)
                if detectors[index].id not in _PROSE_RULES and not detectors[index].caseless
            }
        )
        if not marks:
            return []
        tokens = [(m.start(), m.end()) for m in _TOKEN.finditer(data)]
        starts = [t[0] for t in tokens]
        taken = sorted((f.start, f.end) for f in found)
        extra: list[Finding] = []
        tried: set[int] = set()
        for mark in marks:
            first = bisect.bisect_right(starts, mark) - 1
            if first < 0 or first in tried or tokens[first][1] <= mark:
                continue
            tried.add(first)
            for last in range(first + 1, min(first + _SPLIT_PIECES, len(tokens))):
                pieces = tokens[first : last + 1]
                if pieces[-1][1] - pieces[0][0] > _SPLIT_SPAN:
                    break
                joined = _Squeezed.joined(data, pieces)
                first_len = pieces[0][1] - pieces[0][0]
                hits = [
                    f
                    for f in self._scan(joined.data, False, allow, None)
                    if f.kind not in _PROSE_RULES and (f.part or (f.start < first_len < f.end))
                ]
                if not any(not f.part for f in hits):
                    continue
                for hit in hits:
                    original = joined.back(hit)
                    if not _overlaps(taken, original.start, original.end):
                        extra.append(original)
                break
        return extra

    def scan(self, text: str, *, pii: bool = True) -> DlpReport:
        """Kinds and counts of what ``text`` holds."""
        return DlpReport.of(self.scan_bytes(_encode(text), pii=pii))

    def redact(self, text: str, *, pii: bool = True) -> tuple[str, DlpReport]:
        """``text`` with every finding replaced by its placeholder, and what was replaced."""
        data = _encode(text)
        findings = self.scan_bytes(data, pii=pii)
        if not findings:
            return text, _EMPTY
        return _apply(data, findings), DlpReport.of(findings)

    def scan_parts(
        self,
        parts: Sequence[str],
        *,
        pii: bool = True,
        allow: Allowlist | None = None,
        allowed: list[Finding] | None = None,
        allowed_parts: list[list[Finding]] | None = None,
    ) -> list[list[Finding]]:
        """Findings per part (offsets into that part's UTF-8 bytes), from one scan of all.

        Allowlisted findings are appended to ``allowed`` (offsets into the joined text) and,
        per part, to ``allowed_parts`` (one list per part, offsets into that part).
        """
        if not parts:
            return []
        encoded = [_encode(p) for p in parts]
        starts: list[int] = []
        offset = 0
        for chunk in encoded:
            starts.append(offset)
            offset += len(chunk) + len(_SEPARATOR)
        joined = encoded[0] if len(encoded) == 1 else _SEPARATOR.join(encoded)
        let_by: list[Finding] = []
        found = self.scan_bytes(joined, pii=pii, allow=allow, allowed=let_by)
        if allowed is not None:
            allowed.extend(let_by)
        if allowed_parts is not None:
            allowed_parts[:] = _split(let_by, starts, encoded)
        if len(encoded) == 1:
            return [found]
        return _split(found, starts, encoded)

    def inspect_request(
        self, path: str, body: Any, *, allow: Allowlist | None = None
    ) -> RequestInspection:
        """Every text part of a request body, what each holds, and what the allowlist let by.

        Large parts are remembered by a digest (never their text): a client resends the same
        system prompt, tool definitions and conversation history on every call, and only what
        is new is scanned again. Small parts are always scanned, together with the new large
        ones, in one pass.
        """
        slots = request_text_slots(path, body)
        if not slots:
            return RequestInspection()
        allow = self.allow if allow is None else allow
        per_slot: list[list[Finding] | None] = [None] * len(slots)
        allowed: list[Finding] = []
        fresh: list[int] = []
        keys: dict[int, tuple[bytes, bool, Allowlist]] = {}
        cache = self._cache
        for index, slot in enumerate(slots):
            if len(slot.text) >= _CACHE_MIN:
                key = (_digest(slot.text), True, allow)
                remembered = cache.get(key)
                if remembered is not None:
                    per_slot[index] = list(remembered[0])
                    allowed.extend(remembered[1])
                    continue
                keys[index] = key
            fresh.append(index)
        if fresh:
            allowed_parts: list[list[Finding]] = []
            found = self.scan_parts(
                [slots[i].text for i in fresh], allow=allow, allowed_parts=allowed_parts
            )
            if len(allowed_parts) != len(fresh):
                allowed_parts = [[] for _ in fresh]
            if len(cache) + len(keys) > _CACHE_ENTRIES:
                cache.clear()
            for index, findings, let_by in zip(fresh, found, allowed_parts, strict=True):
                per_slot[index] = findings
                allowed.extend(let_by)
                if index in keys:
                    cache[keys[index]] = (tuple(findings), tuple(let_by))
        final = [found or [] for found in per_slot]
        return RequestInspection(
            slots=tuple(slots),
            per_slot=tuple(tuple(found) for found in final),
            report=DlpReport.of([f for found in final for f in found]),
            allowed=DlpReport.of(allowed),
        )

    def inspect_fields(
        self,
        headers: Sequence[tuple[str, str]],
        query: Sequence[tuple[str, str]],
        *,
        allow: Allowlist | None = None,
    ) -> FieldInspection:
        """What the headers and query parameters an attempt carries upstream hold.

        Query values and the API's own ``anthropic-*`` headers (``workspace_id`` and
        ``user_profile_id`` travel there) are request fields: secrets and PII. Any other
        header is looked at for secrets only, since an address in ``X-Forwarded-For`` or a
        ``User-Agent`` is the network's, not a leak; transport headers not at all.
        """
        full: list[tuple[str, str]] = [(f"query {name}", value) for name, value in query]
        secrets_only: list[tuple[str, str]] = []
        for name, value in headers:
            lower = name.lower()
            if lower in _TRANSPORT_HEADERS or not value:
                continue
            (full if lower.startswith("anthropic-") else secrets_only).append(
                (f"header {lower}", value)
            )
        findings: list[Finding] = []
        names: list[str] = []
        for fields_, pii in ((full, True), (secrets_only, False)):
            if not fields_:
                continue
            per_part = self.scan_parts([value for _, value in fields_], pii=pii, allow=allow)
            for (where, _), found in zip(fields_, per_part, strict=True):
                if found:
                    findings.extend(found)
                    names.append(where)
        return FieldInspection(DlpReport.of(findings), tuple(names))


# Headers a caller does not write: transport, content negotiation, the SDK's own telemetry,
# tracing. Never inspected (and credentials never reach DLP: the client and the proxy leave
# them out before).
_TRANSPORT_HEADERS = frozenset(
    {
        "accept", "accept-encoding", "accept-language", "cache-control", "connection",
        "content-encoding", "content-length", "content-type", "expect", "host",
        "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "traceparent",
        "tracestate", "baggage", "x-stainless-arch", "x-stainless-lang",
        "x-stainless-os", "x-stainless-package-version", "x-stainless-retry-count",
        "x-stainless-runtime", "x-stainless-runtime-version", "x-stainless-timeout",
        "x-stainless-async", "x-stainless-helper-method", "x-stainless-stream-helper",
        "x-stainless-read-timeout", "anthropic-version",
    }
)  # fmt: skip


@dataclass(frozen=True)
class FieldInspection:
    """What DLP found in an attempt's headers and query: kinds, and which fields (by name,
    never by value)."""

    report: DlpReport = field(default_factory=DlpReport)
    names: tuple[str, ...] = ()


def _split(
    findings: Sequence[Finding], starts: Sequence[int], encoded: Sequence[bytes]
) -> list[list[Finding]]:
    """Findings in joined parts, as findings per part (offsets into each part)."""
    per_part: list[list[Finding]] = [[] for _ in encoded]
    for finding in findings:
        index = bisect.bisect_right(starts, finding.start) - 1
        base = starts[index]
        end = min(finding.end - base, len(encoded[index]))
        per_part[index].append(
            Finding(finding.kind, finding.category, finding.start - base, end, finding.part)
        )
    return per_part


# Parts at least this long (characters) are remembered by digest; at most this many at once.
_CACHE_MIN = 512
_CACHE_ENTRIES = 4096


def _digest(text: str) -> bytes:
    return hashlib.blake2b(_encode(text), digest_size=16).digest()


# --------------------------------------------------------------------------- allowlists


@dataclass(frozen=True, eq=False)
class Allowlist:
    """Benign values DLP lets through: exact values, and patterns a whole value must match."""

    values: frozenset[bytes] = frozenset()
    patterns: tuple[re.Pattern[bytes], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.values or self.patterns)

    def allows(self, value: bytes) -> bool:
        return value in self.values or any(p.fullmatch(value) for p in self.patterns)

    def joined(self, other: Allowlist) -> Allowlist:
        return Allowlist(self.values | other.values, self.patterns + other.patterns)


def compile_allowlist(values: Sequence[str], patterns: Sequence[str], key: str) -> Allowlist:
    """Validate and compile an allowlist; a bad entry is a one-line ConfigError naming its key.

    ``key`` is where the lists live (``dlp`` or ``policy.roles.NAME``): the errors name
    ``<key>.allow_values`` / ``<key>.allow_patterns`` (``dlp_allow_*`` under a role).
    """
    stem = "allow" if key == "dlp" else "dlp_allow"
    compiled: list[re.Pattern[bytes]] = []
    for value in values:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{key}.{stem}_values: expected non-empty strings")
    for index, pattern in enumerate(patterns):
        where = f"{key}.{stem}_patterns[{index}]"
        if not isinstance(pattern, str) or not pattern:
            raise ConfigError(f"{where}: expected a non-empty regular expression")
        try:
            regex = re.compile(pattern.encode("utf-8"))
        except re.error as exc:
            raise ConfigError(f"{where}: invalid regular expression: {exc}") from None
        if regex.fullmatch(b""):
            raise ConfigError(f"{where}: the pattern matches the empty string")
        compiled.append(regex)
    return Allowlist(frozenset(_encode(v) for v in values), tuple(compiled))


def _allowed_out(
    data: bytes,
    findings: list[Finding],
    pairs: Mapping[int, tuple[int, int]],
    allow: Allowlist,
    allowed: list[Finding] | None,
) -> list[Finding]:
    kept: list[Finding] = []
    for finding in findings:
        value = data[finding.start : finding.end]
        pair = pairs.get(finding.start) if finding.category == "secret" else None
        if allow.allows(value) or (pair is not None and allow.allows(data[pair[0] : pair[1]])):
            if allowed is not None:
                allowed.append(finding)
        else:
            kept.append(finding)
    return kept


# --------------------------------------------------------------------------- normalisation

# Zero-width space/non-joiner/joiner, word joiner, BOM and soft hyphen: invisible when shown,
# so a key with one inside looks whole to a reader and broken to a pattern.
# A character class first lets the regex engine skip to candidate bytes; plain alternation
# made it try every position (5x slower on text with none of them).
_ZERO_WIDTH = re.compile(
    rb"[\xe2\xef\xc2](?:(?<=\xe2)\x80[\x8b-\x8d]|(?<=\xe2)\x81\xa0|(?<=\xef)\xbb\xbf|(?<=\xc2)\xad)"
    rb"(?:\xe2\x80[\x8b-\x8d]|\xe2\x81\xa0|\xef\xbb\xbf|\xc2\xad)*"
)
_TOKEN = re.compile(rb"[^ \t\r\n\f\v]+")
_SPLIT_PIECES = 12  # a key broken into at most this many pieces
_SPLIT_SPAN = 1024  # ... spread over at most this many bytes
# Rules that match prose shapes (name = value): joining words would invent values for them.
_PROSE_RULES = frozenset({"generic-secret-assignment"})


@dataclass(frozen=True, slots=True)
class _Squeezed:
    """``data`` with some characters removed, and the way back to the original offsets."""

    data: bytes
    norm_starts: list[int]
    orig_starts: list[int]

    @classmethod
    def joined(cls, data: bytes, pieces: Sequence[tuple[int, int]]) -> _Squeezed:
        """The ``(start, end)`` pieces of ``data`` joined, with the way back."""
        norm_starts: list[int] = []
        size = 0
        for start, end in pieces:
            norm_starts.append(size)
            size += end - start
        return cls(b"".join(data[s:e] for s, e in pieces), norm_starts, [s for s, _ in pieces])

    @classmethod
    def of(cls, data: bytes, removed: re.Pattern[bytes]) -> _Squeezed | None:
        if removed.search(data) is None:
            return None
        pieces: list[bytes] = []
        norm_starts: list[int] = []
        orig_starts: list[int] = []
        last = 0
        size = 0
        for match in removed.finditer(data):
            if match.start() > last:
                norm_starts.append(size)
                orig_starts.append(last)
                pieces.append(data[last : match.start()])
                size += match.start() - last
            last = match.end()
        norm_starts.append(size)
        orig_starts.append(last)
        pieces.append(data[last:])
        return cls(b"".join(pieces), norm_starts, orig_starts)

    def _position(self, offset: int) -> int:
        index = bisect.bisect_right(self.norm_starts, offset) - 1
        return self.orig_starts[index] + offset - self.norm_starts[index]

    def back(self, finding: Finding) -> Finding:
        """The finding with its offsets in the original data (covering what was removed)."""
        start = self._position(finding.start)
        end = self._position(finding.end - 1) + 1 if finding.end > finding.start else start
        return Finding(finding.kind, finding.category, start, end, finding.part)


def _overlaps(taken: list[tuple[int, int]], start: int, end: int) -> bool:
    i = bisect.bisect_left(taken, (start, start))
    before = taken[i - 1] if i else None
    after = taken[i] if i < len(taken) else None
    return (before is not None and before[1] > start) or (after is not None and after[0] < end)


def compile_custom_patterns(
    patterns: Mapping[str, str],
) -> tuple[tuple[str, re.Pattern[bytes]], ...]:
    """Validate and compile ``[dlp] custom_patterns``; a bad one is a one-line ConfigError."""
    compiled: list[tuple[str, re.Pattern[bytes]]] = []
    for kind, pattern in patterns.items():
        key = f"dlp.custom_patterns.{kind}"
        if not _KIND_RE.match(kind):
            raise ConfigError(
                f"{key}: the kind must be lower-case letters, digits and '-' (at most 48)",
                hint="it becomes the placeholder, e.g. [REDACTED:employee-id]",
            )
        if not isinstance(pattern, str) or not pattern:
            raise ConfigError(f"{key}: expected a non-empty regular expression")
        try:
            regex = re.compile(pattern.encode("utf-8"))
        except re.error as exc:
            raise ConfigError(f"{key}: invalid regular expression: {exc}") from None
        if regex.match(b""):
            raise ConfigError(f"{key}: the pattern matches the empty string")
        compiled.append((kind, regex))
    return tuple(compiled)


def _resolve(
    secrets: list[Finding],
    candidates: list[Finding],
    parts: Iterable[tuple[int, int]] = (),
) -> list[Finding]:
    """Secrets (and their paired parts) first, then the earliest and longest PII candidate
    claims its span."""
    accepted = list(secrets)
    taken = sorted([(f.start, f.end) for f in secrets] + list(parts))
    for candidate in sorted(candidates, key=lambda f: (f.start, f.start - f.end)):
        if _overlaps(taken, candidate.start, candidate.end):
            continue
        i = bisect.bisect_left(taken, (candidate.start, candidate.start))
        taken.insert(i, (candidate.start, candidate.end))
        accepted.append(candidate)
    accepted.sort(key=lambda f: f.start)
    return accepted


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _apply(data: bytes, findings: Sequence[Finding]) -> str:
    out: list[bytes] = []
    last = 0
    for finding in findings:
        end = finding.end
        # Never leave half of a multi-byte character behind a cut.
        while end < len(data) and data[end] & 0xC0 == 0x80:
            end += 1
        out.append(data[last : finding.start])
        out.append(placeholder(finding.kind).encode("ascii"))
        last = end
    out.append(data[last:])
    return b"".join(out).decode("utf-8", "surrogatepass")


def redact_findings(text: str, findings: Sequence[Finding]) -> str:
    """``text`` with ``findings`` (offsets into its UTF-8 bytes) replaced by placeholders."""
    if not findings:
        return text
    return _apply(_encode(text), findings)


# --------------------------------------------------------------------------- request bodies

Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class TextSlot:
    """One text part of a request body and where it sits (keys and indexes from the root).

    ``key``: the text is the name of the mapping key at ``path`` (its last step), not a value.
    ``signed``: the text sits in a signed block (thinking, redacted_thinking): the API rejects
    the block if it changes, so it cannot be redacted. ``base64``: the value at ``path`` is
    the base64 of ``text`` (a plain-text document sent as base64).
    """

    path: Path
    text: str
    key: bool = False
    signed: bool = False
    base64: bool = False


# Mapping keys that are the API's own field names: they are never a user's text, and skipping
# them keeps the number of parts (and the scan's per-part cost) down. Free-form mappings (tool
# inputs, input schemas, metadata) have their keys scanned.
_API_KEYS = frozenset(
    {
        "type", "role", "content", "text", "model", "messages", "system", "max_tokens",
        "source", "data", "media_type", "id", "name", "input", "tool_use_id", "is_error",
        "cache_control", "citations", "title", "context", "tools", "tool_choice",
        "description", "input_schema", "properties", "required", "metadata", "user_id",
        "stop_sequences", "stream", "temperature", "top_k", "top_p", "thinking",
        "budget_tokens", "signature", "url", "file_id", "ttl", "cited_text",
        "document_index", "document_title", "start_char_index", "end_char_index",
        "start_page_number", "end_page_number", "start_block_index", "end_block_index",
        "search_result_index", "requests", "params", "custom_id", "container", "mcp_servers",
        "service_tier", "output_config", "items", "enum", "format", "additionalProperties",
    }
)  # fmt: skip
# Fields that name or identify rather than say something: inspected, but not prompt text.
_NOT_PROMPT = frozenset(
    {"model", "role", "type", "media_type", "id", "tool_use_id", "custom_id", "signature"}
)
# Blocks whose text the API verifies against a signature.
_SIGNED_TYPES = frozenset({"thinking", "redacted_thinking"})


def request_text_slots(path: str, body: Any) -> list[TextSlot]:
    """Every text part of an API request body that DLP inspects, found by walking the JSON.

    Every string value is a part, whatever block or field holds it (system, messages and
    every block type in them, tool definitions and schemas, metadata, stop sequences,
    document sources, citations, container and MCP server fields, batch items, fields the
    API adds later), and so is every mapping key that is not one of the API's own field
    names. Two exceptions: the ``data`` of a base64 source whose media type is not text
    (images, PDFs: bytes, not text) is skipped, and the ``data`` of a base64 ``text/*``
    source is decoded and inspected as text. Strings in signed blocks are inspected too but
    marked ``signed``. ``path`` (the endpoint) is accepted for callers; the walk is the same
    for every endpoint.
    """
    del path  # the same walk serves every endpoint, batches included
    slots: list[TextSlot] = []
    # An explicit stack, not recursion: no depth at which a value stops being inspected.
    stack: list[tuple[Path, Any, bool]] = [((), body, False)]
    while stack:
        where, value, signed = stack.pop()
        kind = type(value)  # exact types first: isinstance against an ABC is slow
        if kind is str or isinstance(value, str):
            slots.append(TextSlot(where, value, signed=signed))
        elif kind is dict or isinstance(value, Mapping):
            if not signed and (
                value.get("type") in _SIGNED_TYPES or isinstance(value.get("signature"), str)
            ):
                signed = True
            binary = _binary_data(value)
            pending: list[tuple[Path, Any, bool]] = []
            for key, item in value.items():
                if type(key) is not str:
                    continue
                step = (*where, key)
                if key not in _API_KEYS:
                    slots.append(TextSlot(step, key, key=True, signed=signed))
                if key == "data" and binary is not None:
                    if binary:
                        slots.append(TextSlot(step, binary, signed=signed, base64=True))
                    continue  # image or PDF bytes: not text
                pending.append((step, item, signed))
            pending.reverse()
            stack.extend(pending)
        elif kind is list or isinstance(value, list):
            stack.extend(
                ((*where, i), item, signed) for i, item in reversed(list(enumerate(value)))
            )
    return slots


def _binary_data(block: Mapping[str, Any]) -> str | None:
    """For a base64 source: its decoded text if it is text, else "" (skip); None otherwise."""
    if block.get("type") != "base64" or not isinstance(block.get("data"), str):
        return None
    media = block.get("media_type")
    if not (isinstance(media, str) and media.lower().startswith("text/")):
        return ""
    try:
        return base64.b64decode(block["data"], validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None  # not what it claims: inspect the string itself


@dataclass(frozen=True)
class RequestInspection:
    """What DLP found in one request body: per text part, after the allowlist."""

    slots: tuple[TextSlot, ...] = ()
    per_slot: tuple[tuple[Finding, ...], ...] = ()
    report: DlpReport = field(default_factory=DlpReport)
    allowed: DlpReport = field(default_factory=DlpReport)

    @property
    def texts(self) -> list[str]:
        return [slot.text for slot in self.slots]

    @property
    def prompt_texts(self) -> list[str]:
        """The texts that make up the prompt (what the prompt hash covers): not the model,
        roles, block types or other identifiers, so equal prompts hash equal whatever model
        they are sent to."""
        return [
            slot.text
            for slot in self.slots
            if not slot.key and not (slot.path and slot.path[-1] in _NOT_PROMPT)
        ]

    @property
    def signed_findings(self) -> DlpReport:
        """Findings in signed blocks, which redaction cannot change."""
        return DlpReport.of(
            [f for slot, found in zip(self.slots, self.per_slot, strict=True) if slot.signed
             for f in found]
        )  # fmt: skip

    def redacted(self, body: Any) -> Any:
        """A copy of ``body`` with every finding outside signed blocks replaced by its
        placeholder (``body`` itself is never modified)."""
        values: dict[Path, str] = {}
        keys: dict[Path, str] = {}
        for slot, found in zip(self.slots, self.per_slot, strict=True):
            if not found or slot.signed:
                continue
            text = redact_findings(slot.text, found)
            if slot.key:
                keys[slot.path] = text
            elif slot.base64:
                values[slot.path] = base64.b64encode(_encode(text)).decode("ascii")
            else:
                values[slot.path] = text
        return replace_texts(body, values, keys)


def replace_texts(
    body: Any, replacements: Mapping[Path, str], renames: Mapping[Path, str] | None = None
) -> Any:
    """A copy of ``body`` with the texts at ``replacements``' paths swapped in, and the
    mapping keys at ``renames``' paths renamed.

    Only the containers on those paths are copied; everything else is shared with ``body``,
    which is never modified (the caller may reuse it).
    """
    if not replacements and not renames:
        return body
    tree: dict[Any, Any] = {}
    for path, text in replacements.items():
        node = tree
        for step in path[:-1]:
            node = node.setdefault(step, {})
        node[path[-1]] = _Leaf(text)
    for path, name in (renames or {}).items():
        node = tree
        for step in path[:-1]:
            node = node.setdefault(step, {})
        node[_Rename(str(path[-1]))] = name
    return _rebuild(body, tree)


@dataclass(frozen=True, slots=True)
class _Leaf:
    text: str


@dataclass(frozen=True, slots=True)
class _Rename:
    key: str


def _rebuild(value: Any, tree: Mapping[Any, Any]) -> Any:
    if isinstance(value, Mapping):
        copied: dict[Any, Any] = dict(value)
        renames: dict[str, str] = {}
        for key, sub in tree.items():
            if isinstance(key, _Rename):
                renames[key.key] = sub
            else:
                copied[key] = sub.text if isinstance(sub, _Leaf) else _rebuild(copied[key], sub)
        if renames:
            copied = _renamed(copied, renames)
        return copied
    if isinstance(value, list):
        items = list(value)
        for key, sub in tree.items():
            items[key] = sub.text if isinstance(sub, _Leaf) else _rebuild(items[key], sub)
        return items
    return value


def _renamed(mapping: dict[Any, Any], renames: Mapping[str, str]) -> dict[Any, Any]:
    """``mapping`` with keys renamed in place of order; two keys redacted to the same name
    get a numbered suffix rather than one overwriting the other."""
    out: dict[Any, Any] = {}
    for key, item in mapping.items():
        name = renames.get(key, key) if isinstance(key, str) else key
        if name in out or (name != key and name in mapping and name not in renames):
            number = 2
            while f"{name}#{number}" in out or f"{name}#{number}" in mapping:
                number += 1
            name = f"{name}#{number}"
        out[name] = item
    return out
