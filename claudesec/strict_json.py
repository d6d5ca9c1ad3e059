"""JSON text that is also valid Unicode: the one decoder for bodies from outside.

``json.loads`` accepts a lone surrogate escape (``"\\ud800"``) and hands back a ``str`` that
cannot be encoded as UTF-8: the crash then comes later and elsewhere, when the value is
logged, stored in SQLite or sent on (``UnicodeEncodeError``). RFC 8259 section 8.2 leaves
such strings' behaviour unpredictable; the Anthropic API answers them 400. :func:`loads`
refuses them where they enter, as invalid JSON, so every caller's existing ``ValueError``
path (a 400, an "unreadable reply") covers them. :func:`scrub` is for values we must still
write out whatever they hold (an event already in the audit log): lone surrogates become
U+FFFD.

A correctly paired escape (``"\\ud83d\\ude00"``) is one ordinary character and passes.
"""

from __future__ import annotations

import json
import re
from typing import Any

# An escape of a surrogate code point: the only way one gets into decoded JSON text (raw
# surrogates are not valid UTF-8, so bytes carrying them fail to decode already).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_SURROGATE_ESCAPE_BYTES = re.compile(rb"\\u[dD][89abcdefABCDEF]")
# Any surrogate left in a decoded str is a lone one: json pairs the valid ones up.
_SURROGATE = re.compile("[\ud800-\udfff]")


class LoneSurrogateError(ValueError):
    """JSON text with a ``\\uD800``-``\\uDFFF`` escape that is not half of a pair."""


def loads(text: str | bytes | bytearray) -> Any:
    """``json.loads`` that also refuses lone surrogates (raises :class:`LoneSurrogateError`,
    a ``ValueError`` like every other invalid-JSON error)."""
    value = json.loads(text)
    if isinstance(text, str):
        suspicious = _SURROGATE_ESCAPE.search(text) is not None
    else:
        suspicious = _SURROGATE_ESCAPE_BYTES.search(text) is not None
    # The walk costs only for bodies that carry a surrogate escape at all.
    if suspicious and has_lone_surrogate(value):
        raise LoneSurrogateError("invalid JSON: lone surrogate in a \\u escape")
    return value


def has_lone_surrogate(value: Any) -> bool:
    """Whether any string (key or value) inside ``value`` holds a lone surrogate."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def scrub(value: Any) -> Any:
    """``value`` with every lone surrogate replaced by U+FFFD (for writing out as UTF-8)."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value
