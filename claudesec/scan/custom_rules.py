"""Custom rules: ``[[scan.rules]]`` in the config, and gitleaks rule files used as they are.

Both become :class:`~claudesec.detect.rules.Detector` rows run by the same engine and prefilter
as the built-in catalogue, with gitleaks' semantics, so a team moving from gitleaks keeps its
findings: a keyword anywhere in a file (any case) runs the rule's regex over the whole file (no
keywords: every file); the secret is the ``secretGroup``-th group, else the first non-empty
group, else the whole match; a secret whose Shannon entropy is at most ``entropy`` is dropped
(gitleaks 8.30 no longer also wants a digit in ``generic*`` rules' secrets); allowlists (per
rule and global) test paths, commits, regexes against the secret, the match or the line, and
stopwords, with ``condition = "OR"`` or ``"AND"``; ``gitleaks:allow`` on the line suppresses.

Regexes in a gitleaks file are Go (RE2) syntax, translated by :mod:`claudesec.scan.re2`;
``[[scan.rules]]`` regexes are Python syntax and paths there are globs, as elsewhere in the
config. Every problem is a :class:`~claudesec.errors.ConfigError` naming the rule id, the file
and the line (exit 2).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from claudesec.detect.engine import Hit
from claudesec.detect.rules import Detector, Severity
from claudesec.errors import ConfigError
from claudesec.scan import re2

PathTest = Callable[[str], bool]
# (hit, path, the scanned buffer when there is one, commit sha) -> whether the finding stands.
FindingFilter = Callable[[Hit, str, "bytes | None", "str | None"], bool]

_NATIVE_FIELDS = {
    "id",
    "regex",
    "keywords",
    "secret_group",
    "entropy",
    "severity",
    "description",
    "paths",
    "allow_paths",
    "allow_values",
    "allow_stopwords",
}
_GITLEAKS_RULE_FIELDS = {
    "id",
    "description",
    "regex",
    "secretGroup",
    "entropy",
    "keywords",
    "path",
    "tags",
    "allowlist",
    "allowlists",
}
_GITLEAKS_ALLOWLIST_FIELDS = {
    "description",
    "condition",
    "commits",
    "paths",
    "regexTarget",
    "regexes",
    "stopwords",
    "targetRules",
}
_GITLEAKS_TOP = {"title", "description", "minVersion", "extend", "rules", "allowlist", "allowlists"}


@dataclass(frozen=True)
class Allowlist:
    """One allowlist: a finding it matches is suppressed."""

    regexes: tuple[re.Pattern[bytes], ...] = ()
    target: str = "secret"  # secret | match | line
    paths: PathTest | None = None
    commits: frozenset[str] = frozenset()
    stopwords: tuple[str, ...] = ()
    all_of: bool = False  # condition = "AND"
    rules: frozenset[str] = frozenset()  # a global allowlist's targetRules (empty: every rule)

    def allows(
        self, secret: bytes, match: bytes, line: bytes, path: str, commit: str | None
    ) -> bool:
        value = {"secret": secret, "match": match, "line": line}[self.target]
        checks: list[bool] = []
        if self.commits:
            checks.append(commit is not None and commit in self.commits)
        if self.paths is not None:
            checks.append(self.paths(path))
        if self.regexes:
            checks.append(any(r.search(value) for r in self.regexes))
        if self.stopwords:
            lowered = secret.decode("utf-8", "replace").lower()
            checks.append(any(word in lowered for word in self.stopwords))
        return bool(checks) and (all(checks) if self.all_of else any(checks))


@dataclass(frozen=True)
class CustomRule:
    """A custom rule as read, before it becomes an engine detector."""

    id: str
    pattern: str  # Python syntax
    keywords: tuple[str, ...] = ()
    secret_group: int = 0
    entropy: float = 0.0
    severity: Severity = Severity.HIGH
    description: str = ""
    paths: PathTest | None = None  # the rule applies only where this is true
    allowlists: tuple[Allowlist, ...] = ()
    gitleaks: bool = False  # honour `gitleaks:allow` comments too
    origin: str = ""


@dataclass(frozen=True)
class CustomRules:
    """Every custom rule of a run, and the global allowlists (gitleaks' ``[allowlist]``)."""

    rules: tuple[CustomRule, ...] = ()
    allowlists: tuple[Allowlist, ...] = ()
    path_only: tuple[CustomRule, ...] = field(default=())

    def __bool__(self) -> bool:
        return bool(self.rules or self.allowlists or self.path_only)

    def merged(self, other: CustomRules) -> CustomRules:
        return CustomRules(
            self.rules + other.rules,
            self.allowlists + other.allowlists,
            self.path_only + other.path_only,
        )


# --------------------------------------------------------------------------- engine rows


def detectors(custom: CustomRules) -> tuple[Detector, ...]:
    """The engine rows of the custom rules (passive: they claim no span)."""
    return tuple(_detector(rule) for rule in custom.rules)


def _detector(rule: CustomRule) -> Detector:
    return Detector(
        id=rule.id,
        kind=rule.description or f"custom rule {rule.id}",
        keywords=tuple(k.lower() for k in rule.keywords),
        pattern=rule.pattern,
        severity=rule.severity,
        fix=f"Remove it and rotate it (custom rule {rule.id}, {rule.origin}).",
        validate=_validator(rule),
        caseless=True,
        scope="buffer",
        secret_span=_span(rule.secret_group),
        verbose=False,
        after=4096,
    )


def _span(group: int) -> Callable[[re.Match[bytes]], tuple[int, int]]:
    def span(match: re.Match[bytes]) -> tuple[int, int]:
        if group:
            return match.span(group)
        for index in range(1, (match.re.groups or 0) + 1):
            start, end = match.span(index)
            if end > start >= 0:
                return start, end
        return match.span(0)

    return span


def _validator(rule: CustomRule) -> Callable[[bytes, re.Match[bytes]], bool]:
    threshold = rule.entropy
    gitleaks = rule.gitleaks

    def validate(secret: bytes, match: re.Match[bytes]) -> bool:
        if threshold and shannon_entropy(secret) <= threshold:
            return False
        return not (gitleaks and b"gitleaks:allow" in _line(match.string, match.start()))

    return validate


def shannon_entropy(value: bytes) -> float:
    """Bits per character of ``value`` (gitleaks' measure, over code points)."""
    text = value.decode("utf-8", "replace")
    if not text:
        return 0.0
    total = len(text)
    return -sum(c / total * math.log2(c / total) for c in Counter(text).values())


def _line(data: bytes, pos: int) -> bytes:
    start = data.rfind(b"\n", 0, pos) + 1
    end = data.find(b"\n", pos)
    return data[start : end if end >= 0 else len(data)]


def finding_filter(custom: CustomRules) -> FindingFilter | None:
    """Path conditions and allowlists, applied to each hit once its file is known."""
    by_id = {rule.id: rule for rule in custom.rules}
    global_lists = custom.allowlists
    if not by_id and not global_lists:
        return None

    def keep(hit: Hit, path: str, data: bytes | None, commit: str | None) -> bool:
        rule = by_id.get(hit.detector.id)
        if rule is not None and rule.paths is not None and not rule.paths(path):
            return False
        lists = [a for a in global_lists if not a.rules or hit.detector.id in a.rules]
        if rule is not None:
            lists.extend(rule.allowlists)
        if not lists:
            return True
        if data is not None:
            line = _line(data, hit.start)
            match = data[hit.match_start : hit.match_end] if hit.match_start >= 0 else hit.secret
        else:
            line = match = hit.secret
        return not any(a.allows(hit.secret, match, line, path, commit) for a in lists)

    return keep


# --------------------------------------------------------------------------- loading


def from_config(
    raw: Sequence[Mapping[str, Any]], config_path: Path | None, in_pyproject: bool = False
) -> CustomRules:
    """``[[scan.rules]]`` tables (Python regexes, glob paths)."""
    text = _read_text(config_path) if config_path is not None else ""
    header = "tool.claudesec.scan.rules" if in_pyproject else "scan.rules"
    starts = _table_lines(text, header)
    where = str(config_path) if config_path is not None else "config"
    rules: list[CustomRule] = []
    for index, table in enumerate(raw):
        start = starts[index] if index < len(starts) else None
        rule_id = str(table.get("id") or f"#{index + 1}")
        problem = _Problem(where, text, start, rule_id)
        for key in table:
            if key not in _NATIVE_FIELDS:
                fields = ", ".join(sorted(_NATIVE_FIELDS))
                raise problem(f"unknown field {key!r}", key, hint="fields: " + fields)
        if "id" not in table:
            raise problem("has no id", None)
        if "regex" not in table:
            raise problem("has no regex", None)
        pattern = _str(table, "regex", problem)
        _compile(pattern, problem, "regex")
        globs = tuple(_strs(table, "paths", problem))
        allow_globs = tuple(_strs(table, "allow_paths", problem))
        lists: list[Allowlist] = []
        if allow_globs:
            lists.append(Allowlist(paths=_glob_test(allow_globs)))
        values = tuple(
            _compile(v, problem, "allow_values") for v in _strs(table, "allow_values", problem)
        )
        if values:
            lists.append(Allowlist(regexes=values))
        stopwords = tuple(w.lower() for w in _strs(table, "allow_stopwords", problem))
        if stopwords:
            lists.append(Allowlist(stopwords=stopwords))
        rules.append(
            CustomRule(
                id=_rule_id(rule_id, problem),
                pattern=pattern,
                keywords=tuple(_keywords(table, "keywords", problem)),
                secret_group=_group(table, "secret_group", pattern, problem),
                entropy=_entropy(table, "entropy", problem),
                severity=_severity(table, problem),
                description=str(table.get("description", "")),
                paths=_glob_test(globs) if globs else None,
                allowlists=tuple(lists),
                origin=f"{where}:{start}" if start else where,
            )
        )
    _no_duplicates(rules, where)
    return CustomRules(tuple(rules))


def from_gitleaks(path: Path, *, _depth: int = 0) -> CustomRules:
    """A gitleaks rule file (``.gitleaks.toml``) as gitleaks reads it."""
    text = _read_text(path)
    import tomllib  # only when a gitleaks rule file is read

    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", path=str(path)) from exc
    where = str(path)
    for key in document:
        if key not in _GITLEAKS_TOP:
            raise ConfigError(
                f"unknown gitleaks setting {key!r}", path=where, line=_key_line(text, 1, key)
            )
    extended = CustomRules()
    extend = document.get("extend") or {}
    if isinstance(extend, dict) and extend.get("path"):
        if _depth >= 2:
            raise ConfigError("[extend] nests deeper than gitleaks allows", path=where)
        extended = from_gitleaks(path.parent / str(extend["path"]), _depth=_depth + 1)
    if isinstance(extend, dict) and extend.get("url"):
        raise ConfigError(
            "[extend] url is not supported (no network): download it and use path",
            path=where,
            line=_key_line(text, 1, "url"),
        )
    starts = _table_lines(text, "rules")
    rules: list[CustomRule] = []
    path_only: list[CustomRule] = []
    for index, table in enumerate(document.get("rules") or []):
        start = starts[index] if index < len(starts) else None
        rule_id = str(table.get("id") or f"#{index + 1}")
        problem = _Problem(where, text, start, rule_id)
        for key in table:
            if key == "required":
                raise problem("composite rules ([[rules.required]]) are not supported", key)
            if key not in _GITLEAKS_RULE_FIELDS:
                raise problem(
                    f"unknown field {key!r}",
                    key,
                    hint="fields: " + ", ".join(sorted(_GITLEAKS_RULE_FIELDS)),
                )
        if "id" not in table:
            raise problem("has no id", None)
        pattern = _go_regex(table, "regex", problem) if "regex" in table else ""
        path_regex = _go_regex(table, "path", problem) if "path" in table else ""
        if not pattern and not path_regex:
            raise problem("has neither regex nor path", None)
        paths = _regex_test(path_regex) if path_regex else None
        lists: list[Allowlist] = []
        single = table.get("allowlist")
        if single is not None:
            lists.append(_gitleaks_allowlist(single, problem))
        for entry in table.get("allowlists") or []:
            lists.append(_gitleaks_allowlist(entry, problem))
        rule = CustomRule(
            id=_rule_id(rule_id, problem),
            pattern=pattern,
            keywords=tuple(_keywords(table, "keywords", problem)),
            secret_group=_group(table, "secretGroup", pattern, problem) if pattern else 0,
            entropy=_entropy(table, "entropy", problem),
            description=str(table.get("description", "")),
            paths=paths,
            allowlists=tuple(lists),
            gitleaks=True,
            origin=f"{where}:{start}" if start else where,
        )
        (rules if pattern else path_only).append(rule)
    globals_: list[Allowlist] = []
    problem = _Problem(where, text, _key_line(text, 1, "[allowlist]"), "global allowlist")
    if isinstance(document.get("allowlist"), dict):
        globals_.append(_gitleaks_allowlist(document["allowlist"], problem))
    for entry in document.get("allowlists") or []:
        globals_.append(_gitleaks_allowlist(entry, problem))
    own = CustomRules(tuple(rules), tuple(globals_), tuple(path_only))
    # Rules of the file that extends replace same-id rules of the one it extends.
    ids = {r.id for r in own.rules + own.path_only}
    base = CustomRules(
        tuple(r for r in extended.rules if r.id not in ids),
        extended.allowlists,
        tuple(r for r in extended.path_only if r.id not in ids),
    )
    _no_duplicates([*own.rules, *own.path_only], where)
    return base.merged(own)


def _gitleaks_allowlist(entry: Any, problem: _Problem) -> Allowlist:
    if not isinstance(entry, dict):
        raise problem("allowlist must be a table", "allowlist")
    for key in entry:
        if key not in _GITLEAKS_ALLOWLIST_FIELDS:
            raise problem(
                f"unknown allowlist field {key!r}",
                key,
                hint="fields: " + ", ".join(sorted(_GITLEAKS_ALLOWLIST_FIELDS)),
            )
    condition = str(entry.get("condition", "OR")).upper()
    if condition not in ("OR", "AND"):
        raise problem(f"allowlist condition must be OR or AND, got {condition!r}", "condition")
    target = str(entry.get("regexTarget", "secret") or "secret")
    if target not in ("secret", "match", "line"):
        raise problem(f"regexTarget must be secret, match or line, got {target!r}", "regexTarget")
    regexes = tuple(
        _compile(_translated(r, problem, "regexes"), problem, "regexes")
        for r in _strs(entry, "regexes", problem)
    )
    path_tests = [_translated(p, problem, "paths") for p in _strs(entry, "paths", problem)]
    for p in path_tests:
        _compile(p, problem, "paths")
    combined = "|".join(f"(?:{p})" for p in path_tests)
    return Allowlist(
        regexes=regexes,
        target=target,
        paths=_regex_test(combined) if path_tests else None,
        commits=frozenset(_strs(entry, "commits", problem)),
        stopwords=tuple(w.lower() for w in _strs(entry, "stopwords", problem)),
        all_of=condition == "AND",
        rules=frozenset(_strs(entry, "targetRules", problem)),
    )


# --------------------------------------------------------------------------- field checks


class _Problem:
    """Builds the ConfigError of one rule: its id, the file and the line of the field."""

    def __init__(self, where: str, text: str, start: int | None, rule_id: str) -> None:
        self.where, self.text, self.start, self.rule_id = where, text, start, rule_id

    def __call__(self, message: str, key: str | None, *, hint: str | None = None) -> ConfigError:
        line = self.start
        if key is not None and self.start is not None:
            line = _key_line(self.text, self.start, key) or self.start
        return ConfigError(
            f"rule {self.rule_id!r}: {message}", path=self.where, line=line, hint=hint
        )


def _str(table: Mapping[str, Any], key: str, problem: _Problem) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value:
        raise problem(f"{key} must be a non-empty string", key)
    return value


def _strs(table: Mapping[str, Any], key: str, problem: _Problem) -> list[str]:
    value = table.get(key, ())
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise problem(f"{key} must be an array of strings", key)
    return list(value)


def _keywords(table: Mapping[str, Any], key: str, problem: _Problem) -> list[str]:
    words = _strs(table, key, problem)
    for word in words:
        if not word or not word.isascii():
            raise problem(f"keyword {word!r} must be non-empty ASCII", key)
    return words


def _entropy(table: Mapping[str, Any], key: str, problem: _Problem) -> float:
    value = table.get(key, 0.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise problem(f"{key} must be a number of bits (0 or more)", key)
    return float(value)


def _group(table: Mapping[str, Any], key: str, pattern: str, problem: _Problem) -> int:
    value = table.get(key, 0)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise problem(f"{key} must be a group number", key)
    groups = re.compile(pattern.encode("utf-8")).groups
    if value > groups:
        raise problem(f"{key} is {value} but the regex has {groups} group(s)", key)
    return value


def _severity(table: Mapping[str, Any], problem: _Problem) -> Severity:
    value = table.get("severity", "high")
    try:
        return Severity(str(value))
    except ValueError:
        raise problem(
            f"severity must be one of {', '.join(s.value for s in Severity)}", "severity"
        ) from None


def _rule_id(rule_id: str, problem: _Problem) -> str:
    from claudesec.detect.catalogue import DETECTORS_BY_ID

    if rule_id in DETECTORS_BY_ID:
        raise problem("id is a built-in rule's id; pick another", "id")
    return rule_id


def _translated(pattern: str, problem: _Problem, key: str) -> str:
    try:
        return re2.translate(pattern)
    except re2.Unsupported as exc:
        raise problem(f"{key}: {exc}", key, hint="rewrite it without that construct") from None


def _go_regex(table: Mapping[str, Any], key: str, problem: _Problem) -> str:
    translated = _translated(_str(table, key, problem), problem, key)
    _compile(translated, problem, key)
    return translated


def _compile(pattern: str, problem: _Problem, key: str) -> re.Pattern[bytes]:
    try:
        return re.compile(pattern.encode("utf-8"))
    except re.error as exc:
        raise problem(f"{key} is not a valid regex: {exc}", key) from None


def _glob_test(globs: tuple[str, ...]) -> PathTest:
    from claudesec.scan.paths import path_matches

    return lambda path: path_matches(path, globs)


def _regex_test(pattern: str) -> PathTest:
    compiled = re.compile(pattern)
    return lambda path: compiled.search(path) is not None


def _no_duplicates(rules: Sequence[CustomRule], where: str) -> None:
    seen: set[str] = set()
    for rule in rules:
        if rule.id in seen:
            raise ConfigError(f"rule {rule.id!r} is defined twice", path=where)
        seen.add(rule.id)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("rule file not found", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read rule file: {exc}", path=str(path)) from None


def _table_lines(text: str, header: str) -> list[int]:
    """Line numbers of each ``[[header]]`` table, in order."""
    wanted = header.split(".")
    found: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = re.match(r"^\s*\[\[\s*([^\]]+?)\s*\]\]", line)
        if match and [p.strip().strip("\"'") for p in match.group(1).split(".")] == wanted:
            found.append(number)
    return found


_ARRAY_HEADER = re.compile(r"^\[\[\s*(rules|scan\.rules|tool\.claudesec\.scan\.rules)\s*\]\]")


def _key_line(text: str, start: int, key: str) -> int | None:
    """The line of ``key = ...`` (or of a ``[... .key]`` table) from ``start`` on, before the
    next table of the same array."""
    lines = text.splitlines()
    for number in range(start, len(lines) + 1):
        stripped = lines[number - 1].strip()
        if number > start and _ARRAY_HEADER.match(stripped):
            return None
        if key.startswith("[") and stripped.startswith(key):
            return number
        if re.match(rf"^\[*\s*(?:[\w.]+\.)?{re.escape(key)}\s*(?:=|\]|\.)", stripped):
            return number
    return None
