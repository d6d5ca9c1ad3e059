"""Federation issuers and rules, and how a verified token is matched against a rule.

The registry the federation endpoints and the ``jwt-bearer`` token exchange read and write,
built on the organisation's :class:`~claudesec.emulator.directory.Directory` (the service
accounts and workspaces rules point at). Validation follows anthropic 2.16's own docstrings
(``types/beta/organization/federation/``): slugs unique among live objects, a rule needs a
matcher other than ``audience`` alone, a constant-true CEL condition is refused, rules on
well-known shared issuers must pin the tenant, archiving an issuer or a service account still
referenced by a live rule is refused, archiving a rule clears its workspaces.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from claudesec.emulator.directory import (
    Directory,
    conflict,
    validate_slug,
)
from claudesec.emulator.keys import new_id
from claudesec.emulator.wire import ApiError, invalid_request, not_found

JwksMode = Literal["discovery", "explicit_url", "inline"]

SCOPE_INFERENCE = "workspace:inference"
SCOPE_DEVELOPER = "workspace:developer"
SCOPE_ORG_ADMIN = "org:admin"
KNOWN_SCOPES = frozenset({SCOPE_INFERENCE, SCOPE_DEVELOPER, SCOPE_ORG_ADMIN})
# What an OAuth caller may put on a rule; anything else needs a Console session.
OAUTH_MANAGEABLE_SCOPES = frozenset({SCOPE_INFERENCE, SCOPE_DEVELOPER})

MAX_JWT_LIFETIME_RANGE = (1, 176_400)
DEFAULT_MAX_JWT_LIFETIME_S = 3600
TOKEN_LIFETIME_RANGE = (60, 86_400)
DEFAULT_TOKEN_LIFETIME_S = 3600


# Well-known shared issuers: anyone can get a token from them, so a rule must pin the tenant
# (the SDK: "must constrain tenant identity via an identity-bearing claim, a tenant-pinning
# subject prefix, or a CEL condition referencing one of those identity claims").
SHARED_ISSUERS: dict[str, frozenset[str]] = {
    "https://token.actions.githubusercontent.com": frozenset(
        {"repository", "repository_id", "repository_owner", "repository_owner_id"}
    ),
    "https://gitlab.com": frozenset(
        {"project_path", "project_id", "namespace_path", "namespace_id"}
    ),
    "https://agent.buildkite.com": frozenset({"organization_slug", "organization_id"}),
    "https://app.terraform.io": frozenset(
        {"terraform_organization_name", "terraform_organization_id"}
    ),
    "https://accounts.google.com": frozenset({"email", "azp", "hd"}),
}
# JWKS fetch failures in a row after which the poller pauses (jwks_polling_disabled_at).
JWKS_POLL_PAUSE_AFTER = 5
# Subject layouts of the shared issuers where the text up to the first "/" names the tenant.
_TENANT_SUBJECT = re.compile(r"^(repo|project_path|organization):[^*/:]+/")


def _bounded_int(value: Any, label: str, bounds: tuple[int, int]) -> int:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_request(f"{label}: Input should be a valid integer")
    if not low <= value <= high:
        raise invalid_request(f"{label}: Input should be between {low} and {high}")
    return value


@dataclass(frozen=True)
class JwksConfig:
    """How an issuer's keys are found: ``discovery``, ``explicit_url`` or ``inline``."""

    type: JwksMode
    url: str | None = None
    discovery_base: str | None = None
    ca_cert_pem: str | None = None
    keys: tuple[Mapping[str, Any], ...] = ()

    def to_json(self) -> dict[str, Any]:
        if self.type == "inline":
            return {"type": "inline", "keys": [dict(k) for k in self.keys]}
        if self.type == "explicit_url":
            return {"type": "explicit_url", "url": self.url, "ca_cert_pem": self.ca_cert_pem}
        return {
            "type": "discovery",
            "discovery_base": self.discovery_base,
            "ca_cert_pem": self.ca_cert_pem,
        }


@dataclass(frozen=True)
class PollStatus:
    consecutive_failures: int = 0
    last_fetched_at: datetime | None = None


@dataclass(frozen=True)
class Issuer:
    id: str
    name: str
    issuer_url: str
    jwks: JwksConfig
    check_jti: bool
    max_jwt_lifetime_seconds: int
    created_at: datetime
    updated_at: datetime
    created_by: str | None = None
    updated_by: str | None = None
    archived_at: datetime | None = None
    archived_by: str | None = None
    poll: PollStatus = field(default_factory=PollStatus)
    # Set when the poller gave up after JWKS_POLL_PAUSE_AFTER failures in a row; cleared by
    # an update sending `jwks_polling_disabled: false` (BetaFederationIssuer's field).
    jwks_polling_disabled_at: datetime | None = None


@dataclass(frozen=True)
class RuleMatch:
    subject_prefix: str | None = None
    claims: Mapping[str, str] | None = None
    condition: str | None = None
    audience: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "subject_prefix": self.subject_prefix,
            "claims": dict(self.claims) if self.claims is not None else None,
            "condition": self.condition,
            "audience": self.audience,
        }


@dataclass(frozen=True)
class RuleWorkspace:
    workspace_id: str
    created_at: datetime
    created_by: str | None = None


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    issuer_id: str
    match: RuleMatch
    oauth_scope: str
    service_account_id: str
    token_lifetime_seconds: int
    applies_to_all_workspaces: bool
    created_at: datetime
    updated_at: datetime
    description: str | None = None
    # The legacy single-workspace binding. The API's `workspace_id` parameters manage
    # enablements (`workspaces`); only rules seeded as legacy carry this.
    workspace_id: str | None = None
    workspaces: tuple[RuleWorkspace, ...] = ()
    created_by: str | None = None
    updated_by: str | None = None
    archived_at: datetime | None = None
    archived_by: str | None = None

    @property
    def workspace_ids(self) -> list[str]:
        return [w.workspace_id for w in self.workspaces]

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.oauth_scope.split())


# ------------------------------------------------------------------------------ CEL


def compile_condition(expression: str) -> Any:
    """Compile a rule's CEL ``condition``; 400 when it is not a usable match.

    CEL comes from ``common-expression-language`` (Python bindings of the Rust ``cel``
    crate): a maintained full implementation beats a hand-written subset. Like the API we
    accept only expressions over the ``claims`` variable and refuse a constant-true one.
    """
    import cel

    if not isinstance(expression, str) or not expression.strip():
        raise invalid_request("match.condition: must be a non-empty CEL expression")
    try:
        program = cel.compile(expression)
    except (ValueError, RuntimeError) as exc:
        raise invalid_request(f"match.condition: invalid CEL: {str(exc).splitlines()[0]}") from None
    variables = set(program.variables())
    if variables - {"claims"}:
        raise invalid_request(
            "match.condition: may reference only the `claims` variable, not "
            + ", ".join(sorted(variables - {"claims"}))
        )
    if not variables:
        try:
            constant = program.execute({})
        except Exception:
            constant = None
        if constant is True:
            raise invalid_request("match.condition: a constant-true condition matches any token")
    return program


def evaluate_condition(expression: str, claims: Mapping[str, Any]) -> bool:
    """True only when the condition evaluates to the boolean true; any error is no match."""
    try:
        result = compile_condition(expression).execute({"claims": dict(claims)})
    except Exception:
        return False
    return result is True


def subject_matches(pattern: str, subject: str) -> bool:
    """Exact match, or a prefix match when ``pattern`` ends with ``*``."""
    if pattern.endswith("*"):
        return subject.startswith(pattern[:-1])
    return subject == pattern


def _shared_identity(issuer_url: str) -> frozenset[str] | None:
    """The identity claims of a well-known shared issuer, or None for anyone else's."""
    return SHARED_ISSUERS.get(issuer_url.rstrip("/").lower())


def _pins_tenant(match: RuleMatch, identity_claims: frozenset[str]) -> bool:
    if match.claims and identity_claims & set(match.claims):
        return True
    if match.subject_prefix and _TENANT_SUBJECT.match(match.subject_prefix):
        return True
    if match.condition:
        return any(f"claims.{name}" in match.condition for name in identity_claims)
    return False


class FederationRegistry(Directory):
    """The directory plus federation issuers and rules, under the directory's one lock."""

    def __init__(self, *, default_workspace_id: str, clock: Callable[[], datetime]) -> None:
        self._issuers: dict[str, Issuer] = {}
        self._rules: dict[str, Rule] = {}
        super().__init__(default_workspace_id=default_workspace_id, clock=clock)

    def reset(self) -> None:
        with self._lock:
            super().reset()
            self._issuers = {}
            self._rules = {}

    def _rules_targeting(self, service_account_id: str) -> list[str]:
        return [
            r.id
            for r in self._rules.values()
            if r.archived_at is None and r.service_account_id == service_account_id
        ]

    # -------------------------------------------------------------------------- issuers

    def _name_free(self, table: Mapping[str, Any], name: str, own_id: str | None = None) -> None:
        # Names are unique among live objects: an archived issuer cannot come back, so its
        # name is free for the replacement the API tells you to create.
        for item in table.values():
            if item.name == name and item.archived_at is None and item.id != own_id:
                raise conflict(f"The name {name!r} is already taken")

    def create_issuer(
        self,
        *,
        name: Any,
        issuer_url: Any,
        jwks: JwksConfig,
        check_jti: bool = True,
        max_jwt_lifetime_seconds: int = DEFAULT_MAX_JWT_LIFETIME_S,
        actor: str | None = None,
    ) -> Issuer:
        validate_slug(name)
        _validate_issuer_url(issuer_url, jwks)
        _bounded_int(max_jwt_lifetime_seconds, "max_jwt_lifetime_seconds", MAX_JWT_LIFETIME_RANGE)
        with self._lock:
            self._name_free(self._issuers, name)
            now = self._clock()
            issuer = Issuer(
                id=new_id("fdis"),
                name=name,
                issuer_url=issuer_url,
                jwks=jwks,
                check_jti=check_jti,
                max_jwt_lifetime_seconds=max_jwt_lifetime_seconds,
                created_at=now,
                updated_at=now,
                created_by=actor,
                updated_by=actor,
            )
            self._issuers[issuer.id] = issuer
            self._stamp(issuer.id)
            return issuer

    def issuer(self, issuer_id: str) -> Issuer:
        with self._lock:
            found = self._issuers.get(issuer_id)
        if found is None:
            raise not_found(f"Federation issuer not found: {issuer_id}")
        return found

    def list_issuers(self, *, include_archived: bool = False) -> list[Issuer]:
        with self._lock:
            items = self._newest_first(self._issuers.values())
        return [i for i in items if include_archived or i.archived_at is None]

    def update_issuer(
        self, issuer_id: str, changes: Mapping[str, Any], *, actor: str | None
    ) -> Issuer:
        with self._lock:
            current = self.issuer(issuer_id)
            if current.archived_at is not None:
                raise invalid_request("Archived issuers cannot be updated; create a new issuer")
            name = changes.get("name", current.name)
            validate_slug(name)
            self._name_free(self._issuers, name, own_id=issuer_id)
            jwks = changes.get("jwks", current.jwks)
            issuer_url = changes.get("issuer_url", current.issuer_url)
            _validate_issuer_url(issuer_url, jwks)
            identity = _shared_identity(issuer_url)
            if issuer_url != current.issuer_url and identity is not None:
                for rule in self._rules_of(issuer_id):
                    if not _pins_tenant(rule.match, identity):
                        raise invalid_request(
                            f"Rule {rule.id} does not constrain tenant identity, which "
                            f"{issuer_url} requires"
                        )
            lifetime = changes.get("max_jwt_lifetime_seconds", current.max_jwt_lifetime_seconds)
            _bounded_int(lifetime, "max_jwt_lifetime_seconds", MAX_JWT_LIFETIME_RANGE)
            updated = replace(
                current,
                name=name,
                issuer_url=issuer_url,
                jwks=jwks,
                check_jti=changes.get("check_jti", current.check_jti),
                max_jwt_lifetime_seconds=lifetime,
                updated_at=self._clock(),
                updated_by=actor,
            )
            self._issuers[issuer_id] = updated
            return updated

    def archive_issuer(self, issuer_id: str, *, actor: str | None = None) -> Issuer:
        with self._lock:
            current = self.issuer(issuer_id)
            if current.archived_at is not None:
                return current
            live = [r.id for r in self._rules_of(issuer_id)]
            if live:
                raise invalid_request(
                    f"Issuer is referenced by live federation rules ({', '.join(live)}); "
                    "archive them first"
                )
            now = self._clock()
            archived = replace(current, archived_at=now, archived_by=actor, updated_at=now)
            self._issuers[issuer_id] = archived
            return archived

    def force_archive_issuer(self, issuer_id: str) -> Issuer:
        """Archive even with live rules, bypassing the API's guard: a test-setup tool for the
        state a race between two admins could leave behind."""
        with self._lock:
            current = self.issuer(issuer_id)
            archived = replace(current, archived_at=self._clock())
            self._issuers[issuer_id] = archived
            return archived

    def record_poll(self, issuer_id: str, *, ok: bool) -> None:
        """One JWKS fetch's outcome; the poller pauses after repeated failures (the platform
        says "repeated"; the emulator's number is :data:`JWKS_POLL_PAUSE_AFTER`). Pausing is
        reported only: the emulator's exchange keeps using the keys it can fetch."""
        with self._lock:
            current = self._issuers.get(issuer_id)
            if current is None:
                return
            poll = (
                PollStatus(0, self._clock())
                if ok
                else PollStatus(current.poll.consecutive_failures + 1, current.poll.last_fetched_at)
            )
            paused = current.jwks_polling_disabled_at
            if paused is None and poll.consecutive_failures >= JWKS_POLL_PAUSE_AFTER:
                paused = self._clock()
            self._issuers[issuer_id] = replace(current, poll=poll, jwks_polling_disabled_at=paused)

    def resume_polling(self, issuer_id: str) -> Issuer:
        """``jwks_polling_disabled: false`` on update: poll again from a clean count."""
        with self._lock:
            current = self.issuer(issuer_id)
            resumed = replace(
                current,
                jwks_polling_disabled_at=None,
                poll=PollStatus(0, current.poll.last_fetched_at),
            )
            self._issuers[issuer_id] = resumed
            return resumed

    def _rules_of(self, issuer_id: str) -> list[Rule]:
        return [
            r for r in self._rules.values() if r.issuer_id == issuer_id and r.archived_at is None
        ]

    # -------------------------------------------------------------------------- rules

    def create_rule(
        self,
        *,
        name: Any,
        issuer_id: Any,
        match: RuleMatch,
        oauth_scope: Any,
        service_account_id: Any,
        token_lifetime_seconds: int = DEFAULT_TOKEN_LIFETIME_S,
        applies_to_all_workspaces: bool = False,
        workspace_id: str | None = None,
        description: str | None = None,
        actor: str | None = None,
        console: bool = False,
        legacy_workspace_id: str | None = None,
    ) -> Rule:
        """Create a rule. ``console`` stands for a Console session, the only way to grant
        scopes beyond ``workspace:*``; ``legacy_workspace_id`` seeds an old-style rule bound
        by the legacy field alone (membership is then not enforced at exchange)."""
        validate_slug(name)
        _validate_scope(oauth_scope, console=console)
        _bounded_int(token_lifetime_seconds, "token_lifetime_seconds", TOKEN_LIFETIME_RANGE)
        if not applies_to_all_workspaces and not workspace_id and not legacy_workspace_id:
            raise invalid_request("workspace_id: required unless applies_to_all_workspaces is true")
        with self._lock:
            self._name_free(self._rules, name)
            issuer = self._live_issuer_ref(issuer_id)
            self._check_match(match, issuer)
            self._check_target(service_account_id, oauth_scope)
            now = self._clock()
            workspaces: tuple[RuleWorkspace, ...] = ()
            if legacy_workspace_id:
                self._live_workspace_ref(legacy_workspace_id)
            if workspace_id:
                self._live_workspace_ref(workspace_id)
                workspaces = (RuleWorkspace(workspace_id, now, actor),)
            rule = Rule(
                id=new_id("fdrl"),
                name=name,
                issuer_id=issuer.id,
                match=match,
                oauth_scope=oauth_scope,
                service_account_id=service_account_id,
                token_lifetime_seconds=token_lifetime_seconds,
                applies_to_all_workspaces=applies_to_all_workspaces,
                description=description,
                workspace_id=legacy_workspace_id,
                workspaces=workspaces,
                created_at=now,
                updated_at=now,
                created_by=actor,
                updated_by=actor,
            )
            self._rules[rule.id] = rule
            self._stamp(rule.id)
            return rule

    def rule(self, rule_id: str) -> Rule:
        with self._lock:
            found = self._rules.get(rule_id)
        if found is None:
            raise not_found(f"Federation rule not found: {rule_id}")
        return found

    def list_rules(
        self, *, include_archived: bool = False, issuer_id: str | None = None
    ) -> list[Rule]:
        with self._lock:
            items = self._newest_first(self._rules.values())
        return [
            r
            for r in items
            if (include_archived or r.archived_at is None)
            and (issuer_id is None or r.issuer_id == issuer_id)
        ]

    def update_rule(
        self, rule_id: str, changes: Mapping[str, Any], *, actor: str | None, console: bool = False
    ) -> Rule:
        with self._lock:
            current = self.rule(rule_id)
            if current.archived_at is not None:
                raise invalid_request("Archived rules cannot be updated; create a new rule")
            if not console and not current.scopes <= OAUTH_MANAGEABLE_SCOPES:
                raise _console_only()
            name = changes.get("name", current.name)
            validate_slug(name)
            self._name_free(self._rules, name, own_id=rule_id)
            scope = changes.get("oauth_scope", current.oauth_scope)
            _validate_scope(scope, console=console)
            match = changes.get("match", current.match)
            self._check_match(match, self.issuer(current.issuer_id))
            target = changes.get("service_account_id", current.service_account_id)
            self._check_target(target, scope)
            lifetime = changes.get("token_lifetime_seconds", current.token_lifetime_seconds)
            _bounded_int(lifetime, "token_lifetime_seconds", TOKEN_LIFETIME_RANGE)
            workspaces = current.workspaces
            legacy = current.workspace_id
            if changes.get("workspace_id") is not None:
                # Replaces the single enablement; several need the workspaces sub-resource.
                if len(workspaces) > 1:
                    raise invalid_request(
                        "workspace_id: the rule is enabled for several workspaces; use the "
                        "rule's workspaces sub-resource"
                    )
                self._live_workspace_ref(changes["workspace_id"])
                workspaces = (RuleWorkspace(changes["workspace_id"], self._clock(), actor),)
            applies_all = changes.get(
                "applies_to_all_workspaces", current.applies_to_all_workspaces
            )
            if not applies_all and not workspaces and not legacy:
                raise invalid_request(
                    "applies_to_all_workspaces: false would leave the rule with no workspace"
                )
            description = changes.get("description", current.description)
            updated = replace(
                current,
                name=name,
                oauth_scope=scope,
                match=match,
                service_account_id=target,
                token_lifetime_seconds=lifetime,
                workspace_id=legacy,
                workspaces=workspaces,
                applies_to_all_workspaces=applies_all,
                description="" if description is None and "description" in changes else description,
                updated_at=self._clock(),
                updated_by=actor,
            )
            self._rules[rule_id] = updated
            return updated

    def archive_rule(
        self, rule_id: str, *, actor: str | None = None, console: bool = False
    ) -> Rule:
        with self._lock:
            current = self.rule(rule_id)
            if not console and not current.scopes <= OAUTH_MANAGEABLE_SCOPES:
                raise _console_only()
            if current.archived_at is not None:
                return current
            now = self._clock()
            archived = replace(
                current,
                archived_at=now,
                archived_by=actor,
                updated_at=now,
                workspace_id=None,
                workspaces=(),
            )
            self._rules[rule_id] = archived
            return archived

    def enable_rule_workspace(
        self, rule_id: str, workspace_id: str, *, actor: str | None = None, console: bool = False
    ) -> RuleWorkspace:
        with self._lock:
            current = self.rule(rule_id)
            if not console and not current.scopes <= OAUTH_MANAGEABLE_SCOPES:
                raise _console_only()
            if current.archived_at is not None:
                raise invalid_request("Archived rules cannot be enabled for a workspace")
            self._live_workspace_ref(workspace_id)
            for existing in current.workspaces:
                if existing.workspace_id == workspace_id:
                    return existing
            enabled = RuleWorkspace(workspace_id, self._clock(), actor)
            self._rules[rule_id] = replace(current, workspaces=(*current.workspaces, enabled))
            return enabled

    def disable_rule_workspace(
        self, rule_id: str, workspace_id: str, *, console: bool = False
    ) -> None:
        with self._lock:
            current = self.rule(rule_id)
            if not console and not current.scopes <= OAUTH_MANAGEABLE_SCOPES:
                raise _console_only()
            self._rules[rule_id] = replace(
                current,
                workspaces=tuple(w for w in current.workspaces if w.workspace_id != workspace_id),
            )

    def enabled_workspaces(self, rule: Rule) -> dict[str, bool]:
        """Workspaces a rule may mint into now -> whether membership is enforced there.

        Archived workspaces drop out. A workspace reached only through the legacy
        ``workspace_id`` binding does not enforce membership (the SDK documents this).
        """
        with self._lock:
            live = {w.id for w in self._tables.workspaces.values() if w.archived_at is None}
        if rule.applies_to_all_workspaces:
            return dict.fromkeys(sorted(live), True)
        enabled = {w: True for w in rule.workspace_ids if w in live}
        if rule.workspace_id and rule.workspace_id in live:
            enabled.setdefault(rule.workspace_id, False)
        return enabled

    # -------------------------------------------------------------------------- checks

    def _live_issuer_ref(self, issuer_id: Any) -> Issuer:
        with self._lock:
            issuer = self._issuers.get(issuer_id) if isinstance(issuer_id, str) else None
        if issuer is None or issuer.archived_at is not None:
            raise invalid_request(f"issuer_id: no live federation issuer {issuer_id!r}")
        return issuer

    def _live_workspace_ref(self, workspace_id: Any) -> None:
        with self._lock:
            found = (
                self._tables.workspaces.get(workspace_id) if isinstance(workspace_id, str) else None
            )
        if found is None or found.archived_at is not None:
            raise invalid_request(f"workspace_id: no live workspace {workspace_id!r}")

    def _check_target(self, service_account_id: Any, scope: str) -> None:
        with self._lock:
            account = (
                self._tables.service_accounts.get(service_account_id)
                if isinstance(service_account_id, str)
                else None
            )
        if account is None or account.archived_at is not None:
            raise invalid_request(
                f"target.service_account_id: no live service account {service_account_id!r}"
            )
        if SCOPE_ORG_ADMIN in scope.split() and account.organization_role != "admin":
            raise invalid_request(
                "oauth_scope: org:admin may only be granted to an admin-role service account"
            )

    def _check_match(self, match: RuleMatch, issuer: Issuer) -> None:
        wildcard_only = match.subject_prefix is not None and not match.subject_prefix.strip("*")
        has_subject = bool(match.subject_prefix) and not wildcard_only
        if not (has_subject or match.claims or match.condition):
            raise invalid_request(
                "match: needs subject_prefix (not a bare wildcard), claims or condition; "
                "audience alone is not sufficient"
            )
        if match.condition is not None:
            compile_condition(match.condition)
        identity = _shared_identity(issuer.issuer_url)
        if identity is not None and not _pins_tenant(match, identity):
            raise invalid_request(
                f"match: rules on {issuer.issuer_url} must constrain tenant identity "
                f"(a claim among {', '.join(sorted(identity))}, a tenant-pinning "
                "subject_prefix, or a condition on one of those claims)"
            )


def _console_only() -> ApiError:
    return ApiError(
        "permission_error",
        "OAuth callers may only manage rules whose oauth_scope is workspace:developer or "
        "workspace:inference; other scopes require a Console session",
    )


def _validate_scope(scope: Any, *, console: bool) -> None:
    if not isinstance(scope, str) or not scope.split():
        raise invalid_request("oauth_scope: Field required")
    unknown = set(scope.split()) - KNOWN_SCOPES
    if unknown:
        raise invalid_request(f"oauth_scope: unknown scope {sorted(unknown)[0]!r}")
    if not console and not set(scope.split()) <= OAUTH_MANAGEABLE_SCOPES:
        raise _console_only()


def _validate_issuer_url(issuer_url: Any, jwks: JwksConfig) -> None:
    if not isinstance(issuer_url, str) or not issuer_url:
        raise invalid_request("issuer_url: Field required")
    # Keys fetched over cleartext can be swapped in transit; the API fetches over HTTPS only.
    if jwks.type == "discovery" and not (jwks.discovery_base or issuer_url).startswith("https://"):
        raise invalid_request("issuer_url: discovery needs an https:// URL")
    if jwks.type == "explicit_url" and not (jwks.url or "").startswith("https://"):
        raise invalid_request("jwks.url: must be an https:// URL")
    if jwks.type == "inline" and not jwks.keys:
        raise invalid_request("jwks.keys: at least one key is required")


def parse_jwks(value: Any) -> JwksConfig:
    """The ``jwks`` body field -> :class:`JwksConfig` (default: discovery)."""
    if value is None:
        return JwksConfig("discovery")
    if not isinstance(value, dict):
        raise invalid_request("jwks: Input should be an object")
    kind = value.get("type")
    ca = value.get("ca_cert_pem")
    if ca is not None and not isinstance(ca, str):
        raise invalid_request("jwks.ca_cert_pem: Input should be a string")
    if kind == "discovery":
        base = value.get("discovery_base")
        if base is not None and not isinstance(base, str):
            raise invalid_request("jwks.discovery_base: Input should be a string")
        return JwksConfig("discovery", discovery_base=base, ca_cert_pem=ca)
    if kind == "explicit_url":
        url = value.get("url")
        if not isinstance(url, str):
            raise invalid_request("jwks.url: Field required")
        return JwksConfig("explicit_url", url=url, ca_cert_pem=ca)
    if kind == "inline":
        keys = value.get("keys")
        if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
            raise invalid_request("jwks.keys: Input should be a list of JWK objects")
        return JwksConfig("inline", keys=tuple(keys))
    raise invalid_request("jwks.type: Input should be 'discovery', 'explicit_url' or 'inline'")


def parse_match(value: Any) -> RuleMatch:
    if not isinstance(value, dict):
        raise invalid_request("match: Input should be an object")
    unknown = set(value) - {"subject_prefix", "claims", "condition", "audience"}
    if unknown:
        raise invalid_request(f"match.{sorted(unknown)[0]}: Extra inputs are not permitted")
    for name in ("subject_prefix", "condition", "audience"):
        if value.get(name) is not None and not isinstance(value[name], str):
            raise invalid_request(f"match.{name}: Input should be a string")
    claims = value.get("claims")
    if claims is not None and (
        not isinstance(claims, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in claims.items())
    ):
        raise invalid_request("match.claims: Input should be an object of string values")
    return RuleMatch(
        subject_prefix=value.get("subject_prefix") or None,
        claims=dict(claims) if claims else None,
        condition=value.get("condition") or None,
        audience=value.get("audience") or None,
    )
