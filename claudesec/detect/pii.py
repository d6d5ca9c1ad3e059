"""The personal-data matcher: finds the catalogue's PII rules in text. No I/O.

Speed comes from never running a Python regex over the whole text:

* emails (rules with an ``anchor``): ``bytes.find(b"@")``, then one small regex on each side of
  the ``@``;
* number-shaped PII (cards, phones, SSNs, IBANs, IPs): one hyperscan pass over all their shapes
  at once reports where candidates end; the exact pattern and its checksum run only there.
  Without hyperscan (non-x86 platforms) each shape runs over the text with ``re``, which is
  several times slower but finds the same things.

Hits carry a kind and a position, never the matched value.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from claudesec.detect.catalogue import PII_KIND_ALIASES, PII_RULES
from claudesec.detect.rules import PiiRule
from claudesec.detect.validators import card_valid

# Local parts may be UTF-8 (RFC 6531: "jürgen@..."); domains are matched in their ASCII form.
_EMAIL_LOCAL = re.compile(rb"[A-Za-z0-9._%+\x80-\xff-]{1,64}\Z")
_EMAIL_DOMAIN = re.compile(rb"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-])")
_CARD_GROUP = re.compile(rb"[ -](?=\d)")


@dataclass(frozen=True, slots=True)
class PiiHit:
    """Where a personal-data value is, and its kind. Deliberately no value."""

    kind: str
    start: int
    end: int


class _Shapes:
    """One hyperscan pass reporting where each PII detector's shapes end.

    Start-of-match tracking (``HS_FLAG_SOM_LEFTMOST``) would name the start too, but costs
    ~4x the scan time here; a window of the detector's maximum length before each end is as
    good, since the exact pattern runs there anyway.
    """

    def __init__(self, detectors: Sequence[PiiRule]) -> None:
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


class PiiMatcher:
    """Finds the enabled PII rules in UTF-8 bytes. Build once, reuse from any thread."""

    def __init__(self, rules: Sequence[PiiRule] = PII_RULES, *, hyperscan: bool = False) -> None:
        self._email = any(rule.anchor == "@" for rule in rules)
        self._email_unless = next((r.unless for r in rules if r.anchor == "@"), ())
        self._rules: tuple[PiiRule, ...] = tuple(rule for rule in rules if not rule.anchor)
        self._shapes = _Shapes(self._rules) if self._rules and hyperscan else None

    def __bool__(self) -> bool:
        return self._email or bool(self._rules)

    def find(self, data: bytes) -> list[PiiHit]:
        """Candidate hits (they may overlap each other), in no particular order."""
        hits: list[PiiHit] = []
        if self._email and b"@" in data:
            hits.extend(self._emails(data))
        if self._rules:
            hits.extend(self._number_shaped(data))
        return hits

    def _emails(self, data: bytes) -> Iterator[PiiHit]:
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
                    if not any(check(data, start, last_end) for check in self._email_unless):
                        yield PiiHit("email", start, last_end)
            at = find(b"@", max(at + 1, last_end))

    def _number_shaped(self, data: bytes) -> Iterator[PiiHit]:
        detectors = self._rules
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
                found = self._value_at(detector, data, match.start())
                # Context checks run on hits only (most candidates fail their validator).
                if found is not None and not (
                    detector.unless
                    and any(check(data, found.start, found.end) for check in detector.unless)
                ):
                    yield found

    @staticmethod
    def _value_at(detector: PiiRule, data: bytes, start: int) -> PiiHit | None:
        regex = detector.regex
        match = regex.match(data, start)
        if match is None:
            return None
        kind = PII_KIND_ALIASES.get(detector.id, detector.id)
        # A rule whose pattern includes context (a label) names its value group "v".
        value = "v" if "v" in regex.groupindex else 0
        if detector.validate is None or detector.validate(match.group(value)):
            return PiiHit(kind, match.start(value), match.end(value))
        if detector.id == "payment-card":
            # "Order 12 4111 1111 1111 1111": the number may start at a later group.
            for group in list(_CARD_GROUP.finditer(data, match.start(), match.end()))[:4]:
                inner = regex.match(data, group.end())
                if inner is not None and card_valid(inner.group()):
                    return PiiHit(kind, inner.start(), inner.end())
        return None
