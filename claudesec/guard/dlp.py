"""Data-loss prevention for Claude requests and responses: secrets and PII, found and redacted.

Secrets and personal data come from the one catalogue (:mod:`claudesec.detect.catalogue`)
through its matchers (:mod:`claudesec.detect.engine`, :mod:`claudesec.detect.pii`), so a key
``claudesec scan`` reports in a file is the key DLP stops in a prompt. Only the custom patterns
of ``[dlp] custom_patterns`` are DLP's own. This module decides what a request's texts are,
how findings are resolved against each other, and how they are redacted.

All text parts of a request are joined with a separator no detector matches across and scanned
in one pass. Findings carry a kind and a position, never the matched value: what leaves this
module for the audit log is kinds and counts.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Mapping, Sequence
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
        candidates = [Finding(hit.kind, "pii", hit.start, hit.end) for hit in self._pii.find(data)]
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
