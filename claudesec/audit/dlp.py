"""Data-loss prevention for Claude requests and responses: secrets and PII, found and redacted.

Secrets come from the one detector catalogue (:mod:`claudesec.detectors`) through the scan
engine, so a key ``claudesec scan`` reports in a file is the key DLP stops in a prompt. PII
detectors live here: email, phone, payment card (Luhn), US SSN, IBAN (mod-97), IP address, plus
the custom patterns of ``[dlp] custom_patterns``.

Speed comes from never running a Python regex over the whole prompt:

* secrets: the engine's multi-literal prefilter (hyperscan) finds keywords, and only those
  spots see a regex;
* emails: ``bytes.find(b"@")``, then one small regex on each side of the ``@``;
* number-shaped PII (cards, phones, SSNs, IBANs, IPs): one hyperscan pass over all their
  shapes at once reports where candidates start; the exact pattern and its checksum run only
  there. Without hyperscan (non-x86 platforms) each pattern runs over the text with ``re``,
  which is several times slower but finds the same things.

All text parts of a request are joined with a separator no detector matches across and scanned
in one pass. Findings carry a kind and a position, never the matched value: what leaves this
module for the audit log is kinds and counts.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from claudesec.errors import ConfigError

if TYPE_CHECKING:
    from claudesec.config import DlpConfig
    from claudesec.scan.engine import Engine

DlpMode = Literal["block", "redact", "log"]
Category = Literal["secret", "pii", "custom"]

# Between joined parts: a NUL no pattern accepts, between newlines so line-based validators
# (the generic assignment rule) see each part's lines as they are.
_SEPARATOR = b"\n\x00\n"
_KIND_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")


def placeholder(kind: str) -> str:
    """The typed text that replaces a redacted value, e.g. ``[REDACTED:anthropic-api-key]``."""
    return f"[REDACTED:{kind}]"


# --------------------------------------------------------------------------- validators


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check used by every payment card number."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _card(value: bytes) -> bool:
    digits = value.translate(None, b" -").decode("ascii")
    if not 13 <= len(digits) <= 19 or digits[0] not in "23456":
        return False  # issuers: 2/5 Mastercard, 3 Amex/Diners/JCB, 4 Visa, 6 Discover/UnionPay
    if len(set(digits)) < 2:
        return False  # a run of one digit is filler
    if b" " in value and b"-" in value:
        return False  # "1234-5678 9012 3456" is a list of numbers, not a card
    return luhn_valid(digits)


def iban_valid(value: str) -> bool:
    """ISO 13616: move the first four characters to the end, letters to 10..35, mod 97 == 1."""
    compact = value.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34 or not compact[:2].isalpha() or not compact[2:4].isdigit():
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return int(number) % 97 == 1


def _iban(value: bytes) -> bool:
    return iban_valid(value.decode("ascii"))


def _phone(value: bytes) -> bool:
    digits = sum(48 <= c <= 57 for c in value)
    return 8 <= digits <= 15


def _ipv4(value: bytes) -> bool:
    parts = value.split(b".")
    return len(parts) == 4 and all(int(p) <= 255 and (p == b"0" or p[:1] != b"0") for p in parts)


def _ipv6(value: bytes) -> bool:
    try:
        ipaddress.IPv6Address(value.decode("ascii"))
    except ValueError:
        return False
    groups = [g for g in value.split(b":") if g]
    # "d::" (from C++'s std::vector) and "a::b" parse as addresses; real ones carry more.
    return len(groups) >= 2 and sum(len(g) for g in groups) >= 5


def _ssn(value: bytes) -> bool:
    area, group, serial = value.split(b"-")
    return (
        area not in (b"000", b"666") and area[:1] != b"9" and group != b"00" and serial != b"0000"
    )


# --------------------------------------------------------------------------- PII catalogue


@dataclass(frozen=True, slots=True)
class PiiDetector:
    """One PII rule: the exact pattern (with its boundaries), the hyperscan shapes that find
    where a candidate may start, and a validator over the matched bytes."""

    id: str
    label: str
    pattern: str
    shapes: tuple[str, ...]
    max_len: int
    validate: Callable[[bytes], bool] | None = None
    regex: re.Pattern[bytes] = field(init=False, repr=False, compare=False)
    shape_regexes: tuple[re.Pattern[bytes], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", re.compile(self.pattern.encode("ascii")))
        object.__setattr__(
            self, "shape_regexes", tuple(re.compile(s.encode("ascii")) for s in self.shapes)
        )


PII_DETECTORS: tuple[PiiDetector, ...] = (
    PiiDetector(
        id="us-ssn",
        label="US social security number",
        pattern=r"\d(?<![\d-]\d)\d{2}-\d{2}-\d{4}(?![\d-])",
        shapes=(r"\d{3}-\d{2}-\d{4}",),
        max_len=11,
        validate=_ssn,
    ),
    PiiDetector(
        id="payment-card",
        label="payment card number",
        pattern=r"\d(?<![\d.-]\d)(?:[ -]?\d){12,18}(?!\d)",
        shapes=(r"\d(?:[ -]?\d){12}",),
        max_len=40,
        validate=_card,
    ),
    PiiDetector(
        id="iban",
        label="IBAN",
        pattern=r"[A-Z](?<![A-Za-z0-9][A-Z])[A-Z]\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?"
        r"(?![A-Za-z0-9])",
        shapes=(r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2}",),
        max_len=44,
        validate=_iban,
    ),
    PiiDetector(
        id="phone",
        label="phone number",
        # Every pattern here starts with a character class, not a lookbehind, so that ``re``
        # skips to candidate characters in C; the boundary check follows the first character.
        pattern=r"""(?x)[+(2-9](?<![\w+][+(2-9])(?:
            (?<=\+)[1-9]\d{0,2}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}
          | (?<=\()[2-9]\d{2}\)[ .-]?\d{3}[ .-]\d{4}
          | (?<=[2-9])\d{2}[ .-]\d{3}[ .-]\d{4}
        )(?![\d-])""",
        shapes=(r"\+\d(?:[ .()-]{0,2}\d){7}", r"\d{3}\)?[ .-]?\d{3}[ .-]\d{4}"),
        max_len=32,
        validate=_phone,
    ),
    PiiDetector(
        id="ip-address",
        label="IPv4 address",
        pattern=r"\d(?<![\d.]\d)\d{0,2}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?!\d|\.\d)",
        shapes=(r"\d\.\d{1,3}\.\d{1,3}\.\d",),
        max_len=15,
        validate=_ipv4,
    ),
    PiiDetector(
        id="ipv6-address",
        label="IPv6 address",
        pattern=r"[0-9A-Fa-f:](?<![0-9A-Fa-f:][0-9A-Fa-f:])[0-9A-Fa-f:]{2,38}(?![0-9A-Fa-f:])",
        shapes=(r"[0-9A-Fa-f]:[0-9A-Fa-f]{0,4}:",),
        max_len=39,
        validate=_ipv6,
    ),
)
PII_KINDS: tuple[str, ...] = ("email", *(d.id for d in PII_DETECTORS))
# ipv6 is reported and switched off under the ip-address kind: users think of "IP addresses".
_KIND_ALIASES = {"ipv6-address": "ip-address"}

# Local parts may be UTF-8 (RFC 6531: "jürgen@..."); domains are matched in their ASCII form.
_EMAIL_LOCAL = re.compile(rb"[A-Za-z0-9._%+\x80-\xff-]{1,64}\Z")
_EMAIL_DOMAIN = re.compile(rb"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-])")
_CARD_GROUP = re.compile(rb"[ -](?=\d)")


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Finding:
    """Where a sensitive value is, and what kind it is. Deliberately no value."""

    kind: str
    category: Category
    start: int
    end: int


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
        return cls(dict(Counter(f.kind for f in findings))) if findings else _EMPTY


_EMPTY = DlpReport()


# --------------------------------------------------------------------------- the scanner


class _Shapes:
    """One hyperscan pass reporting where each PII detector's shapes end.

    Start-of-match tracking (``HS_FLAG_SOM_LEFTMOST``) would name the start too, but costs
    ~4x the scan time here; a window of the detector's maximum length before each end is as
    good, since the exact pattern runs there anyway.
    """

    def __init__(self, detectors: Sequence[PiiDetector]) -> None:
        import hyperscan

        owners: list[int] = []
        expressions: list[bytes] = []
        for index, detector in enumerate(detectors):
            for shape in detector.shapes:
                owners.append(index)
                expressions.append(shape.encode("ascii"))
        self._owners = owners
        self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        self._db.compile(
            expressions=expressions,
            ids=list(range(len(expressions))),
            elements=len(expressions),
        )
        # The database's own scratch serves one scan at a time: a second thread scanning at
        # once got ScratchInUseError. Each thread gets its own clone, as in the scan engine.
        self._prototype = hyperscan.Scratch(self._db)
        self._local = threading.local()

    def ends(self, data: bytes) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        append = found.append
        owners = self._owners

        def on_match(expr_id: int, start: int, end: int, flags: int, context: Any) -> None:
            append((owners[expr_id], end))

        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = self._prototype.clone()
        self._db.scan(data, match_event_handler=on_match, scratch=scratch)
        return found


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
    ) -> None:
        from claudesec.detectors import DETECTORS
        from claudesec.scan.engine import default_engine, hyperscan_available

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
        self._email = pii and "email" not in off
        self._pii: tuple[PiiDetector, ...] = (
            tuple(
                d for d in PII_DETECTORS if d.id not in off and _KIND_ALIASES.get(d.id) not in off
            )
            if pii
            else ()
        )
        self._shapes = _Shapes(self._pii) if self._pii and backend == "hyperscan" else None
        self._custom = compile_custom_patterns(custom_patterns or {})

    @classmethod
    def from_config(cls, dlp: DlpConfig) -> DlpScanner:
        return cls(custom_patterns=dlp.custom_patterns, disabled=dlp.disabled)

    # ----------------------------------------------------------------- scanning

    def scan_bytes(self, data: bytes, *, pii: bool = True) -> list[Finding]:
        """Non-overlapping findings in ``data`` (UTF-8), by position; secrets win overlaps."""
        findings: list[Finding] = []
        if self._engine is not None:
            findings.extend(
                Finding(hit.detector.id, "secret", hit.start, hit.end)
                for hit in self._engine.find(data)
            )
        if not pii:
            return findings
        candidates: list[Finding] = []
        if self._email and b"@" in data:
            candidates.extend(self._emails(data))
        if self._pii:
            candidates.extend(self._number_shaped(data))
        for kind, regex in self._custom:
            candidates.extend(
                Finding(kind, "custom", m.start(), m.end())
                for m in regex.finditer(data)
                if m.end() > m.start()
            )
        if not candidates:
            return findings
        return _resolve(findings, candidates)

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

    def scan_parts(self, parts: Sequence[str], *, pii: bool = True) -> list[list[Finding]]:
        """Findings per part (offsets into that part's UTF-8 bytes), from one scan of all."""
        if not parts:
            return []
        encoded = [_encode(p) for p in parts]
        if len(encoded) == 1:
            return [self.scan_bytes(encoded[0], pii=pii)]
        starts: list[int] = []
        offset = 0
        for chunk in encoded:
            starts.append(offset)
            offset += len(chunk) + len(_SEPARATOR)
        per_part: list[list[Finding]] = [[] for _ in parts]
        for finding in self.scan_bytes(_SEPARATOR.join(encoded), pii=pii):
            index = bisect.bisect_right(starts, finding.start) - 1
            base = starts[index]
            end = min(finding.end - base, len(encoded[index]))
            per_part[index].append(
                Finding(finding.kind, finding.category, finding.start - base, end)
            )
        return per_part

    # ----------------------------------------------------------------- PII

    def _emails(self, data: bytes) -> Iterator[Finding]:
        find = data.find
        at = find(b"@")
        last_end = 0
        while at != -1:
            local = _EMAIL_LOCAL.search(data, max(last_end, at - 64), at)
            domain = _EMAIL_DOMAIN.match(data, at + 1) if local else None
            if local and domain:
                start = local.start()
                # Trim what cannot start an address ("(alice@..." or "..alice@").
                while start < at and (data[start] in b"._%+-" or 0x80 <= data[start] < 0xC0):
                    start += 1
                if start < at:
                    last_end = domain.end()
                    yield Finding("email", "pii", start, last_end)
            at = find(b"@", max(at + 1, last_end))

    def _number_shaped(self, data: bytes) -> Iterator[Finding]:
        detectors = self._pii
        ends: list[tuple[int, int]]
        if self._shapes is not None:
            ends = self._shapes.ends(data)
        else:
            ends = [
                (index, match.end())
                for index, detector in enumerate(detectors)
                for shape in detector.shape_regexes
                for match in shape.finditer(data)
            ]
        if not ends:
            return
        # Merge each detector's windows (a long digit run reports many ends), then run the
        # exact pattern once per window.
        size = len(data)
        windows: list[tuple[int, int, int]] = []
        for index, end in sorted(ends):
            reach = detectors[index].max_len
            lo, hi = max(0, end - reach), min(size, end + reach)
            if windows and windows[-1][0] == index and lo <= windows[-1][2]:
                windows[-1] = (index, windows[-1][1], max(hi, windows[-1][2]))
            else:
                windows.append((index, lo, hi))
        for index, lo, hi in windows:
            detector = detectors[index]
            # One byte past the window keeps the trailing boundary check honest.
            stop = min(size, hi + 1)
            for match in detector.regex.finditer(data, lo, stop):
                if match.end() >= stop and stop < size:
                    continue
                found = self._match_at(detector, data, match.start())
                if found is not None:
                    yield found

    @staticmethod
    def _match_at(detector: PiiDetector, data: bytes, start: int) -> Finding | None:
        kind = _KIND_ALIASES.get(detector.id, detector.id)
        match = detector.regex.match(data, start)
        if match is not None and (detector.validate is None or detector.validate(match.group())):
            return Finding(kind, "pii", match.start(), match.end())
        if detector.id == "payment-card" and match is not None:
            # "Order 12 4111 1111 1111 1111": the number may start at a later group.
            for group in list(_CARD_GROUP.finditer(data, match.start(), match.end()))[:4]:
                inner = detector.regex.match(data, group.end())
                if inner is not None and _card(inner.group()):
                    return Finding(kind, "pii", inner.start(), inner.end())
        return None


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


def _resolve(secrets: list[Finding], candidates: list[Finding]) -> list[Finding]:
    """Secrets first, then the earliest and longest PII candidate claims its span."""
    accepted = list(secrets)
    taken = sorted((f.start, f.end) for f in secrets)
    for candidate in sorted(candidates, key=lambda f: (f.start, f.start - f.end)):
        i = bisect.bisect_left(taken, (candidate.start, candidate.start))
        before = taken[i - 1] if i else None
        after = taken[i] if i < len(taken) else None
        if (before is not None and before[1] > candidate.start) or (
            after is not None and after[0] < candidate.end
        ):
            continue
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
    """One text part of a request body and where it sits (keys and indexes from the root)."""

    path: Path
    text: str


def request_text_slots(path: str, body: Any) -> list[TextSlot]:
    """Every text part of an API request body that DLP inspects.

    Messages and count_tokens: the system prompt (string or text blocks), message content
    strings, text blocks, tool results (string or blocks), text documents, tool inputs, and
    tool descriptions. Batches: the same inside each request's ``params``. Any other JSON
    endpoint: every string in the body. Thinking blocks are left alone: they are signed, and
    the API rejects a modified one.
    """
    slots: list[TextSlot] = []
    if not isinstance(body, Mapping):
        return slots
    if path.endswith(("/messages", "/messages/count_tokens")):
        _message_body(body, (), slots)
    elif path.endswith("/messages/batches"):
        requests = body.get("requests")
        if isinstance(requests, list):
            for index, item in enumerate(requests):
                if isinstance(item, Mapping) and isinstance(item.get("params"), Mapping):
                    _message_body(item["params"], ("requests", index, "params"), slots)
    else:
        _strings(body, (), slots, 0)
    return slots


def _message_body(body: Mapping[str, Any], prefix: Path, slots: list[TextSlot]) -> None:
    system = body.get("system")
    if isinstance(system, str):
        slots.append(TextSlot((*prefix, "system"), system))
    elif isinstance(system, list):
        _blocks(system, (*prefix, "system"), slots)
    messages = body.get("messages")
    if isinstance(messages, list):
        for index, message in enumerate(messages):
            if not isinstance(message, Mapping):
                continue
            content = message.get("content")
            where = (*prefix, "messages", index, "content")
            if isinstance(content, str):
                slots.append(TextSlot(where, content))
            elif isinstance(content, list):
                _blocks(content, where, slots)
    tools = body.get("tools")
    if isinstance(tools, list):
        for index, tool in enumerate(tools):
            if isinstance(tool, Mapping) and isinstance(tool.get("description"), str):
                slots.append(
                    TextSlot((*prefix, "tools", index, "description"), tool["description"])
                )


def _blocks(blocks: list[Any], prefix: Path, slots: list[TextSlot]) -> None:
    for index, block in enumerate(blocks):
        if not isinstance(block, Mapping):
            continue
        where = (*prefix, index)
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            slots.append(TextSlot((*where, "text"), block["text"]))
        elif kind == "tool_result":
            content = block.get("content")
            if isinstance(content, str):
                slots.append(TextSlot((*where, "content"), content))
            elif isinstance(content, list):
                _blocks(content, (*where, "content"), slots)
        elif kind == "tool_use":
            _strings(block.get("input"), (*where, "input"), slots, 0)
        elif kind == "document":
            source = block.get("source")
            if isinstance(source, Mapping):
                if source.get("type") == "text" and isinstance(source.get("data"), str):
                    slots.append(TextSlot((*where, "source", "data"), source["data"]))
                elif source.get("type") == "content" and isinstance(source.get("content"), list):
                    _blocks(source["content"], (*where, "source", "content"), slots)
            for key in ("title", "context"):
                if isinstance(block.get(key), str):
                    slots.append(TextSlot((*where, key), block[key]))


def _strings(value: Any, prefix: Path, slots: list[TextSlot], depth: int) -> None:
    if depth > 32:
        return
    if isinstance(value, str):
        slots.append(TextSlot(prefix, value))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str):
                _strings(item, (*prefix, key), slots, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _strings(item, (*prefix, index), slots, depth + 1)


def replace_texts(body: Any, replacements: Mapping[Path, str]) -> Any:
    """A copy of ``body`` with the texts at ``replacements``' paths swapped in.

    Only the containers on those paths are copied; everything else is shared with ``body``,
    which is never modified (the caller may reuse it).
    """
    if not replacements:
        return body
    tree: dict[Any, Any] = {}
    for path, text in replacements.items():
        node = tree
        for step in path[:-1]:
            node = node.setdefault(step, {})
        node[path[-1]] = _Leaf(text)
    return _rebuild(body, tree)


@dataclass(frozen=True, slots=True)
class _Leaf:
    text: str


def _rebuild(value: Any, tree: Mapping[Any, Any]) -> Any:
    if isinstance(value, Mapping):
        copied: dict[Any, Any] = dict(value)
        for key, sub in tree.items():
            copied[key] = sub.text if isinstance(sub, _Leaf) else _rebuild(copied[key], sub)
        return copied
    if isinstance(value, list):
        items = list(value)
        for key, sub in tree.items():
            items[key] = sub.text if isinstance(sub, _Leaf) else _rebuild(items[key], sub)
        return items
    return value
