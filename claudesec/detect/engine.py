"""The secret matching engine: bytes in, matches out. No I/O.

Used by ``claudesec scan`` for files and by DLP for prompt text, over the one catalogue
(:mod:`claudesec.detect.catalogue`).


A multi-literal prefilter finds every keyword of the catalogue in one pass (hyperscan when it is
installed, ~2.5 GB/s here; a pure-Python ``bytes.find`` fallback otherwise, which reports the very
same hits, only slower). Each hit then gets one anchored ``Pattern.match`` of its rule (or a
search in a small window for the few rules whose keyword sits inside the match), the rule's
validator, and overlap resolution: when two matches overlap, the rule earlier in the catalogue
wins, so a specific rule beats the generic assignment rule that also saw the line.
"""

from __future__ import annotations

import bisect
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from claudesec.detect.catalogue import DETECTORS, DETECTORS_BY_ID
from claudesec.detect.rules import Detector, SecretMatch

BINARY_SNIFF = 8192
ALLOW_MARKER = b"claudesec:allow"
# `claudesec:allow`, `claudesec:allow id[, id...]`, either followed by `-- free-text reason`.
# Words before `--` are rule ids; the first token that cannot be one (`*/`, `-->`) ends them.
_ALLOW_TAIL = re.compile(rb"[ \t:=]*([^\r\n]*)")
_REASON = re.compile(rb"(?:^|[ \t,])--(?:[ \t]|$)")
_ID_SHAPE = re.compile(rb"[a-z0-9][a-z0-9-]*\Z")
_ID_SPLIT = re.compile(rb"[ \t,]+")


@dataclass(frozen=True, slots=True)
class Hit:
    """A validated match: offsets index the buffer that was scanned."""

    detector: Detector
    priority: int
    kind: str
    start: int
    end: int
    secret: bytes = field(repr=False)
    # The AWS access key id paired with a secret key (for --verify); never displayed.
    related: bytes | None = field(default=None, repr=False)
    # Where ``related`` sits in the buffer: a redactor must remove it too, not only the secret.
    related_span: tuple[int, int] | None = None
    # The whole match (what a custom rule's allowlist with regexTarget = "match" tests).
    match_start: int = -1
    match_end: int = -1

    @property
    def rule_id(self) -> str:
        return self.detector.id


@dataclass(frozen=True, slots=True)
class Located:
    """A hit placed in its text: 1-based line and column, and whether a comment allows it."""

    hit: Hit
    line: int
    column: int
    allowed: bool
    # Rule ids named by a `claudesec:allow` near the hit that no rule has (a typo): they
    # suppress nothing, and the scan warns about them.
    unknown_allow_ids: tuple[str, ...] = ()


def is_binary(data: bytes) -> bool:
    """Binary by content: a NUL byte in the first 8 KB (what git and grep look at)."""
    return data.find(b"\0", 0, BINARY_SNIFF) >= 0  # no copy of the head, unlike a slice


class _PythonPrefilter:
    """Every occurrence of every keyword, by ``bytes.find``: slow but dependency-free."""

    def __init__(self, literals: Sequence[tuple[int, bytes, bool]]) -> None:
        self._literals = literals
        self._any_caseless = any(caseless for _, _, caseless in literals)

    def hits(self, data: bytes) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        lowered = data.lower() if self._any_caseless else data
        for det_index, literal, caseless in self._literals:
            haystack = lowered if caseless else data
            needle = literal.lower() if caseless else literal
            find = haystack.find
            pos = find(needle)
            while pos != -1:
                found.append((det_index, pos))
                pos = find(needle, pos + 1)
        return found


class _HyperscanPrefilter:
    """The same hits from one hyperscan block-mode pass over a compiled literal set.

    A rule with a ``gate`` is compiled as that regex (reporting where it starts) instead of its
    literals: a keyword hit that cannot match never reaches Python. Where one gate match could
    start at two keywords (``secret_token =``) only the leftmost is reported; the rule's
    validator gives both the same verdict and they would overlap, so the findings are the same.
    """

    def __init__(
        self,
        literals: Sequence[tuple[int, bytes, bool]],
        gates: Sequence[tuple[int, str, bool]] = (),
    ) -> None:
        import hyperscan

        self._det_index = [det for det, _, _ in literals] + [det for det, _, _ in gates]
        self._lengths = [len(lit) for _, lit, _ in literals] + [-1] * len(gates)
        self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        expressions = [re.escape(lit) for _, lit, _ in literals]
        expressions += [gate.encode("ascii") for _, gate, _ in gates]
        flags = [hyperscan.HS_FLAG_CASELESS if caseless else 0 for _, _, caseless in literals]
        som = hyperscan.HS_FLAG_SOM_LEFTMOST
        flags += [som | (hyperscan.HS_FLAG_CASELESS if caseless else 0) for _, _, caseless in gates]
        self._db.compile(
            expressions=expressions,
            ids=list(range(len(expressions))),
            elements=len(expressions),
            flags=flags,
        )
        # Hyperscan scratch space may be used by one scan at a time: the audited client and
        # the proxy scan prompts on many threads at once, so each thread gets its own clone.
        self._prototype = hyperscan.Scratch(self._db)
        self._local = threading.local()

    def _scratch(self) -> Any:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = self._prototype.clone()
        return scratch

    def _matches(self, data: bytes) -> list[tuple[int, int, int]]:
        """``(expression, start, end)`` of every match; a literal's start is not tracked
        (hyperscan reports 0), its length gives it."""
        raw: list[tuple[int, int, int]] = []
        append = raw.append

        def on_match(expr_id: int, start: int, end: int, flags: int, context: Any) -> None:
            append((expr_id, start, end))

        if data:
            self._db.scan(data, match_event_handler=on_match, scratch=self._scratch())
        return raw

    def hits(self, data: bytes) -> list[tuple[int, int]]:
        det_index, lengths = self._det_index, self._lengths
        return [
            (det_index[i], end - lengths[i] if lengths[i] >= 0 else start)
            for i, start, end in self._matches(data)
        ]

    def spans(self, data: bytes) -> list[tuple[int, int]]:
        """``(start, end)`` of every literal or gate match in ``data``, rule unnamed: what a
        caller needs to tell which parts of a buffer hold any hit at all."""
        lengths = self._lengths
        return [
            (end - lengths[i] if lengths[i] >= 0 else start, end)
            for i, start, end in self._matches(data)
        ]


def _anchored(pattern: str) -> bool:
    """Whether a regex anchors to its buffer's start or end: ``^`` or ``$`` outside a
    character class, ``\\A``, ``\\Z`` or ``\\z``."""
    escaped = in_class = False
    for index, char in enumerate(pattern):
        if escaped:
            escaped = False
            if char in "AZz" and not in_class:
                return True
        elif char == "\\":
            escaped = True
        elif in_class:
            # A "]" right after "[" or "[^" is a literal member, not the end of the class.
            opened = pattern[index - 1] == "[" or pattern[index - 2 : index] == "[^"
            in_class = not (char == "]" and not opened)
        elif char == "[":
            in_class = True
        elif char in "^$":
            return True
    return False


def hyperscan_available() -> bool:
    try:
        import hyperscan  # noqa: F401
    except ImportError:
        return False
    return True


class Engine:
    """Finds the catalogue's secrets in byte buffers; build once, reuse for every buffer."""

    def __init__(
        self,
        detectors: Sequence[Detector] = DETECTORS,
        *,
        disabled: Iterable[str] = (),
        backend: str = "auto",
        passive: Sequence[Detector] = (),
    ) -> None:
        off = set(disabled)
        active = tuple(d for d in detectors if d.id not in off)
        # Passive rules (custom rules, decoders) come last and claim no span: each reports its
        # own matches whatever else matched there, as each gitleaks rule does.
        self.detectors: tuple[Detector, ...] = active + tuple(passive)
        self._claiming = len(active)
        # Ids an allow comment may name: the catalogue's (disabled ones too) and this engine's.
        self.known_ids = _KNOWN_IDS | {d.id for d in self.detectors}
        # Buffer-scope rules without keywords run on every buffer.
        self._always = tuple(
            i for i, d in enumerate(self.detectors) if d.scope == "buffer" and not d.keywords
        )
        if backend == "auto":
            backend = "hyperscan" if hyperscan_available() else "python"
        self.backend = backend
        literals: list[tuple[int, bytes, bool]] = []
        gates: list[tuple[int, str, bool]] = []
        for index, detector in enumerate(self.detectors):
            if detector.gate and backend == "hyperscan" and detector.scope == "near":
                gates.append((index, detector.gate, detector.caseless))
                continue
            for keyword in detector.keywords:
                literals.append((index, keyword.encode("ascii"), detector.caseless))
        self._prefilter: _PythonPrefilter | _HyperscanPrefilter
        if backend == "hyperscan":
            self._prefilter = _HyperscanPrefilter(literals, gates)
        elif backend == "python":
            self._prefilter = _PythonPrefilter(literals)
        else:
            raise ValueError(f"unknown prefilter backend {backend!r}")
        self.max_span = max(
            (d.before + d.after for d in self.detectors if d.scope == "near"), default=0
        )
        # A gate anchored to the buffer's start or end matches a part alone but not inside a
        # joined buffer: such an engine scans every part alone (see quiet_parts).
        self._joinable = not any(_anchored(gate) for _, gate, _ in gates)

    # ------------------------------------------------------------------ matching

    def keyword_hits(self, data: bytes) -> list[tuple[int, int]]:
        """``(rule index, position)`` of every rule keyword in ``data`` (the prefilter alone).

        For callers that look for keys in text reshaped around these places (DLP joins the
        pieces of a key split by whitespace); ``detectors[index]`` is the rule."""
        return self._prefilter.hits(data) if self.detectors else []

    def quiet_parts(self, parts: Sequence[bytes]) -> list[bool] | None:
        """For each of ``parts``, True when :meth:`find` is sure to return nothing for it,
        from one prefilter pass over all of them; None when this engine cannot tell (no
        hyperscan, a rule that runs on every buffer, or a gate anchored to a buffer's start
        or end).

        The parts are scanned joined by newlines. A match reaching across a join (a gate
        regex may) marks every part it touches, so a part is called quiet only when no
        keyword or gate match ends or starts inside it: exactly when its own pass would find
        no keyword, since a match inside one part is a match in the joined text too.
        """
        prefilter = self._prefilter
        if self._always or not self._joinable or not isinstance(prefilter, _HyperscanPrefilter):
            return None
        starts: list[int] = []
        offset = 0
        for part in parts:
            starts.append(offset)
            offset += len(part) + 1
        quiet = [True] * len(parts)
        for start, end in prefilter.spans(b"\n".join(parts)):
            first = bisect.bisect_right(starts, start) - 1
            last = bisect.bisect_right(starts, max(start, end - 1)) - 1
            for index in range(max(first, 0), last + 1):
                quiet[index] = False
        return quiet

    def find(self, data: bytes) -> list[Hit]:
        """Every validated, non-overlapping match in ``data``, ordered by position."""
        if not self.detectors:
            return []
        candidates: list[tuple[int, int, int, re.Match[bytes]]] = []
        seen: set[tuple[int, int]] = set()
        detectors = self.detectors
        whole: set[int] = set(self._always)
        for det_index, kstart in self._prefilter.hits(data):
            key = (det_index, kstart)
            if key in seen:
                continue
            seen.add(key)
            detector = detectors[det_index]
            if detector.scope == "buffer":
                whole.add(det_index)
                continue
            if detector.anchored:
                match = detector.regex.match(data, kstart)
                if match is not None:
                    candidates.append((det_index, match.start(), match.end(), match))
                continue
            lo = max(0, kstart - detector.before)
            for match in detector.regex.finditer(data, lo, kstart + detector.after):
                if match.start() <= kstart < match.end():
                    candidates.append((det_index, match.start(), match.end(), match))
        for det_index in whole:
            for match in detectors[det_index].regex.finditer(data):
                candidates.append((det_index, match.start(), match.end(), match))
        if not candidates:
            return []
        # Higher-priority (earlier) rules first, then by position; the first claim of a span wins.
        candidates.sort(key=lambda c: (c[0], c[1]))
        accepted: list[Hit] = []
        spans: list[tuple[int, int]] = []
        claiming = self._claiming
        for det_index, start, end, match in candidates:
            detector = detectors[det_index]
            # A pair (AWS key id ... secret) claims its two parts, not the text between them,
            # which may hold secrets of its own.
            paired = "keyid" in detector.regex.groupindex
            claims = (match.span("keyid"), match.span("secret")) if paired else ((start, end),)
            active = det_index < claiming
            if active and any(
                a < s_end and s_start < b for a, b in claims for s_start, s_end in spans
            ):
                continue
            secret_start, secret_end = detector.span_of(match)
            if secret_start < 0:
                continue
            secret = data[secret_start:secret_end]
            if detector.validate is not None and not detector.validate(secret, match):
                continue
            related = match.group("keyid") if paired else None
            if active:
                spans.extend(claims)
            accepted.append(
                Hit(
                    detector=detector,
                    priority=det_index,
                    kind=detector.kind_of(match),
                    start=secret_start,
                    end=secret_end,
                    secret=secret,
                    related=related,
                    related_span=match.span("keyid") if paired else None,
                    match_start=start,
                    match_end=end,
                )
            )
        accepted.sort(key=lambda h: h.start)
        return accepted

    def scan(self, data: bytes) -> list[Located]:
        """:meth:`find`, with line, column and inline-allow facts for each hit."""
        return locate(data, self.find(data), self.known_ids)

    def scan_chunks(self, chunks: Iterable[bytes], *, overlap: int = 0) -> Iterator[Located]:
        """Scan a stream of consecutive blocks with bounded memory.

        Consecutive blocks are joined with an overlap of ``overlap`` bytes (at least the longest
        match any rule can produce), so a secret split across two blocks is still found exactly
        once. Offsets in the results are absolute; lines are counted across blocks.
        """
        overlap = max(overlap, self.max_span + 64)
        carry = b""
        carry_offset = 0  # absolute offset of carry[0]
        lines_before = 0  # newlines before carry[0]
        pending: bytes | None = None
        iterator = iter(chunks)
        for block in iterator:
            pending = block
            buffer = carry + block
            # Matches starting in the last `overlap` bytes are left to the next round, where they
            # can be seen whole; the final round takes everything.
            limit = len(buffer) - overlap
            if limit <= 0:
                carry = buffer
                continue
            hits = [h for h in self.find(buffer) if h.start < limit]
            for found in locate(buffer, hits, self.known_ids):
                yield _shift(found, carry_offset, lines_before)
            lines_before += buffer.count(b"\n", 0, limit)
            carry = buffer[limit:]
            carry_offset += limit
        if pending is None and not carry:
            return
        for found in locate(carry, self.find(carry), self.known_ids):
            yield _shift(found, carry_offset, lines_before)


def _shift(found: Located, offset: int, lines: int) -> Located:
    hit = found.hit
    moved = Hit(
        detector=hit.detector,
        priority=hit.priority,
        kind=hit.kind,
        start=hit.start + offset,
        end=hit.end + offset,
        secret=hit.secret,
        related=hit.related,
        related_span=(
            None
            if hit.related_span is None
            else (hit.related_span[0] + offset, hit.related_span[1] + offset)
        ),
        match_start=hit.match_start + offset,
        match_end=hit.match_end + offset,
    )
    return Located(
        hit=moved,
        line=found.line + lines,
        column=found.column,
        allowed=found.allowed,
        unknown_allow_ids=found.unknown_allow_ids,
    )


def locate(
    data: bytes, hits: Sequence[Hit], known_ids: frozenset[str] | None = None
) -> list[Located]:
    """Line, column and inline-allow facts for hits sorted by position."""
    known = _KNOWN_IDS if known_ids is None else known_ids
    located: list[Located] = []
    line = 1
    counted_to = 0
    for hit in hits:
        line += data.count(b"\n", counted_to, hit.start)
        counted_to = hit.start
        line_start = data.rfind(b"\n", 0, hit.start) + 1
        column = len(data[line_start : hit.start].decode("utf-8", "replace")) + 1
        allowed, unknown = _allowed(data, hit, line_start, known)
        located.append(
            Located(hit=hit, line=line, column=column, allowed=allowed, unknown_allow_ids=unknown)
        )
    return located


def allow_ids(comment_tail: bytes) -> tuple[list[str], str]:
    """The rule ids and the free-text reason of what follows one ``claudesec:allow``.

    No ids means every rule. The reason follows ``--``; without it, every word reads as a rule
    id, so a typo or a bare reason cannot pass for permission to hide everything.
    """
    reason = ""
    split = _REASON.search(comment_tail)
    if split is not None:
        reason = comment_tail[split.end() :].decode("utf-8", "replace").strip()
        comment_tail = comment_tail[: split.start()]
    ids: list[str] = []
    for token in _ID_SPLIT.split(comment_tail.strip(b" \t,")):
        if not _ID_SHAPE.match(token):
            break  # the comment's closer (`*/`, `-->`) or other syntax: the ids end here
        ids.append(token.decode("ascii"))
    return ids, reason


def _allowed(
    data: bytes, hit: Hit, line_start: int, known: frozenset[str]
) -> tuple[bool, tuple[str, ...]]:
    """Whether a ``claudesec:allow`` on the secret's line or the line before allows the hit,
    and the unknown rule ids such comments named (they allow nothing)."""
    line_end = data.find(b"\n", hit.end)
    if line_end == -1:
        line_end = len(data)
    previous_start = data.rfind(b"\n", 0, line_start - 1) + 1 if line_start > 0 else line_start
    unknown: list[str] = []
    pos = data.find(ALLOW_MARKER, previous_start, line_end)
    while pos != -1:
        tail = _ALLOW_TAIL.match(data, pos + len(ALLOW_MARKER), line_end)
        ids, _ = allow_ids(tail.group(1) if tail else b"")
        if not ids:
            return True, ()
        unknown.extend(i for i in ids if i not in known and i not in unknown)
        if hit.detector.id in ids:
            return True, ()
        pos = data.find(ALLOW_MARKER, pos + 1, line_end)
    return False, tuple(unknown)


_KNOWN_IDS = frozenset(DETECTORS_BY_ID)
_ENGINES: dict[tuple[tuple[Detector, ...], frozenset[str], str, tuple[Detector, ...]], Engine] = {}


def default_engine(
    detectors: Sequence[Detector] = DETECTORS,
    *,
    disabled: Iterable[str] = (),
    backend: str = "auto",
    passive: Sequence[Detector] = (),
) -> Engine:
    """A process-wide engine per configuration: the literal database is compiled once."""
    key = (tuple(detectors), frozenset(disabled), backend, tuple(passive))
    engine = _ENGINES.get(key)
    if engine is None:
        engine = Engine(detectors, disabled=disabled, backend=backend, passive=passive)
        _ENGINES[key] = engine
    return engine


def find_secrets(
    data: str | bytes, detectors: Sequence[Detector] | None = None
) -> list[SecretMatch]:
    """Every secret in ``data``, in order of position; offsets index ``data`` as given."""
    engine = default_engine(tuple(detectors) if detectors is not None else DETECTORS)
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    found = engine.find(raw)
    results: list[SecretMatch] = []
    for hit in found:
        start, end = hit.start, hit.end
        if isinstance(data, str):
            start = len(raw[:start].decode("utf-8", "surrogateescape"))
            end = start + len(raw[hit.start : hit.end].decode("utf-8", "surrogateescape"))
        results.append(
            SecretMatch(
                detector=hit.detector,
                kind=hit.kind,
                start=start,
                end=end,
                secret=hit.secret.decode("utf-8", "replace"),
            )
        )
    return results
