"""The organisation's live federation objects, read once through the SDK.

Every object is kept as the Admin API's JSON (``model_dump(mode="json")``), the shape the lint
and ``org check`` judge. Issuers and service accounts are read with archived ones (a live rule
may still point at them: FED015); rules only live (an archived rule cannot come back, and its
name is free). Workspaces are read with the default one, so ``"default"`` and names resolve.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from claudesec.anthropic_oauth import OrgAdminClient
from claudesec.errors import ConfigError

Json = dict[str, Any]


@dataclass(frozen=True)
class OrgFederation:
    issuers: tuple[Json, ...] = ()
    rules: tuple[Json, ...] = ()
    service_accounts: tuple[Json, ...] = ()
    memberships: Mapping[str, tuple[Json, ...]] = field(default_factory=dict)
    workspaces: tuple[Json, ...] = ()

    def live(self, items: Iterable[Json]) -> list[Json]:
        return [item for item in items if not item.get("archived_at")]

    def by_name(self, items: Iterable[Json], name: str) -> Json | None:
        return next((i for i in self.live(items) if i.get("name") == name), None)

    @property
    def default_workspace_id(self) -> str | None:
        for workspace in self.workspaces:
            if workspace.get("_default"):
                return str(workspace["id"])
        return None

    def workspace_id(self, ref: str) -> str:
        """A config workspace reference (a name, an id, or ``default``) -> its id."""
        if ref == "default" and self.default_workspace_id:
            return self.default_workspace_id
        for workspace in self.live(self.workspaces):
            if ref in (workspace.get("id"), workspace.get("name")):
                return str(workspace["id"])
        raise ConfigError(
            f"workspace {ref!r} does not exist in the organisation",
            hint="create it in the Console (claudesec does not create workspaces), or fix the "
            "name in [federation]",
        )

    def workspace_name(self, workspace_id: str) -> str:
        for workspace in self.workspaces:
            if workspace.get("id") == workspace_id:
                return "default" if workspace.get("_default") else str(workspace.get("name"))
        return workspace_id


def _dump(items: Iterable[Any]) -> tuple[Json, ...]:
    return tuple(item.model_dump(mode="json") for item in items)


def read_org(client: OrgAdminClient) -> OrgFederation:
    """Issuers, rules, service accounts with their memberships, and workspaces."""
    org = client.sdk.beta.organization
    step = "reading federation issuers"
    try:
        issuers = _dump(org.federation.issuers.list(include_archived=True))
        step = "reading federation rules"
        rules = _dump(org.federation.rules.list())
        step = "reading service accounts"
        accounts = _dump(org.service_accounts.list(include_archived=True))
        memberships: dict[str, tuple[Json, ...]] = {}
        for account in accounts:
            if account.get("archived_at"):
                continue
            step = f"reading the workspaces of service account {account.get('name')}"
            memberships[str(account["id"])] = _dump(
                org.service_accounts.workspaces.list(str(account["id"]))
            )
        step = "reading workspaces"
        workspaces = list(_dump(org.workspaces.list(include_default=True)))
        everything = {str(w["id"]) for w in workspaces}
        live = _dump(org.workspaces.list())
        named = {str(w["id"]) for w in live}
        # The default workspace is the one listed only with include_default.
        for workspace in workspaces:
            workspace["_default"] = str(workspace["id"]) in everything - named
    except Exception as exc:
        raise client.error(exc, step) from None
    return OrgFederation(issuers, rules, accounts, memberships, tuple(workspaces))
