"""Go regular expressions (RE2, what gitleaks rule files are written in) as Python ``re``.

Most RE2 syntax means the same in Python. What differs is rewritten: ``\\z`` (Python ``\\Z``),
``\\Q...\\E`` quoting, ``(?<name>...)`` groups, POSIX classes (``[[:alnum:]]``), ``\\x{...}``,
flags set in the middle of a pattern (``a(?i)b`` is ``a(?i:b)``) and a literal ``{,n}``. What
Python cannot express is refused with the reason: Unicode classes (``\\pL``), the ungreedy flag
``(?U)``, ``\\C``, and non-ASCII characters inside a class (the engine matches bytes).
"""

from __future__ import annotations

import re

_POSIX = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_FLAGS = re.compile(r"\(\?([imsU]*(?:-[imsU]*)?)(:|\))")


class Unsupported(ValueError):
    """A construct Python's ``re`` has no equivalent for; the message says which."""


def translate(pattern: str) -> str:
    """The Python ``re`` pattern that matches what the RE2 ``pattern`` matches."""
    out: list[str] = []
    # One entry per open group: how many extra ")" its end must emit (flags set mid-group).
    groups: list[int] = [0]
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            i = _escape(pattern, i, out, in_class=False)
            continue
        if c == "[":
            i = _char_class(pattern, i, out)
            continue
        if c == "(":
            if pattern.startswith("(?P<", i):
                out.append("(?P<")
                groups.append(0)
                i += 4
                continue
            if pattern.startswith("(?<", i) and not pattern.startswith(("(?<=", "(?<!"), i):
                out.append("(?P<")
                groups.append(0)
                i += 3
                continue
            flags = _FLAGS.match(pattern, i)
            if flags is not None:
                spec = flags.group(1)
                if "U" in spec:
                    raise Unsupported("the ungreedy flag (?U) has no Python equivalent")
                if flags.group(2) == ":":
                    out.append(f"(?{spec}:")
                    groups.append(0)
                elif not out and not spec.startswith("-") and "-" not in spec:
                    out.append(f"(?{spec})")  # at the very start: global, as in Python
                elif spec:
                    # Mid-pattern flags last to the end of the enclosing group.
                    out.append(f"(?{spec}:")
                    groups[-1] += 1
                i = flags.end()
                continue
            if pattern.startswith("(?", i) and not pattern.startswith("(?:", i):
                raise Unsupported(f"group syntax {pattern[i : i + 4]!r} is not RE2")
            out.append("(")
            groups.append(0)
            i += 1
            continue
        if c == ")":
            if len(groups) == 1:
                raise Unsupported("unbalanced ')'")
            out.append(")" * groups.pop())
            out.append(")")
            i += 1
            continue
        if c == "{" and pattern.startswith("{,", i):
            out.append("\\{")  # RE2 reads {,n} as text; Python as a repeat
            i += 1
            continue
        out.append(c)
        i += 1
    if len(groups) != 1:
        raise Unsupported("missing ')'")
    out.append(")" * groups[0])
    return "".join(out)


def _escape(pattern: str, i: int, out: list[str], *, in_class: bool) -> int:
    if i + 1 >= len(pattern):
        raise Unsupported("trailing backslash")
    d = pattern[i + 1]
    if d == "Q":
        end = pattern.find("\\E", i + 2)
        literal = pattern[i + 2 : end if end >= 0 else len(pattern)]
        if in_class:
            out.append("".join("\\" + ch if not ch.isalnum() else ch for ch in literal))
        else:
            out.append(re.escape(literal))
        return end + 2 if end >= 0 else len(pattern)
    if d == "z":
        out.append("\\Z")
        return i + 2
    if d in "pP":
        raise Unsupported(f"Unicode class \\{d}... is not supported by Python's re")
    if d == "C":
        raise Unsupported("\\C (any byte) is not supported")
    if d == "Z":
        raise Unsupported("\\Z is not RE2 syntax (use \\z)")
    if d.isdigit() and d != "0":
        raise Unsupported(f"\\{d}: backreferences are not RE2 syntax")
    if d == "x" and pattern.startswith("{", i + 2):
        end = pattern.find("}", i + 3)
        if end < 0:
            raise Unsupported("unterminated \\x{...}")
        code = int(pattern[i + 3 : end], 16)
        if code > 0x7F:
            raise Unsupported(f"\\x{{{code:x}}}: only ASCII code points can be matched in bytes")
        out.append(f"\\x{code:02x}")
        return end + 1
    out.append(pattern[i : i + 2])
    return i + 2


def _char_class(pattern: str, i: int, out: list[str]) -> int:
    out.append("[")
    i += 1
    if pattern.startswith("^", i):
        out.append("^")
        i += 1
    if pattern.startswith("]", i):
        out.append("\\]")
        i += 1
    while i < len(pattern):
        c = pattern[i]
        if c == "]":
            out.append("]")
            return i + 1
        if c == "\\":
            i = _escape(pattern, i, out, in_class=True)
            continue
        if c == "[" and pattern.startswith("[:", i):
            end = pattern.find(":]", i + 2)
            name = pattern[i + 2 : end] if end >= 0 else ""
            if name not in _POSIX:
                raise Unsupported(f"POSIX class [:{name}:] is not supported")
            out.append(_POSIX[name])
            i = end + 2
            continue
        if c == "[":
            out.append("\\[")  # a literal bracket inside a class (Python warns otherwise)
            i += 1
            continue
        if ord(c) > 0x7F:
            raise Unsupported(f"non-ASCII character {c!r} inside a class")
        out.append(c)
        i += 1
    raise Unsupported("missing ']'")
