"""``[[federation.issuers]]``, ``[[federation.service_accounts]]`` and ``[[federation.rules]]``
into typed specs, with every problem collected and its file line named.

The config loader (:mod:`claudesec.config`) only checks these are arrays of tables; this module
knows what a table means. Preset sugar (``repository``, ``ref``, ``environment`` ...) becomes an
exact subject and exact claims (:mod:`.presets`); raw fields (``subject_prefix``, ``claims``,
``condition``, ``audience``) pass through as the SDK spells them. References (a rule's issuer,
service account, workspaces) are checked here, so ``plan`` only ever sees a consistent set.
A rule's ``check_jti`` / ``max_jwt_lifetime_seconds`` are issuer settings in the API: they are
folded into the rule's issuer, and two rules asking different values of one issuer is an error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from claudesec.config import LoadedConfig
from claudesec.errors import ConfigError
from claudesec.federation.presets import (
    PRESETS,
    RAW_MATCH_KEYS,
    Preset,
    claims_for,
    subject_for,
)

SLUG = re.compile(r"[a-z0-9-]{1,64}")
SCOPE_INFERENCE = "workspace:inference"
SCOPE_DEVELOPER = "workspace:developer"
SCOPE_ORG_ADMIN = "org:admin"
WORKSPACE_ROLES = (
    "workspace_user",
    "workspace_restricted_developer",
    "workspace_developer",
    "workspace_admin",
)
DEFAULT_WORKSPACE = "default"
MAX_JWT_LIFETIME_RANGE = (1, 176_400)
TOKEN_LIFETIME_RANGE = (60, 86_400)
DEFAULT_MAX_JWT_LIFETIME_S = 3600
DEFAULT_TOKEN_LIFETIME_S = 3600

_ISSUER_KEYS = frozenset(
    {
        "name",
        "preset",
        "issuer_url",
        "jwks",
        "check_jti",
        "max_jwt_lifetime_seconds",
        "ca_cert_file",
    }
)
_ACCOUNT_KEYS = frozenset({"name", "description", "workspaces"})
_RULE_KEYS = frozenset(
    {
        "name",
        "description",
        "issuer",
        "service_account",
        "workspace",
        "workspaces",
        "applies_to_all_workspaces",
        "scopes",
        "token_lifetime_seconds",
        "check_jti",
        "max_jwt_lifetime_seconds",
        *RAW_MATCH_KEYS,
    }
)


@dataclass(frozen=True)
class IssuerSpec:
    name: str
    preset: str
    issuer_url: str
    jwks: Mapping[str, Any]  # the SDK's jwks param: {"type": "discovery"|"explicit_url"|"inline"}
    check_jti: bool = True
    max_jwt_lifetime_seconds: int = DEFAULT_MAX_JWT_LIFETIME_S
    line: int | None = None


@dataclass(frozen=True)
class MembershipSpec:
    workspace: str  # a workspace name, an id (wrkspc_...), or "default"
    role: str = "workspace_user"


@dataclass(frozen=True)
class ServiceAccountSpec:
    name: str
    description: str | None = None
    workspaces: tuple[MembershipSpec, ...] = ()
    line: int | None = None


@dataclass(frozen=True)
class RuleSpec:
    name: str
    issuer: str
    service_account: str
    match: Mapping[str, Any]  # the SDK's match param, unset fields left out
    oauth_scope: str = SCOPE_INFERENCE
    workspaces: tuple[str, ...] = ()
    applies_to_all_workspaces: bool = False
    token_lifetime_seconds: int = DEFAULT_TOKEN_LIFETIME_S
    description: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class FederationSpec:
    """The federation tables of one config file, checked."""

    issuers: tuple[IssuerSpec, ...] = ()
    service_accounts: tuple[ServiceAccountSpec, ...] = ()
    rules: tuple[RuleSpec, ...] = ()
    path: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.issuers or self.service_accounts or self.rules)

    def issuer(self, name: str) -> IssuerSpec | None:
        return next((i for i in self.issuers if i.name == name), None)


@dataclass
class _Reader:
    """Collects problems, each with the line of the table (or key) it is about."""

    path: Path | None
    text: str
    in_pyproject: bool
    problems: list[ConfigError] = field(default_factory=list)
    _headers: dict[str, list[int]] = field(default_factory=dict)

    def table_line(self, kind: str, index: int) -> int | None:
        if kind not in self._headers:
            parts = ["federation", kind]
            if self.in_pyproject:
                parts = ["tool", "claudesec", *parts]
            pattern = re.compile(
                r"^\s*\[\[\s*" + r"\s*\.\s*".join(map(re.escape, parts)) + r"\s*\]\]"
            )
            self._headers[kind] = [
                n for n, line in enumerate(self.text.splitlines(), 1) if pattern.match(line)
            ]
        lines = self._headers[kind]
        return lines[index] if index < len(lines) else None

    def key_line(self, kind: str, index: int, key: str) -> int | None:
        start = self.table_line(kind, index)
        if start is None:
            return None
        lines = self.text.splitlines()
        for number in range(start + 1, len(lines) + 1):
            stripped = lines[number - 1].strip()
            if stripped.startswith("["):
                break
            if re.match(rf"^{re.escape(key)}\s*=", stripped):
                return number
        return start

    def problem(self, kind: str, index: int, key: str | None, message: str, hint: str) -> None:
        line = self.key_line(kind, index, key) if key else self.table_line(kind, index)
        self.problems.append(
            ConfigError(
                f"federation.{kind}[{index}]: {message}",
                path=str(self.path) if self.path else None,
                line=line,
                hint=hint,
            )
        )


def load_spec(loaded: LoadedConfig) -> tuple[FederationSpec, tuple[ConfigError, ...]]:
    """The federation spec of ``loaded`` and every problem in it (empty when valid)."""
    path = loaded.path
    text = ""
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = ""
    reader = _Reader(path, text, path is not None and path.name == "pyproject.toml")
    base = path.parent if path is not None else Path.cwd()
    config = loaded.config.federation
    issuers = [_issuer(reader, i, dict(table), base) for i, table in enumerate(config.issuers)]
    live_issuers = {i.name: i for i in issuers if i is not None}
    accounts = [_account(reader, i, dict(table)) for i, table in enumerate(config.service_accounts)]
    live_accounts = {a.name: a for a in accounts if a is not None}
    _unique(reader, "issuers", _raw_names(config.issuers))
    _unique(reader, "service_accounts", _raw_names(config.service_accounts))
    rules: list[RuleSpec | None] = []
    folded: dict[str, dict[str, tuple[Any, int]]] = {}
    for index, table in enumerate(config.rules):
        rules.append(_rule(reader, index, dict(table), live_issuers, live_accounts, folded))
    _unique(reader, "rules", _raw_names(config.rules))
    final_issuers = []
    for index, issuer in enumerate(issuers):
        if issuer is None:
            continue
        settings = {name: value for name, (value, _) in folded.get(issuer.name, {}).items()}
        table = config.issuers[index]
        for key, (value, rule_index) in folded.get(issuer.name, {}).items():
            if key in table and table[key] != value:
                reader.problem(
                    "rules",
                    rule_index,
                    key,
                    f"{key} = {value!r} contradicts issuer {issuer.name!r}'s own {table[key]!r}",
                    "it is an issuer setting: set it once on the [[federation.issuers]] table",
                )
        final_issuers.append(_with_rule_settings(issuer, settings))
    spec = FederationSpec(
        issuers=tuple(final_issuers),
        service_accounts=tuple(a for a in accounts if a is not None),
        rules=tuple(r for r in rules if r is not None),
        path=str(path) if path else None,
    )
    return spec, tuple(reader.problems)


def _raw_names(tables: tuple[dict[str, Any], ...]) -> list[str | None]:
    # Names are unique even among tables with other problems: report both at once.
    return [t.get("name") if isinstance(t.get("name"), str) else None for t in tables]


def _with_rule_settings(issuer: IssuerSpec, settings: Mapping[str, Any]) -> IssuerSpec:
    from dataclasses import replace

    return replace(issuer, **settings) if settings else issuer


def _unique(reader: _Reader, kind: str, names: list[str | None]) -> None:
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if name is None:
            continue
        if name in seen:
            reader.problem(
                kind,
                index,
                "name",
                f"name {name!r} is used twice (also federation.{kind}[{seen[name]}])",
                "names are unique per kind in the organisation; rename one",
            )
        seen.setdefault(name, index)


def _unknown_keys(
    reader: _Reader, kind: str, index: int, table: Mapping[str, Any], known: frozenset[str]
) -> None:
    import difflib

    for key in table:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            reader.problem(
                kind,
                index,
                key,
                f"unknown key {key!r}",
                f"did you mean {close[0]!r}?"
                if close
                else f"known keys: {', '.join(sorted(known))}",
            )


def _name(reader: _Reader, kind: str, index: int, table: Mapping[str, Any]) -> str | None:
    name = table.get("name")
    if not isinstance(name, str) or not SLUG.fullmatch(name):
        reader.problem(
            kind,
            index,
            "name" if "name" in table else None,
            f"name must be a slug (a-z, 0-9, '-', at most 64), got {name!r}",
            'set name = "deploy-bot" style names',
        )
        return None
    return name


def _int_in(
    reader: _Reader,
    kind: str,
    index: int,
    table: Mapping[str, Any],
    key: str,
    bounds: tuple[int, int],
) -> int | None:
    value = table.get(key)
    if value is None:
        return None
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        reader.problem(
            kind,
            index,
            key,
            f"{key} must be an integer from {low} to {high}, got {value!r}",
            "fix it",
        )
        return None
    return value


def _bool(
    reader: _Reader, kind: str, index: int, table: Mapping[str, Any], key: str
) -> bool | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        reader.problem(kind, index, key, f"{key} must be true or false, got {value!r}", "fix it")
        return None
    return value


# ------------------------------------------------------------------------------ issuers


def _issuer(reader: _Reader, index: int, table: dict[str, Any], base: Path) -> IssuerSpec | None:
    kind = "issuers"
    _unknown_keys(reader, kind, index, table, _ISSUER_KEYS)
    name = _name(reader, kind, index, table)
    preset_name = table.get("preset", "generic")
    preset = PRESETS.get(preset_name) if isinstance(preset_name, str) else None
    if preset is None:
        reader.problem(
            kind,
            index,
            "preset",
            f"unknown preset {preset_name!r}",
            f"presets: {', '.join(PRESETS)}",
        )
        return None
    url = table.get("issuer_url", preset.issuer_url)
    if not isinstance(url, str) or not url:
        reader.problem(
            kind,
            index,
            "issuer_url" if "issuer_url" in table else None,
            f"issuer_url is required for the {preset.name} preset",
            "set it to the exact 'iss' claim of the workload's tokens",
        )
        return None
    ca_pem = _ca_pem(reader, index, table, base)
    jwks = _jwks(reader, index, table.get("jwks", "discovery"), base, ca_pem)
    check_jti = _bool(reader, kind, index, table, "check_jti")
    lifetime = _int_in(
        reader, kind, index, table, "max_jwt_lifetime_seconds", MAX_JWT_LIFETIME_RANGE
    )
    if name is None or jwks is None:
        return None
    return IssuerSpec(
        name=name,
        preset=preset.name,
        issuer_url=url,
        jwks=jwks,
        check_jti=True if check_jti is None else check_jti,
        max_jwt_lifetime_seconds=lifetime or DEFAULT_MAX_JWT_LIFETIME_S,
        line=reader.table_line(kind, index),
    )


def _read_file(reader: _Reader, index: int, key: str, value: Any, base: Path) -> str | None:
    if not isinstance(value, str) or not value:
        reader.problem("issuers", index, key, f"{key} must be a file path", "fix it")
        return None
    target = Path(value).expanduser()
    if not target.is_absolute():
        target = base / target
    try:
        return target.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reader.problem(
            "issuers",
            index,
            key,
            f"cannot read {key} {value!r}: {getattr(exc, 'strerror', None) or exc}",
            "paths are relative to the config file",
        )
        return None


def _ca_pem(reader: _Reader, index: int, table: Mapping[str, Any], base: Path) -> str | None:
    if "ca_cert_file" not in table:
        return None
    text = _read_file(reader, index, "ca_cert_file", table["ca_cert_file"], base)
    if text is not None and "BEGIN CERTIFICATE" not in text:
        reader.problem(
            "issuers", index, "ca_cert_file", "ca_cert_file holds no PEM certificate", "fix it"
        )
        return None
    return text


def _jwks(
    reader: _Reader, index: int, value: Any, base: Path, ca_pem: str | None
) -> dict[str, Any] | None:
    hint = 'use "discovery", { url = "https://..." } or { inline_file = "jwks.json" }'
    if value == "discovery":
        jwks: dict[str, Any] = {"type": "discovery"}
        if ca_pem:
            jwks["ca_cert_pem"] = ca_pem
        return jwks
    if isinstance(value, dict) and set(value) == {"url"} and isinstance(value["url"], str):
        jwks = {"type": "explicit_url", "url": value["url"]}
        if ca_pem:
            jwks["ca_cert_pem"] = ca_pem
        return jwks
    if isinstance(value, dict) and set(value) == {"inline_file"}:
        text = _read_file(reader, index, "jwks", value["inline_file"], base)
        if text is None:
            return None
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        keys = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(keys, list) or not keys or not all(isinstance(k, dict) for k in keys):
            reader.problem(
                "issuers", index, "jwks", "the inline JWKS file needs a non-empty 'keys' list", hint
            )
            return None
        return {"type": "inline", "keys": keys}
    reader.problem(
        "issuers", index, "jwks", f"jwks must be one of three forms, got {value!r}", hint
    )
    return None


# ------------------------------------------------------------------------------ service accounts


def _account(reader: _Reader, index: int, table: dict[str, Any]) -> ServiceAccountSpec | None:
    kind = "service_accounts"
    _unknown_keys(reader, kind, index, table, _ACCOUNT_KEYS)
    name = _name(reader, kind, index, table)
    description = table.get("description")
    if description is not None and not isinstance(description, str):
        reader.problem(kind, index, "description", "description must be a string", "fix it")
        description = None
    memberships: list[MembershipSpec] = []
    raw = table.get("workspaces", [])
    items = raw if isinstance(raw, (list, tuple)) else [raw]
    for item in items:
        spec = _membership(reader, index, item)
        if spec is not None:
            memberships.append(spec)
    if len({m.workspace for m in memberships}) != len(memberships):
        reader.problem(kind, index, "workspaces", "a workspace is listed twice", "list it once")
    if name is None:
        return None
    return ServiceAccountSpec(
        name=name,
        description=description,
        workspaces=tuple(memberships),
        line=reader.table_line(kind, index),
    )


def _membership(reader: _Reader, index: int, item: Any) -> MembershipSpec | None:
    hint = 'workspaces = [{ workspace = "prod", role = "workspace_user" }]'
    if not isinstance(item, dict) or not isinstance(item.get("workspace"), str):
        reader.problem(
            "service_accounts", index, "workspaces", f"bad workspace entry {item!r}", hint
        )
        return None
    unknown = set(item) - {"workspace", "role"}
    role = item.get("role", "workspace_user")
    if unknown or role not in WORKSPACE_ROLES:
        reader.problem(
            "service_accounts",
            index,
            "workspaces",
            f"bad workspace entry {item!r}",
            f"role is one of {', '.join(WORKSPACE_ROLES)} (service accounts cannot hold "
            "workspace_billing)",
        )
        return None
    return MembershipSpec(item["workspace"], role)


# ------------------------------------------------------------------------------ rules


def _rule(
    reader: _Reader,
    index: int,
    table: dict[str, Any],
    issuers: Mapping[str, IssuerSpec],
    accounts: Mapping[str, ServiceAccountSpec],
    folded: dict[str, dict[str, tuple[Any, int]]],
) -> RuleSpec | None:
    kind = "rules"
    name = _name(reader, kind, index, table)
    issuer_name = table.get("issuer")
    issuer = issuers.get(issuer_name) if isinstance(issuer_name, str) else None
    preset = PRESETS[issuer.preset] if issuer is not None else None
    # With its issuer unknown, any preset's sugar may be meant: only that error is reported.
    sugar = preset.sugar if preset else {k for p in PRESETS.values() for k in p.sugar}
    _unknown_keys(reader, kind, index, table, _RULE_KEYS | frozenset(sugar))
    ok = name is not None
    if issuer is None:
        reader.problem(
            kind,
            index,
            "issuer" if "issuer" in table else None,
            f"issuer {issuer_name!r} is not a [[federation.issuers]] name",
            f"issuers: {', '.join(issuers) or 'none defined'}",
        )
        ok = False
    account_name = table.get("service_account")
    account = accounts.get(account_name) if isinstance(account_name, str) else None
    if account is None:
        reader.problem(
            kind,
            index,
            "service_account" if "service_account" in table else None,
            f"service_account {account_name!r} is not a [[federation.service_accounts]] name",
            f"service accounts: {', '.join(accounts) or 'none defined'}",
        )
        ok = False
    match = _match(reader, index, table, preset) if preset is not None else None
    workspaces, applies_all = _rule_workspaces(reader, index, table)
    scope = _scope(reader, index, table)
    lifetime = _int_in(reader, kind, index, table, "token_lifetime_seconds", TOKEN_LIFETIME_RANGE)
    description = table.get("description")
    if description is not None and not isinstance(description, str):
        reader.problem(kind, index, "description", "description must be a string", "fix it")
    if issuer is not None:
        _fold_issuer_settings(reader, index, table, issuer.name, folded)
    if account is not None and workspaces is not None:
        members = {m.workspace for m in account.workspaces} | {DEFAULT_WORKSPACE}
        for workspace in workspaces:
            if workspace not in members:
                reader.problem(
                    kind,
                    index,
                    "workspace" if "workspace" in table else "workspaces",
                    f"mints into workspace {workspace!r}, where service account "
                    f"{account.name!r} is not a member (the exchange would be refused)",
                    f"add {{ workspace = {workspace!r} }} to that service account's workspaces",
                )
    if not ok or match is None or workspaces is None or scope is None or issuer is None:
        return None
    assert name is not None and account is not None
    return RuleSpec(
        name=name,
        issuer=issuer.name,
        service_account=account.name,
        match=match,
        oauth_scope=scope,
        workspaces=workspaces,
        applies_to_all_workspaces=applies_all,
        token_lifetime_seconds=lifetime or DEFAULT_TOKEN_LIFETIME_S,
        description=description if isinstance(description, str) else None,
        line=reader.table_line(kind, index),
    )


def _match(
    reader: _Reader, index: int, table: Mapping[str, Any], preset: Preset
) -> dict[str, Any] | None:
    kind = "rules"
    sugar: dict[str, str] = {}
    for key in preset.sugar:
        if key not in table:
            continue
        value = table[key]
        if isinstance(value, bool):
            value = "true" if value else "false"  # GitLab's ref_protected is the string "true"
        if not isinstance(value, str) or not value:
            reader.problem(kind, index, key, f"{key} must be a non-empty string", "fix it")
            return None
        sugar[key] = value
    raw = {key: table[key] for key in RAW_MATCH_KEYS if key in table}
    for key in ("subject_prefix", "condition", "audience"):
        if key in raw and (not isinstance(raw[key], str) or not raw[key]):
            reader.problem(kind, index, key, f"{key} must be a non-empty string", "fix it")
            return None
    claims = raw.get("claims")
    if claims is not None and (
        not isinstance(claims, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in claims.items())
    ):
        reader.problem(
            kind,
            index,
            "claims",
            "claims must be a table of strings (exact match on string claims)",
            "use condition for a non-string claim",
        )
        return None
    if sugar:
        missing = [key for key in preset.required if key not in sugar]
        if missing:
            reader.problem(
                kind,
                index,
                None,
                f"the {preset.name} preset needs {' and '.join(missing)}",
                "set them, or write the match with subject_prefix/claims/condition",
            )
            return None
        if "subject_prefix" in raw:
            reader.problem(
                kind,
                index,
                "subject_prefix",
                f"subject_prefix and the {preset.name} sugar ({', '.join(sugar)}) both set the "
                "subject",
                "keep one",
            )
            return None
    elif preset.required and not (set(raw) - {"audience"}):
        reader.problem(
            kind,
            index,
            None,
            f"a {preset.name} rule needs {' and '.join(preset.required)} (or a raw "
            "subject_prefix, claims or condition)",
            'e.g. repository = "acme/api"',
        )
        return None
    match: dict[str, Any] = {}
    subject = subject_for(preset, sugar) if sugar else None
    if subject is not None:
        match["subject_prefix"] = subject
    elif "subject_prefix" in raw:
        match["subject_prefix"] = raw["subject_prefix"]
    merged = claims_for(preset, sugar) if sugar else {}
    for claim, value in (claims or {}).items():
        if claim in merged and merged[claim] != value:
            reader.problem(
                kind,
                index,
                "claims",
                f"claims.{claim} = {value!r} contradicts the sugar's {merged[claim]!r}",
                "keep one",
            )
            return None
        merged[claim] = value
    if merged:
        match["claims"] = merged
    for key in ("condition", "audience"):
        if key in raw:
            match[key] = raw[key]
    if "condition" in match and not _condition_compiles(reader, index, match["condition"]):
        return None
    if not (
        match.get("subject_prefix", "").strip("*") or match.get("claims") or match.get("condition")
    ):
        reader.problem(
            kind,
            index,
            None,
            "the rule matches on audience alone (or a bare wildcard subject)",
            "pin a subject, claims or a condition; the API refuses audience-only rules",
        )
        return None
    return match


def _condition_compiles(reader: _Reader, index: int, expression: str) -> bool:
    import cel

    try:
        program = cel.compile(expression)
    except (ValueError, RuntimeError) as exc:
        reader.problem(
            "rules", index, "condition", f"invalid CEL: {str(exc).splitlines()[0]}", "fix it"
        )
        return False
    extra = set(program.variables()) - {"claims"}
    if extra:
        reader.problem(
            "rules",
            index,
            "condition",
            f"the condition may reference only `claims`, not {', '.join(sorted(extra))}",
            "fix it",
        )
        return False
    return True


def _rule_workspaces(
    reader: _Reader, index: int, table: Mapping[str, Any]
) -> tuple[tuple[str, ...] | None, bool]:
    kind = "rules"
    applies_all = _bool(reader, kind, index, table, "applies_to_all_workspaces") or False
    if "workspace" in table and "workspaces" in table:
        reader.problem(kind, index, "workspaces", "set workspace or workspaces, not both", "fix it")
        return None, applies_all
    raw = table.get("workspaces", [table["workspace"]] if "workspace" in table else [])
    if not isinstance(raw, (list, tuple)) or not all(isinstance(w, str) and w for w in raw):
        reader.problem(
            kind,
            index,
            "workspaces" if "workspaces" in table else "workspace",
            "workspaces must be workspace names (or ids)",
            'workspace = "prod" or workspaces = ["a", "b"]',
        )
        return None, applies_all
    if not raw and not applies_all:
        reader.problem(
            kind,
            index,
            None,
            "the rule names no workspace",
            'set workspace = "NAME" ("default" for the default workspace)',
        )
        return None, applies_all
    return tuple(dict.fromkeys(raw)), applies_all


def _scope(reader: _Reader, index: int, table: Mapping[str, Any]) -> str | None:
    raw = table.get("scopes", [SCOPE_INFERENCE])
    scopes = raw.split() if isinstance(raw, str) else raw
    if (
        not isinstance(scopes, (list, tuple))
        or not scopes
        or not all(isinstance(s, str) for s in scopes)
    ):
        reader.problem("rules", index, "scopes", "scopes must be a list of scopes", "fix it")
        return None
    if SCOPE_ORG_ADMIN in scopes:
        reader.problem(
            "rules",
            index,
            "scopes",
            "org:admin rules are managed in the Console, not through the API",
            "use workspace:inference (or workspace:developer)",
        )
        return None
    unknown = set(scopes) - {SCOPE_INFERENCE, SCOPE_DEVELOPER}
    if unknown:
        reader.problem(
            "rules",
            index,
            "scopes",
            f"unknown scope {sorted(unknown)[0]!r}",
            "use workspace:inference or workspace:developer",
        )
        return None
    return " ".join(dict.fromkeys(scopes))


def _fold_issuer_settings(
    reader: _Reader,
    index: int,
    table: Mapping[str, Any],
    issuer: str,
    folded: dict[str, dict[str, tuple[Any, int]]],
) -> None:
    checks: dict[str, Callable[[], Any]] = {
        "check_jti": lambda: _bool(reader, "rules", index, table, "check_jti"),
        "max_jwt_lifetime_seconds": lambda: _int_in(
            reader, "rules", index, table, "max_jwt_lifetime_seconds", MAX_JWT_LIFETIME_RANGE
        ),
    }
    for key, read in checks.items():
        if key not in table:
            continue
        value = read()
        if value is None:
            continue
        earlier = folded.setdefault(issuer, {}).get(key)
        if earlier is not None and earlier[0] != value:
            reader.problem(
                "rules",
                index,
                key,
                f"{key} = {value!r} is an issuer setting, and federation.rules[{earlier[1]}] "
                f"asks {earlier[0]!r} of the same issuer {issuer!r}",
                "set it once on the [[federation.issuers]] table",
            )
            continue
        folded[issuer][key] = (value, index)
