"""The organisation's identity resources: workspaces, service accounts, federation issuers/rules.

The registry the federation endpoints and the ``jwt-bearer`` token exchange read and write.
Validation follows anthropic 2.16's own docstrings (``types/beta/organization/federation/``,
``.../service_accounts``): slugs unique within the organisation, a rule needs a matcher other
than ``audience`` alone, a constant-true CEL condition is refused, archiving an issuer or a
service account still referenced by a live rule is refused, archiving a rule clears its
workspaces. Every method returns frozen snapshots; one lock guards the lot.

Errors are raised as :class:`~claudesec.emulator.wire.ApiError` so the HTTP layer renders
them as the API would; the drill and test helpers get the same errors in Python.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from claudesec.emulator.keys import new_id
from claudesec.emulator.wire import ApiError, invalid_request, not_found

OrganizationRole = Literal["admin", "developer"]
WorkspaceRole = Literal[
    "workspace_admin",
    "workspace_billing",
    "workspace_developer",
    "workspace_restricted_developer",
    "workspace_user",
]
JwksMode = Literal["discovery", "explicit_url", "inline"]

WORKSPACE_ROLES: tuple[str, ...] = (
    "workspace_admin",
    "workspace_developer",
    "workspace_restricted_developer",
    "workspace_user",
)  # service accounts cannot hold workspace_billing
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

_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_SLUG_MAX = 64

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
# Subject layouts of the shared issuers where the text up to the first "/" names the tenant.
_TENANT_SUBJECT = re.compile(r"^(repo|project_path|organization):[^*/:]+/")


def _conflict(message: str) -> ApiError:
    return ApiError("invalid_request_error", message, status=409)


def _validate_slug(value: Any, label: str = "name") -> str:
    if not isinstance(value, str) or not value:
        raise invalid_request(f"{label}: Field required")
    if len(value) > _SLUG_MAX or not _SLUG.match(value):
        raise invalid_request(f"{label}: must be a slug (lowercase letters, digits, hyphens)")
    return value


def _bounded_int(value: Any, label: str, bounds: tuple[int, int]) -> int:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_request(f"{label}: Input should be a valid integer")
    if not low <= value <= high:
        raise invalid_request(f"{label}: Input should be between {low} and {high}")
    return value


# ------------------------------------------------------------------------------ records


@dataclass(frozen=True)
class Workspace:
    id: str
    name: str
    created_at: datetime
    archived_at: datetime | None = None
    display_color: str = "#6C5BB9"
    tags: Mapping[str, str] = field(default_factory=dict)
    is_default: bool = False


@dataclass(frozen=True)
class ServiceAccount:
    id: str
    name: str
    organization_role: OrganizationRole
    created_at: datetime
    updated_at: datetime
    description: str | None = None
    created_by: str | None = None
    updated_by: str | None = None
    archived_at: datetime | None = None
    archived_by: str | None = None


@dataclass(frozen=True)
class Membership:
    service_account_id: str
    workspace_id: str
    workspace_role: str
    created_by: str | None = None
    implicit: bool = False


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


# ------------------------------------------------------------------------------ registry


@dataclass
class _Tables:
    workspaces: dict[str, Workspace] = field(default_factory=dict)
    service_accounts: dict[str, ServiceAccount] = field(default_factory=dict)
    memberships: dict[tuple[str, str], Membership] = field(default_factory=dict)
    issuers: dict[str, Issuer] = field(default_factory=dict)
    rules: dict[str, Rule] = field(default_factory=dict)
    order: dict[str, int] = field(default_factory=dict)
    seq: int = 0


class FederationRegistry:
    """Workspaces, service accounts, memberships, issuers and rules of one organisation."""

    def __init__(self, *, default_workspace_id: str, clock: Callable[[], datetime]) -> None:
        self._lock = threading.RLock()
        self._clock = clock
        self.default_workspace_id = default_workspace_id
        self._tables = _Tables()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._tables = _Tables()
            self._put_workspace(
                Workspace(
                    id=self.default_workspace_id,
                    name="Default",
                    created_at=self._clock(),
                    is_default=True,
                )
            )

    def _stamp(self, object_id: str) -> None:
        self._tables.seq += 1
        self._tables.order[object_id] = self._tables.seq

    def _newest_first(self, items: Iterable[Any]) -> list[Any]:
        return sorted(items, key=lambda item: self._tables.order[item.id], reverse=True)

    # -------------------------------------------------------------------------- workspaces

    def _put_workspace(self, workspace: Workspace) -> Workspace:
        if workspace.id not in self._tables.order:
            self._stamp(workspace.id)
        self._tables.workspaces[workspace.id] = workspace
        return workspace

    def create_workspace(
        self, name: Any, *, tags: Mapping[str, str] | None = None, display_color: str | None = None
    ) -> Workspace:
        if not isinstance(name, str) or not name.strip():
            raise invalid_request("name: Field required")
        with self._lock:
            if any(
                w.name == name and w.archived_at is None for w in self._tables.workspaces.values()
            ):
                raise _conflict(f"A workspace named {name!r} already exists")
            return self._put_workspace(
                Workspace(
                    id=new_id("wrkspc"),
                    name=name,
                    created_at=self._clock(),
                    tags=dict(tags or {}),
                    display_color=display_color or "#6C5BB9",
                )
            )

    def workspace(self, workspace_id: str) -> Workspace:
        with self._lock:
            found = self._tables.workspaces.get(workspace_id)
        if found is None:
            raise not_found(f"Workspace not found: {workspace_id}")
        return found

    def list_workspaces(self) -> list[Workspace]:
        """Oldest first, the Admin API's order for workspaces."""
        with self._lock:
            return list(reversed(self._newest_first(self._tables.workspaces.values())))

    def update_workspace(
        self, workspace_id: str, *, name: str | None = None, tags: Mapping[str, str] | None = None
    ) -> Workspace:
        with self._lock:
            current = self.workspace(workspace_id)
            if current.archived_at is not None:
                raise invalid_request("Archived workspaces cannot be updated")
            return self._put_workspace(
                replace(
                    current,
                    name=name if name is not None else current.name,
                    tags=dict(tags) if tags is not None else current.tags,
                )
            )

    def archive_workspace(self, workspace_id: str) -> Workspace:
        with self._lock:
            current = self.workspace(workspace_id)
            if current.is_default:
                raise invalid_request("The default workspace cannot be archived")
            if current.archived_at is not None:
                return current
            return self._put_workspace(replace(current, archived_at=self._clock()))

    def live_workspace(self, workspace_id: str) -> Workspace:
        """The workspace, or 400 when it is archived (the membership endpoints' rule)."""
        workspace = self.workspace(workspace_id)
        if workspace.archived_at is not None:
            raise invalid_request(f"Workspace {workspace_id} is archived")
        return workspace

    # -------------------------------------------------------------------------- service accounts

    def create_service_account(
        self,
        name: Any,
        *,
        description: str | None = None,
        organization_role: Any = "developer",
        actor: str | None = None,
    ) -> ServiceAccount:
        _validate_slug(name)
        if organization_role not in ("admin", "developer"):
            raise invalid_request("organization_role: Input should be 'admin' or 'developer'")
        with self._lock:
            if any(
                sa.name == name and sa.archived_at is None
                for sa in self._tables.service_accounts.values()
            ):
                raise _conflict(f"A service account named {name!r} already exists")
            now = self._clock()
            account = ServiceAccount(
                id=new_id("svac"),
                name=name,
                organization_role=organization_role,
                description=description,
                created_at=now,
                updated_at=now,
                created_by=actor,
                updated_by=actor,
            )
            self._tables.service_accounts[account.id] = account
            self._stamp(account.id)
            return account

    def service_account(self, service_account_id: str) -> ServiceAccount:
        with self._lock:
            found = self._tables.service_accounts.get(service_account_id)
        if found is None:
            raise not_found(f"Service account not found: {service_account_id}")
        return found

    def list_service_accounts(self, *, include_archived: bool = False) -> list[ServiceAccount]:
        with self._lock:
            items = self._newest_first(self._tables.service_accounts.values())
        return [sa for sa in items if include_archived or sa.archived_at is None]

    def update_service_account(
        self,
        service_account_id: str,
        *,
        description: str | None = None,
        clear_description: bool = False,
        organization_role: Any = None,
        actor: str | None = None,
    ) -> ServiceAccount:
        if organization_role is not None and organization_role not in ("admin", "developer"):
            raise invalid_request("organization_role: Input should be 'admin' or 'developer'")
        with self._lock:
            current = self.service_account(service_account_id)
            if current.archived_at is not None:
                raise invalid_request("Archived service accounts cannot be updated")
            updated = replace(
                current,
                description=""
                if clear_description
                else (description if description is not None else current.description),
                organization_role=organization_role or current.organization_role,
                updated_at=self._clock(),
                updated_by=actor,
            )
            self._tables.service_accounts[updated.id] = updated
            return updated

    def archive_service_account(
        self, service_account_id: str, *, actor: str | None = None
    ) -> ServiceAccount:
        with self._lock:
            current = self.service_account(service_account_id)
            if current.archived_at is not None:
                return current
            live = [
                r.id
                for r in self._tables.rules.values()
                if r.archived_at is None and r.service_account_id == service_account_id
            ]
            if live:
                raise invalid_request(
                    f"Service account is targeted by live federation rules ({', '.join(live)}); "
                    "archive them first"
                )
            now = self._clock()
            archived = replace(current, archived_at=now, archived_by=actor, updated_at=now)
            self._tables.service_accounts[archived.id] = archived
            return archived

    # -------------------------------------------------------------------------- memberships

    def add_membership(
        self,
        service_account_id: str,
        workspace_id: str,
        workspace_role: Any,
        *,
        actor: str | None = None,
    ) -> Membership:
        if workspace_role not in WORKSPACE_ROLES:
            raise invalid_request(
                f"workspace_role: Input should be one of {', '.join(WORKSPACE_ROLES)}"
            )
        with self._lock:
            self.live_workspace(workspace_id)
            account = self.service_account(service_account_id)
            if account.archived_at is not None:
                raise invalid_request("Archived service accounts cannot be added to a workspace")
            member = Membership(service_account_id, workspace_id, workspace_role, actor)
            self._tables.memberships[(service_account_id, workspace_id)] = member
            return member

    def membership(self, service_account_id: str, workspace_id: str) -> Membership | None:
        """The explicit membership, the implicit default-workspace one, or None."""
        with self._lock:
            found = self._tables.memberships.get((service_account_id, workspace_id))
        if found is not None:
            return found
        if workspace_id == self.default_workspace_id:
            return Membership(service_account_id, workspace_id, "workspace_user", implicit=True)
        return None

    def update_membership(
        self, service_account_id: str, workspace_id: str, workspace_role: Any
    ) -> Membership:
        if workspace_role not in WORKSPACE_ROLES:
            raise invalid_request(
                f"workspace_role: Input should be one of {', '.join(WORKSPACE_ROLES)}"
            )
        with self._lock:
            self.live_workspace(workspace_id)
            if self.service_account(service_account_id).archived_at is not None:
                raise invalid_request("Archived service accounts cannot be updated")
            current = self._tables.memberships.get((service_account_id, workspace_id))
            if current is None:
                raise not_found("Only explicit memberships can be updated")
            updated = replace(current, workspace_role=workspace_role)
            self._tables.memberships[(service_account_id, workspace_id)] = updated
            return updated

    def remove_membership(self, service_account_id: str, workspace_id: str) -> None:
        """Idempotent; the implicit default-workspace membership always remains."""
        with self._lock:
            self.live_workspace(workspace_id)
            self._tables.memberships.pop((service_account_id, workspace_id), None)

    def memberships_of(self, service_account_id: str) -> list[Membership]:
        with self._lock:
            account = self.service_account(service_account_id)
            if account.archived_at is not None:
                return []
            explicit = [
                m for (sa, _), m in self._tables.memberships.items() if sa == service_account_id
            ]
        if not any(m.workspace_id == self.default_workspace_id for m in explicit):
            implicit = self.membership(service_account_id, self.default_workspace_id)
            assert implicit is not None
            explicit.insert(0, implicit)
        return explicit

    def members_of(self, workspace_id: str) -> list[Membership]:
        with self._lock:
            self.live_workspace(workspace_id)
            return [
                m
                for (sa, ws), m in self._tables.memberships.items()
                if ws == workspace_id and self._tables.service_accounts[sa].archived_at is None
            ]

    # -------------------------------------------------------------------------- issuers

    def _name_free(self, table: Mapping[str, Any], name: str, own_id: str | None = None) -> None:
        # Names are unique among live objects: an archived issuer cannot come back, so its
        # name is free for the replacement the API tells you to create.
        for item in table.values():
            if item.name == name and item.archived_at is None and item.id != own_id:
                raise _conflict(f"The name {name!r} is already taken")

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
        _validate_slug(name)
        _validate_issuer_url(issuer_url, jwks)
        _bounded_int(max_jwt_lifetime_seconds, "max_jwt_lifetime_seconds", MAX_JWT_LIFETIME_RANGE)
        with self._lock:
            self._name_free(self._tables.issuers, name)
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
            self._tables.issuers[issuer.id] = issuer
            self._stamp(issuer.id)
            return issuer

    def issuer(self, issuer_id: str) -> Issuer:
        with self._lock:
            found = self._tables.issuers.get(issuer_id)
        if found is None:
            raise not_found(f"Federation issuer not found: {issuer_id}")
        return found

    def list_issuers(self, *, include_archived: bool = False) -> list[Issuer]:
        with self._lock:
            items = self._newest_first(self._tables.issuers.values())
        return [i for i in items if include_archived or i.archived_at is None]

    def update_issuer(
        self, issuer_id: str, changes: Mapping[str, Any], *, actor: str | None
    ) -> Issuer:
        with self._lock:
            current = self.issuer(issuer_id)
            if current.archived_at is not None:
                raise invalid_request("Archived issuers cannot be updated; create a new issuer")
            name = changes.get("name", current.name)
            _validate_slug(name)
            self._name_free(self._tables.issuers, name, own_id=issuer_id)
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
            self._tables.issuers[issuer_id] = updated
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
            self._tables.issuers[issuer_id] = archived
            return archived

    def record_poll(self, issuer_id: str, *, ok: bool) -> None:
        with self._lock:
            current = self._tables.issuers.get(issuer_id)
            if current is None:
                return
            poll = (
                PollStatus(0, self._clock())
                if ok
                else PollStatus(current.poll.consecutive_failures + 1, current.poll.last_fetched_at)
            )
            self._tables.issuers[issuer_id] = replace(current, poll=poll)

    def _rules_of(self, issuer_id: str) -> list[Rule]:
        return [
            r
            for r in self._tables.rules.values()
            if r.issuer_id == issuer_id and r.archived_at is None
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
        _validate_slug(name)
        _validate_scope(oauth_scope, console=console)
        _bounded_int(token_lifetime_seconds, "token_lifetime_seconds", TOKEN_LIFETIME_RANGE)
        if not applies_to_all_workspaces and not workspace_id and not legacy_workspace_id:
            raise invalid_request("workspace_id: required unless applies_to_all_workspaces is true")
        with self._lock:
            self._name_free(self._tables.rules, name)
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
            self._tables.rules[rule.id] = rule
            self._stamp(rule.id)
            return rule

    def rule(self, rule_id: str) -> Rule:
        with self._lock:
            found = self._tables.rules.get(rule_id)
        if found is None:
            raise not_found(f"Federation rule not found: {rule_id}")
        return found

    def list_rules(
        self, *, include_archived: bool = False, issuer_id: str | None = None
    ) -> list[Rule]:
        with self._lock:
            items = self._newest_first(self._tables.rules.values())
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
            _validate_slug(name)
            self._name_free(self._tables.rules, name, own_id=rule_id)
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
            self._tables.rules[rule_id] = updated
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
            self._tables.rules[rule_id] = archived
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
            self._tables.rules[rule_id] = replace(
                current, workspaces=(*current.workspaces, enabled)
            )
            return enabled

    def disable_rule_workspace(
        self, rule_id: str, workspace_id: str, *, console: bool = False
    ) -> None:
        with self._lock:
            current = self.rule(rule_id)
            if not console and not current.scopes <= OAUTH_MANAGEABLE_SCOPES:
                raise _console_only()
            self._tables.rules[rule_id] = replace(
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
            issuer = self._tables.issuers.get(issuer_id) if isinstance(issuer_id, str) else None
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
