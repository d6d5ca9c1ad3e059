"""Parse a request body only when every JSON parser would read it the same way.

A gateway checks the body it parsed and forwards the bytes it received, so any place where
two parsers disagree is a way around the checks: ``{"model": <forbidden>, ..., "model":
<allowed>}`` is judged on Python's last key and may be served on another parser's first one.
Rather than re-serialise what was checked (which rewrites every client's bytes, costs a
second encoding of each body and still forwards our reading of an ambiguous request), the
proxy refuses what is ambiguous, with one line saying what. No SDK sends any of it:

* not UTF-8, or a byte order mark (Python's ``json`` would quietly accept UTF-16/32 and BOMs);
* a duplicate key in any object, at any depth;
* ``NaN``, ``Infinity``, or a number too large for a double (``1e400`` reads as infinity);
* an integer beyond +/-2**53 (parsers that use doubles round it, others overflow);
* a lone UTF-16 surrogate (``"\\ud800"``): parsers drop, replace or refuse it, which can join
  the two halves of a secret that DLP saw apart;
* anything after the value, or nesting deeper than :data:`MAX_DEPTH`.

:func:`json_depth` and :func:`has_lone_surrogate` are also what the pipeline applies to bodies
an SDK built (no bytes to parse there, but the same depth and text rules).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 64  # a Messages body nests a handful of levels; tool schemas rarely ten
_MAX_SAFE_INT = 2**53
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_LONG_INT = re.compile(rb"\d{16}")


class AmbiguousJson(ValueError):
    """The body is not JSON every parser reads the same way; the message says why."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise AmbiguousJson(f"the request body repeats the key {key[:40]!r} in an object")
            seen.add(key)
    return obj


def _constant(name: str) -> Any:
    raise AmbiguousJson(f"the request body holds {name}, which is not JSON")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise AmbiguousJson("the request body holds a number too large for a double")
    return value


def _int(text: str) -> int:
    value = int(text)
    if -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT:
        return value
    raise AmbiguousJson("the request body holds an integer beyond 2**53 that parsers disagree on")


_DECODER = json.JSONDecoder(object_pairs_hook=_pairs, parse_constant=_constant, parse_float=_float)
_DECODER_BIG = json.JSONDecoder(
    object_pairs_hook=_pairs, parse_constant=_constant, parse_float=_float, parse_int=_int
)


def parse_body(raw: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value of ``raw``, or :class:`AmbiguousJson` naming the first problem found."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raise AmbiguousJson("the request body starts with a byte order mark")
    try:
        text = raw.decode("utf-8")  # strict: refuses invalid bytes and encoded surrogates
    except UnicodeDecodeError:
        raise AmbiguousJson("the request body is not valid UTF-8") from None
    # parse_int is a Python call per integer: only paid when a long digit run is present.
    decoder = _DECODER_BIG if _LONG_INT.search(raw) else _DECODER
    try:
        value = decoder.decode(text)
    except AmbiguousJson:
        raise
    except RecursionError:
        raise AmbiguousJson(f"the request body nests deeper than {max_depth} levels") from None
    except ValueError as exc:
        raise AmbiguousJson(f"the request body is not valid JSON ({_reason(exc)})") from None
    if json_depth(value, max_depth) > max_depth:
        raise AmbiguousJson(f"the request body nests deeper than {max_depth} levels")
    if _SURROGATE_ESCAPE.search(raw) and has_lone_surrogate(value):
        raise AmbiguousJson("the request body holds a lone UTF-16 surrogate (\\ud800-\\udfff)")
    return value


def _reason(exc: ValueError) -> str:
    message = getattr(exc, "msg", "") or str(exc)
    return str(message)[:80]


def json_depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deep ``value`` nests (a scalar is 0), counting no further than ``limit + 1``.

    Iterative, so a body nested thousands deep is measured, not a RecursionError.
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        item, depth = pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        depth += 1
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                return deepest
        for child in children:
            if isinstance(child, (dict, list, tuple)):
                push((child, depth))
    return deepest


def has_lone_surrogate(value: Any) -> bool:
    """Whether any string in ``value`` (keys included) holds a UTF-16 surrogate code point."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return False


def text_has_lone_surrogate(text: str) -> bool:
    return _SURROGATE.search(text) is not None
