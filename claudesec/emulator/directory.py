"""The organisation's directory: workspaces, service accounts and their memberships.

What federation rules point at. Validation follows anthropic 2.16's docstrings
(``types/beta/organization/service_accounts``, ``.../workspaces``): service-account names are
slugs unique among live accounts, every account is an implicit ``workspace_user`` member of
the default workspace, archived workspaces refuse membership changes, an archived account
lists no memberships. Every method returns frozen snapshots; one re-entrant lock guards the
directory and (through :class:`~claudesec.emulator.federation.FederationRegistry`, its
subclass) the federation objects that reference it, so cross-checks are atomic.

Errors are raised as :class:`~claudesec.emulator.wire.ApiError` so the HTTP layer renders
them as the API would; drills and tests get the same errors in Python.
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
WORKSPACE_ROLES: tuple[str, ...] = (
    "workspace_admin",
    "workspace_developer",
    "workspace_restricted_developer",
    "workspace_user",
)  # service accounts cannot hold workspace_billing

_SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_SLUG_MAX = 64


def conflict(message: str) -> ApiError:
    """409: a name already taken."""
    return ApiError("invalid_request_error", message, status=409)


def validate_slug(value: Any, label: str = "name") -> str:
    if not isinstance(value, str) or not value:
        raise invalid_request(f"{label}: Field required")
    if len(value) > _SLUG_MAX or not _SLUG.match(value):
        raise invalid_request(f"{label}: must be a slug (lowercase letters, digits, hyphens)")
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
    # BetaWorkspace.data_residency; None renders the platform's default (unrestricted).
    data_residency: Mapping[str, Any] | None = None
    external_key_id: str | None = None


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


@dataclass
class _Tables:
    workspaces: dict[str, Workspace] = field(default_factory=dict)
    service_accounts: dict[str, ServiceAccount] = field(default_factory=dict)
    memberships: dict[tuple[str, str], Membership] = field(default_factory=dict)
    order: dict[str, int] = field(default_factory=dict)
    seq: int = 0


class Directory:
    """Workspaces, service accounts and memberships of one organisation."""

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

    def _rules_targeting(self, service_account_id: str) -> list[str]:
        """Ids of live rules targeting the account; the federation registry knows them."""
        return []

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
                raise conflict(f"A workspace named {name!r} already exists")
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

    def configure_workspace(
        self,
        workspace_id: str,
        *,
        data_residency: Mapping[str, Any] | None = None,
        external_key_id: str | None = None,
    ) -> Workspace:
        """Set what a workspace's creation fixes (data residency, customer-managed key)."""
        with self._lock:
            current = self.workspace(workspace_id)
            return self._put_workspace(
                replace(
                    current,
                    data_residency=dict(data_residency) if data_residency else None,
                    external_key_id=external_key_id,
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
        validate_slug(name)
        if organization_role not in ("admin", "developer"):
            raise invalid_request("organization_role: Input should be 'admin' or 'developer'")
        with self._lock:
            if any(
                sa.name == name and sa.archived_at is None
                for sa in self._tables.service_accounts.values()
            ):
                raise conflict(f"A service account named {name!r} already exists")
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
            live = self._rules_targeting(service_account_id)
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
