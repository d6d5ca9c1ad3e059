"""Federation lint: the checks of :mod:`.lint_catalogue`, over the Admin API's JSON shapes.

:func:`lint_rules` takes issuers, rules and service accounts as the SDK's
``model_dump(mode="json")`` gives them (so ``org check`` and the live ``federation lint`` judge
what the platform said, Console-made rules included); :func:`lint_spec` renders the config's
specs into the same shapes and reports the config file's lines. Checks read structure only:
a CEL ``condition`` counts as pinning a claim when it mentions ``claims.NAME`` (a reviewer still
reads it), which keeps the lint from shouting about conditions it cannot evaluate.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from claudesec.federation.lint_catalogue import (
    BY_ID,
    MAX_JWT_LIFETIME_THRESHOLD_S,
    SEVERITY_ORDER,
    TOKEN_LIFETIME_THRESHOLD_S,
    Severity,
)
from claudesec.federation.presets import PRESETS, preset_for_issuer

if TYPE_CHECKING:
    from claudesec.federation.spec import FederationSpec

ObjectKind = Literal["rule", "issuer", "service_account"]
Json = Mapping[str, Any]


@dataclass(frozen=True)
class LintFinding:
    """One misconfiguration of one object."""

    rule_id: str
    severity: Severity
    title: str
    object_kind: ObjectKind
    object_name: str
    message: str
    fix: str
    object_id: str | None = None
    source: Literal["config", "organization"] = "organization"
    path: str | None = None
    line: int | None = None

    def at_least(self, threshold: str) -> bool:
        return SEVERITY_ORDER[self.severity] >= SEVERITY_ORDER[threshold]


def _finding(rule_id: str, kind: ObjectKind, obj: Json, message: str) -> LintFinding:
    entry = BY_ID[rule_id]
    return LintFinding(
        rule_id=rule_id,
        severity=entry.severity,
        title=entry.title,
        object_kind=kind,
        object_name=str(obj.get("name") or obj.get("id") or "?"),
        object_id=str(obj["id"]) if obj.get("id") else None,
        message=message,
        fix=entry.fix,
    )


# ------------------------------------------------------------------------------ rule shape


@dataclass(frozen=True)
class _Shape:
    """What a rule's match pins, read from subject, claims and condition."""

    flavour: str | None  # github-actions | gitlab-ci | kubernetes | None
    subject: str | None
    claims: Mapping[str, str]
    condition: str

    def mentions(self, claim: str) -> bool:
        return claim in self.claims or bool(
            re.search(
                rf"claims\s*(\.\s*{re.escape(claim)}\b|\[\s*['\"]{re.escape(claim)}['\"])",
                self.condition,
            )
        )

    def pins_any(self, claims: Iterable[str]) -> bool:
        return any(self.mentions(c) for c in claims)


def _shape(rule: Json, issuer: Json | None) -> _Shape:
    match = rule.get("match") or {}
    subject = match.get("subject_prefix") or None
    claims = match.get("claims") or {}
    condition = match.get("condition") or ""
    flavour = None
    if issuer is not None:
        named = issuer.get("_preset")
        preset = PRESETS.get(named) if isinstance(named, str) else None
        preset = preset or preset_for_issuer(str(issuer.get("issuer_url", "")))
        if preset is not None and preset.name != "generic":
            flavour = preset.name
    if flavour is None:  # an issuer we do not know: read the token shape the rule expects
        if (subject or "").startswith("repo:") or "repository" in claims:
            flavour = "github-actions"
        elif (subject or "").startswith("project_path:") or "project_path" in claims:
            flavour = "gitlab-ci"
        elif (subject or "").startswith("system:serviceaccount:"):
            flavour = "kubernetes"
    return _Shape(flavour, subject, claims, condition)


_GITHUB_REPO = re.compile(r"^repo:[^/:*]+/[^/:*]+:")
_GITLAB_PROJECT = re.compile(r"^project_path:[^:*]+[^/:*]:")


def _subject_base(subject: str) -> tuple[str, bool]:
    return (subject[:-1], True) if subject.endswith("*") else (subject, False)


def _tenant_wide(shape: _Shape) -> str | None:
    """Why the rule spans several repositories/projects/workloads, or None."""
    if shape.flavour == "github-actions":
        pinned = shape.pins_any(("repository", "repository_id"))
        if shape.subject is not None:
            base, _ = _subject_base(shape.subject)
            if _GITHUB_REPO.match(base) or pinned:
                return None
            return f"subject_prefix {shape.subject!r} matches every repository it starts"
        return None if pinned else "no subject and no repository claim pins the repository"
    if shape.flavour == "gitlab-ci":
        pinned = shape.pins_any(("project_path", "project_id"))
        if shape.subject is not None:
            base, _ = _subject_base(shape.subject)
            if _GITLAB_PROJECT.match(base) or pinned:
                return None
            return f"subject_prefix {shape.subject!r} matches every project it starts"
        return None if pinned else "no subject and no project_path claim pins the project"
    if shape.flavour == "kubernetes" and shape.subject is not None:
        base, wildcard = _subject_base(shape.subject)
        exact = re.fullmatch(r"system:serviceaccount:[^:*]+:[^:*]+", base)
        if wildcard and not shape.condition:
            return f"subject_prefix {shape.subject!r} matches every service account it starts"
        if not exact and not wildcard:
            return None
    return None


def _ref_pinned(shape: _Shape) -> bool:
    preset = PRESETS[shape.flavour or "generic"]
    if shape.pins_any(preset.ref_claims):
        return True
    subject = shape.subject or ""
    if subject.endswith("*"):
        return False
    return ":ref:" in subject


def _environment_pinned(shape: _Shape) -> bool:
    preset = PRESETS[shape.flavour or "generic"]
    if shape.pins_any(preset.environment_claims):
        return True
    subject = shape.subject or ""
    if shape.flavour == "gitlab-ci" and shape.claims.get("ref_protected") == "true":
        return True
    return ":environment:" in subject and not subject.endswith("*")


def _pull_request(shape: _Shape) -> str | None:
    subject = shape.subject or ""
    if shape.flavour == "github-actions" and (
        ":pull_request" in subject
        or shape.claims.get("event_name") in ("pull_request", "pull_request_target")
    ):
        return "accepts tokens of pull_request jobs"
    if "pull_request" in shape.condition:
        return "the condition admits pull_request events"
    if shape.claims.get("pipeline_source") == "merge_request_event" or (
        "merge_request_event" in shape.condition
    ):
        return "accepts tokens of merge-request pipelines"
    return None


def _rule_checks(rule: Json, issuer: Json | None) -> list[LintFinding]:
    found: list[LintFinding] = []
    shape = _shape(rule, issuer)
    match = rule.get("match") or {}
    subject = shape.subject or ""
    if not (subject.strip("*") or shape.claims or shape.condition):
        found.append(
            _finding(
                "FED004",
                "rule",
                rule,
                "the match has no subject, claims or condition"
                + (f" (audience {match.get('audience')!r} only)" if match.get("audience") else ""),
            )
        )
        return found  # every other shape check presumes something is matched
    wide = _tenant_wide(shape)
    if wide:
        found.append(_finding("FED001", "rule", rule, wide))
    pr = _pull_request(shape)
    if pr:
        found.append(_finding("FED003", "rule", rule, pr))
    if shape.flavour in ("github-actions", "gitlab-ci") and not wide and not pr:
        ref, environment = _ref_pinned(shape), _environment_pinned(shape)
        if not ref and not environment:
            found.append(
                _finding(
                    "FED002",
                    "rule",
                    rule,
                    f"nothing pins a ref or environment (subject {shape.subject!r})",
                )
            )
        elif ref and not environment:
            found.append(_finding("FED005", "rule", rule, "pinned to a ref, not an environment"))
    lifetime = rule.get("token_lifetime_seconds")
    if isinstance(lifetime, int) and lifetime > TOKEN_LIFETIME_THRESHOLD_S:
        found.append(
            _finding(
                "FED008",
                "rule",
                rule,
                f"token_lifetime_seconds is {lifetime} (threshold {TOKEN_LIFETIME_THRESHOLD_S})",
            )
        )
    if rule.get("applies_to_all_workspaces"):
        found.append(_finding("FED009", "rule", rule, "applies_to_all_workspaces is true"))
    scopes = str(rule.get("oauth_scope") or "").split()
    if "org:admin" in scopes:
        found.append(_finding("FED011", "rule", rule, "oauth_scope includes org:admin"))
    broader = [s for s in scopes if s not in ("workspace:inference", "org:admin")]
    if broader:
        found.append(_finding("FED010", "rule", rule, f"oauth_scope includes {', '.join(broader)}"))
    return found


# ------------------------------------------------------------------------------ issuers


def _issuer_checks(issuer: Json) -> list[LintFinding]:
    found: list[LintFinding] = []
    jwks = issuer.get("jwks") or {}
    cleartext = [
        str(url)
        for url in (issuer.get("issuer_url"), jwks.get("url"), jwks.get("discovery_base"))
        if isinstance(url, str) and url.lower().startswith("http://")
    ]
    if cleartext:
        found.append(_finding("FED012", "issuer", issuer, f"{cleartext[0]} is plain HTTP"))
    if jwks.get("type") == "inline":
        found.append(
            _finding("FED013", "issuer", issuer, f"{len(jwks.get('keys') or [])} inline key(s)")
        )
    if issuer.get("check_jti") is False:
        found.append(_finding("FED006", "issuer", issuer, "check_jti is false"))
    lifetime = issuer.get("max_jwt_lifetime_seconds")
    if isinstance(lifetime, int) and lifetime > MAX_JWT_LIFETIME_THRESHOLD_S:
        found.append(
            _finding(
                "FED007",
                "issuer",
                issuer,
                f"max_jwt_lifetime_seconds is {lifetime} "
                f"(threshold {MAX_JWT_LIFETIME_THRESHOLD_S})",
            )
        )
    return found


# ------------------------------------------------------------------------------ service accounts

_ROLE_RANK = {
    "workspace_user": 0,
    "workspace_restricted_developer": 1,
    "workspace_developer": 2,
    "workspace_admin": 3,
}


def _rule_workspaces(rule: Json) -> set[str]:
    workspaces = {str(w) for w in rule.get("workspace_ids") or []}
    if rule.get("workspace_id"):
        workspaces.add(str(rule["workspace_id"]))
    return workspaces


def _account_checks(
    account: Json, rules: Sequence[Json], members: Sequence[Json]
) -> list[LintFinding]:
    found: list[LintFinding] = []
    if any(r.get("applies_to_all_workspaces") for r in rules):
        return found  # FED009 reports those rules; every membership is then "used"
    needed: dict[str, bool] = {}  # workspace -> whether some rule there needs more than inference
    for rule in rules:
        developer = "workspace:developer" in str(rule.get("oauth_scope") or "").split()
        for workspace in _rule_workspaces(rule):
            needed[workspace] = needed.get(workspace, False) or developer
    for member in members:
        if member.get("implicit"):
            continue
        workspace = str(member.get("workspace_id"))
        role = str(member.get("workspace_role") or "")
        label = str(member.get("_workspace_name") or workspace)
        if workspace not in needed:
            found.append(
                _finding(
                    "FED014",
                    "service_account",
                    account,
                    f"member of {label} ({role}) but no live rule mints there",
                )
            )
        elif _ROLE_RANK.get(role, 0) > 0 and not needed[workspace]:
            found.append(
                _finding(
                    "FED014",
                    "service_account",
                    account,
                    f"{role} in {label} while its rules there grant only workspace:inference",
                )
            )
    return found


# ------------------------------------------------------------------------------ entry points


def lint_rules(
    issuers: Sequence[Json],
    rules: Sequence[Json],
    service_accounts: Sequence[Json],
    *,
    memberships: Mapping[str, Sequence[Json]] | None = None,
) -> list[LintFinding]:
    """Every finding over the organisation's federation objects (Admin API JSON shapes).

    ``memberships`` (service account id -> its workspace memberships) enables FED014; without
    it that check is skipped. Archived rules are not judged; archived issuers and service
    accounts only as targets of live rules (FED015).
    """
    by_issuer = {str(i.get("id")): i for i in issuers}
    by_account = {str(a.get("id")): a for a in service_accounts}
    live_rules = [r for r in rules if not r.get("archived_at")]
    found: list[LintFinding] = []
    for issuer in issuers:
        if not issuer.get("archived_at"):
            found.extend(_issuer_checks(issuer))
    for rule in live_rules:
        rule_issuer = by_issuer.get(str(rule.get("issuer_id")))
        target = rule.get("target") or {}
        account = by_account.get(str(target.get("service_account_id")))
        dead = []
        if rule_issuer is None or rule_issuer.get("archived_at"):
            dead.append(f"issuer {rule.get('issuer_name') or rule.get('issuer_id')}")
        if account is None or account.get("archived_at"):
            name = target.get("service_account_name") or target.get("service_account_id")
            dead.append(f"service account {name}")
        if dead:
            found.append(
                _finding("FED015", "rule", rule, " and ".join(dead) + " archived or missing")
            )
        found.extend(_rule_checks(rule, rule_issuer))
    if memberships is not None:
        for account in service_accounts:
            if account.get("archived_at"):
                continue
            account_id = str(account.get("id"))
            targeting = [
                r
                for r in live_rules
                if str((r.get("target") or {}).get("service_account_id")) == account_id
            ]
            found.extend(_account_checks(account, targeting, memberships.get(account_id, ())))
    return sorted(found, key=lambda f: (-SEVERITY_ORDER[f.severity], f.rule_id, f.object_name))


def lint_spec(spec: FederationSpec) -> list[LintFinding]:
    """Every finding over the config's federation tables, each with its file line."""
    from dataclasses import replace

    issuers = [
        {
            "id": f"config:issuer:{i.name}",
            "name": i.name,
            "issuer_url": i.issuer_url,
            "jwks": dict(i.jwks),
            "check_jti": i.check_jti,
            "max_jwt_lifetime_seconds": i.max_jwt_lifetime_seconds,
            "_preset": i.preset,
        }
        for i in spec.issuers
    ]
    accounts = [{"id": f"config:sa:{a.name}", "name": a.name} for a in spec.service_accounts]
    memberships = {
        f"config:sa:{a.name}": [
            {"workspace_id": m.workspace, "workspace_role": m.role, "implicit": False}
            for m in a.workspaces
        ]
        for a in spec.service_accounts
    }
    rules = [
        {
            "id": f"config:rule:{r.name}",
            "name": r.name,
            "issuer_id": f"config:issuer:{r.issuer}",
            "match": dict(r.match),
            "oauth_scope": r.oauth_scope,
            "target": {
                "type": "service_account",
                "service_account_id": f"config:sa:{r.service_account}",
            },
            "token_lifetime_seconds": r.token_lifetime_seconds,
            "applies_to_all_workspaces": r.applies_to_all_workspaces,
            "workspace_ids": list(r.workspaces),
        }
        for r in spec.rules
    ]
    lines: dict[tuple[str, str], int | None] = {}
    lines.update({("issuer", i.name): i.line for i in spec.issuers})
    lines.update({("service_account", a.name): a.line for a in spec.service_accounts})
    lines.update({("rule", r.name): r.line for r in spec.rules})
    return [
        replace(
            finding,
            object_id=None,
            source="config",
            path=spec.path,
            line=lines.get((finding.object_kind, finding.object_name)),
        )
        for finding in lint_rules(issuers, rules, accounts, memberships=memberships)
    ]
