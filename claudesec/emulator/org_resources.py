"""The organisation's posture resources the emulator serves: users, invites, limits, telemetry...

Everything ``claudesec org inventory`` reads beside keys, workspaces, service accounts and
federation (which live in :mod:`~claudesec.emulator.state` and
:mod:`~claudesec.emulator.federation`): users and invites, workspace members, organisation and
workspace rate limits, spend limits, telemetry destinations, webhook endpoints, compliance
settings, external (customer-managed) keys with the outcome their ``validate`` call gives,
RBAC roles, groups and group members, and Claude Code managed settings.

Records are kept as the JSON objects anthropic 2.16's models describe (``OrganizationUser``,
``OrganizationInvite``, ``WorkspaceMember``, ``WorkspaceRateLimit``, ``OrganizationRateLimit``,
``BetaSpendLimit``, ``BetaTelemetryDestination``, ``BetaOrganizationWebhookEndpoint``,
``BetaComplianceSettings``, ``ExternalKey``, ``RBACRole``, ``RBACGroup``, ``RBACGroupMember``,
``BetaClaudeCodeManagedSettingsConfiguration`` and the group settings documents): the
emulator's job is to answer what the platform answers, so the record *is* the answer. The
``add_*`` methods build them with the platform's defaults; the seeded organisations in
:mod:`~claudesec.emulator.org_fixtures` use them. One lock guards it all, and readers get
copies, so a handler never renders a record another thread is changing.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from claudesec.emulator.keys import new_id
from claudesec.emulator.wire import not_found, rfc3339

Json = dict[str, Any]

# The organisation's default limits, as a tier-2 organisation sees them (values plausible,
# shapes exact): one model group and the batch group.
_DEFAULT_ORG_LIMITS: tuple[tuple[str, str, tuple[tuple[str, int], ...]], ...] = (
    (
        "model_group",
        "Claude Sonnet",
        (("requests_per_minute", 1000), ("input_tokens_per_minute", 450_000)),
    ),
    ("batch", "", (("requests_per_minute", 1000),)),
)


@dataclass
class _Tables:
    users: dict[str, Json] = field(default_factory=dict)
    invites: dict[str, Json] = field(default_factory=dict)
    members: dict[str, dict[str, Json]] = field(default_factory=dict)  # workspace -> user -> m
    workspace_limits: dict[str, list[Json]] = field(default_factory=dict)
    rate_limits: list[Json] = field(default_factory=list)
    spend_limits: dict[str, Json] = field(default_factory=dict)
    telemetry: dict[str, Json] = field(default_factory=dict)
    webhooks: dict[str, Json] = field(default_factory=dict)
    compliance: Json = field(default_factory=dict)
    external_keys: dict[str, Json] = field(default_factory=dict)
    validations: dict[str, Json] = field(default_factory=dict)
    rbac_roles: dict[str, Json] = field(default_factory=dict)
    rbac_groups: dict[str, Json] = field(default_factory=dict)
    group_members: dict[str, dict[str, Json]] = field(default_factory=dict)
    cc_configuration: Json = field(default_factory=dict)
    cc_default: Json = field(default_factory=dict)
    cc_groups: dict[str, Json] = field(default_factory=dict)


class OrgResources:
    """The posture resources of one emulated organisation. Safe to share between threads."""

    def __init__(self, *, clock: Callable[[], datetime]) -> None:
        self._lock = threading.RLock()
        self._clock = clock
        self._tables = _Tables()
        self.reset()

    def reset(self) -> None:
        """An organisation as a fresh sign-up has it: built-in roles, default limits,
        compliance API off, Claude Code settings in organisation mode with none set."""
        with self._lock:
            self._tables = _Tables()
            now = rfc3339(self._clock())
            for name in ("Admin", "Developer", "User", "Billing", "Claude Code User"):
                role_id = new_id("rbacrole")
                self._tables.rbac_roles[role_id] = {
                    "id": role_id,
                    "type": "rbac_role",
                    "display_name": name,
                    "source": {"type": "built_in"},
                    "created_at": now,
                    "updated_at": now,
                }
            for group_type, display, limits in _DEFAULT_ORG_LIMITS:
                group: Json = {"id": new_id("rlgrp"), "type": group_type}
                if group_type == "model_group":
                    group["display_name"] = display
                self._tables.rate_limits.append(
                    {
                        "id": new_id("ratelimit"),
                        "type": "rate_limit",
                        "group": group,
                        "limits": [{"type": t, "value": v} for t, v in limits],
                        "models": None,
                    }
                )
            self._tables.compliance = {
                "type": "compliance_settings",
                "state": {"type": "disabled"},
                "access_transparency": {"type": "disabled"},
            }
            self._tables.cc_configuration = {
                "type": "claude_code_managed_settings_configuration",
                "mode": {"type": "organization"},
                "mode_updated_at": None,
                "rbac_group_order": [],
                "rbac_group_order_version": "v0",
            }
            self._tables.cc_default = {
                "type": "claude_code_rbac_group_default_managed_settings",
                "settings": None,
                "updated_at": None,
            }

    def _now(self) -> str:
        return rfc3339(self._clock())

    # ---------------------------------------------------------------------------- people

    def add_user(
        self, email: str, *, name: str = "", role: str = "user", added_at: datetime | None = None
    ) -> Json:
        user_id = new_id("user")
        record = {
            "id": user_id,
            "type": "user",
            "email": email,
            "name": name or email.split("@", 1)[0],
            "role": role,
            "added_at": rfc3339(added_at) if added_at else self._now(),
        }
        with self._lock:
            self._tables.users[user_id] = record
        return copy.deepcopy(record)

    def add_invite(
        self,
        email: str,
        *,
        role: str = "user",
        status: str = "pending",
        invited_at: datetime,
        expires_at: datetime,
        rbac_group_ids: Sequence[str] = (),
    ) -> Json:
        invite_id = new_id("invite")
        record = {
            "id": invite_id,
            "type": "invite",
            "email": email,
            "role": role,
            "status": status,
            "invited_at": rfc3339(invited_at),
            "expires_at": rfc3339(expires_at),
            "accepted_at": None,
            "rbac_group_ids": list(rbac_group_ids),
        }
        with self._lock:
            self._tables.invites[invite_id] = record
        return copy.deepcopy(record)

    def delete_invite(self, invite_id: str) -> Json:
        with self._lock:
            if self._tables.invites.pop(invite_id, None) is None:
                raise not_found(f"Invite not found: {invite_id}")
        return {"id": invite_id, "type": "invite_deleted"}

    def add_member(self, workspace_id: str, user_id: str, workspace_role: str) -> Json:
        record = {
            "type": "workspace_member",
            "user_id": user_id,
            "workspace_id": workspace_id,
            "workspace_role": workspace_role,
        }
        with self._lock:
            self._tables.members.setdefault(workspace_id, {})[user_id] = record
        return dict(record)

    # ---------------------------------------------------------------------------- limits

    def add_workspace_rate_limit(
        self, workspace_id: str, limits: Mapping[str, int], *, group_display: str = "Claude Sonnet"
    ) -> Json:
        record = {
            "type": "workspace_rate_limit",
            "rate_limit_id": new_id("ratelimit"),
            "workspace_id": workspace_id,
            "group": {"id": new_id("rlgrp"), "type": "model_group", "display_name": group_display},
            "limits": [
                {"type": t, "value": v, "org_limit": None, "source": {"type": "workspace"}}
                for t, v in limits.items()
            ],
            "models": None,
        }
        with self._lock:
            self._tables.workspace_limits.setdefault(workspace_id, []).append(record)
        return copy.deepcopy(record)

    def set_spend_limit(
        self,
        scope: Json,
        amount: str | None,
        *,
        period: str = "monthly",
        currency: str = "USD",
        is_enabled: bool = True,
    ) -> Json:
        """Set (create or replace) the spend limit of one scope, as ``spend_limits.set`` does."""
        now = self._now()
        with self._lock:
            for record in self._tables.spend_limits.values():
                if record["scope"] == scope and record["period"] == period:
                    record.update(
                        amount=amount, currency=currency, is_enabled=is_enabled, updated_at=now
                    )
                    return copy.deepcopy(record)
            limit_id = new_id("spendlimit")
            record = {
                "id": limit_id,
                "type": "spend_limit",
                "amount": amount,
                "currency": currency,
                "is_enabled": is_enabled,
                "period": period,
                "scope": dict(scope),
                "created_at": now,
                "updated_at": now,
            }
            self._tables.spend_limits[limit_id] = record
            return copy.deepcopy(record)

    # ---------------------------------------------------------------------------- telemetry

    def add_telemetry_destination(
        self,
        endpoint_url: str,
        *,
        display_name: str | None = None,
        content_mode: str = "metadata_only",
        disabled_reason: str | None = None,
        last_error: str | None = None,
        last_error_at: datetime | None = None,
        last_success_at: datetime | None = None,
        header_names: Sequence[str] = (),
    ) -> Json:
        destination_id = new_id("teldest")
        now = self._now()
        state: Json = (
            {"type": "enabled"}
            if disabled_reason is None
            else {"type": "disabled", "reason": {"type": disabled_reason}}
        )
        record = {
            "id": destination_id,
            "type": "telemetry_destination",
            "display_name": display_name,
            "endpoint_url": endpoint_url,
            "header_names": list(header_names),
            "state": state,
            "delivery_health": {
                "last_error": last_error,
                "last_error_at": rfc3339(last_error_at) if last_error_at else None,
                "last_success_at": rfc3339(last_success_at) if last_success_at else None,
            },
            "traces": {
                "enabled": True,
                "content_mode": content_mode,
                "endpoint_url": None,
                "max_content_bytes": 65536 if content_mode == "content" else None,
            },
            "workspaces": {"type": "all"},
            "created_at": now,
            "updated_at": now,
        }
        with self._lock:
            self._tables.telemetry[destination_id] = record
        return copy.deepcopy(record)

    def add_webhook(
        self,
        url: str,
        *,
        name: str,
        state: str = "enabled",
        disabled_reason: str = "",
        enabled_events: Sequence[str] = ("external_key.failed", "external_key.recovered"),
        description: str = "",
    ) -> Json:
        webhook_id = new_id("whep")
        now = self._now()
        record = {
            "id": webhook_id,
            "name": name,
            "description": description,
            "url": url,
            "state": state,
            "disabled_reason": disabled_reason,
            "enabled_events": list(enabled_events),
            "created_at": now,
            "updated_at": now,
        }
        with self._lock:
            self._tables.webhooks[webhook_id] = record
        return copy.deepcopy(record)

    def delete_webhook(self, webhook_id: str) -> None:
        with self._lock:
            if self._tables.webhooks.pop(webhook_id, None) is None:
                raise not_found(f"Webhook endpoint not found: {webhook_id}")

    def disable_telemetry_destination(self, destination_id: str, *, reason: str = "caller") -> Json:
        """Disable a destination: ``caller`` is an admin's choice; Anthropic's own reasons
        (``sustained_failure``, ``redirect``) say it stopped deliveries by itself."""
        with self._lock:
            record = self._tables.telemetry.get(destination_id)
            if record is None:
                raise not_found(f"Telemetry destination not found: {destination_id}")
            record.update(
                state={"type": "disabled", "reason": {"type": reason}}, updated_at=self._now()
            )
            return copy.deepcopy(record)

    def set_compliance(self, *, enabled: bool, access_transparency: bool = False) -> Json:
        with self._lock:
            self._tables.compliance = {
                "type": "compliance_settings",
                "state": {"type": "enabled" if enabled else "disabled"},
                "access_transparency": {"type": "enabled" if access_transparency else "disabled"},
            }
            return copy.deepcopy(self._tables.compliance)

    # ---------------------------------------------------------------------------- CMK

    def add_external_key(
        self,
        kms_arn: str,
        *,
        display_name: str | None = None,
        region: str | None = "us-east-1",
        geo: str = "us",
        attached: bool = True,
        validation_error: str | None = None,
    ) -> Json:
        """A customer-managed key; ``validation_error`` makes its ``validate`` call fail."""
        key_id = new_id("extkey")
        now = self._now()
        record = {
            "id": key_id,
            "type": "external_key",
            "display_name": display_name,
            "geo": geo,
            "provider_config": {"type": "aws", "kms_arn": kms_arn, "region": region},
            "attachment": {"type": "attached" if attached else "unattached"},
            "user_profile_id": None,
            "created_at": now,
            "updated_at": now,
        }
        validation = {
            "type": "external_key_validation",
            "status": "failure" if validation_error else "success",
            "error": validation_error,
        }
        with self._lock:
            self._tables.external_keys[key_id] = record
            self._tables.validations[key_id] = validation
        return copy.deepcopy(record)

    def validate_external_key(self, key_id: str) -> Json:
        with self._lock:
            found = self._tables.validations.get(key_id)
            if found is None:
                raise not_found(f"External key not found: {key_id}")
            return dict(found)

    # ---------------------------------------------------------------------------- RBAC

    def role_id(self, display_name: str) -> str:
        with self._lock:
            for role in self._tables.rbac_roles.values():
                if role["display_name"] == display_name:
                    return str(role["id"])
        raise KeyError(display_name)

    def add_rbac_role(self, display_name: str) -> Json:
        """A custom role, as an administrator creates it in the Console (the API only reads
        roles)."""
        role_id = new_id("rbacrole")
        now = self._now()
        record = {
            "id": role_id,
            "type": "rbac_role",
            "display_name": display_name,
            "source": {"type": "custom"},
            "created_at": now,
            "updated_at": now,
        }
        with self._lock:
            self._tables.rbac_roles[role_id] = record
        return copy.deepcopy(record)

    def delete_rbac_group(self, group_id: str) -> None:
        """Delete a group and its memberships. Its Claude Code settings document stays in the
        precedence order with ``rbac_group_status`` ``deleted`` until removed, as the platform
        keeps it."""
        with self._lock:
            if self._tables.rbac_groups.pop(group_id, None) is None:
                raise not_found(f"RBAC group not found: {group_id}")
            self._tables.group_members.pop(group_id, None)
            document = self._tables.cc_groups.get(group_id)
            if document is not None:
                document.update(rbac_group_status={"type": "deleted"}, updated_at=self._now())

    def add_rbac_group(
        self, name: str, *, role_ids: Sequence[str] = (), source_type: str = "direct"
    ) -> Json:
        group_id = new_id("rbacgrp")
        now = self._now()
        record = {
            "id": group_id,
            "type": "rbac_group",
            "name": name,
            "role_ids": list(role_ids),
            "source_type": source_type,
            "created_at": now,
            "updated_at": now,
        }
        with self._lock:
            self._tables.rbac_groups[group_id] = record
            self._tables.group_members[group_id] = {}
        return copy.deepcopy(record)

    def add_group_member(self, group_id: str, user: Mapping[str, Any]) -> Json:
        record = {
            "type": "rbac_group_member",
            "rbac_group_id": group_id,
            "user_id": user["id"],
            "email": user["email"],
            "created_at": self._now(),
        }
        with self._lock:
            self._tables.group_members[group_id][str(user["id"])] = record
        return dict(record)

    # ---------------------------------------------------------------------------- Claude Code

    def set_claude_code_default(self, settings: Mapping[str, Any] | None) -> Json:
        with self._lock:
            self._tables.cc_default = {
                "type": "claude_code_rbac_group_default_managed_settings",
                "settings": copy.deepcopy(dict(settings)) if settings is not None else None,
                "updated_at": self._now() if settings is not None else None,
            }
            return copy.deepcopy(self._tables.cc_default)

    def set_claude_code_group(self, group_id: str, settings: Mapping[str, Any]) -> Json:
        """Give an RBAC group its own settings; switches the configuration to groups mode."""
        now = self._now()
        with self._lock:
            created = self._tables.cc_groups.get(group_id, {}).get("created_at", now)
            self._tables.cc_groups[group_id] = {
                "type": "claude_code_rbac_group_managed_settings",
                "rbac_group_id": group_id,
                "rbac_group_status": {"type": "active"},
                "settings": copy.deepcopy(dict(settings)),
                "created_at": created,
                "updated_at": now,
            }
            order = [g for g in self._tables.cc_configuration["rbac_group_order"] if g != group_id]
            self._tables.cc_configuration.update(
                mode={"type": "rbac_groups"},
                mode_updated_at=now,
                rbac_group_order=[*order, group_id],
                rbac_group_order_version=f"v{len(order) + 1}",
            )
            return copy.deepcopy(self._tables.cc_groups[group_id])

    # ---------------------------------------------------------------------------- reads

    def users(self) -> list[Json]:
        with self._lock:
            return copy.deepcopy(list(self._tables.users.values()))

    def invites(self) -> list[Json]:
        with self._lock:
            return copy.deepcopy(list(self._tables.invites.values()))

    def members(self, workspace_id: str) -> list[Json]:
        with self._lock:
            return [dict(m) for m in self._tables.members.get(workspace_id, {}).values()]

    def workspace_rate_limits(self, workspace_id: str, *, include_inherited: bool) -> list[Json]:
        with self._lock:
            own = copy.deepcopy(self._tables.workspace_limits.get(workspace_id, []))
            if not include_inherited:
                return own
            inherited = [
                {
                    "type": "workspace_rate_limit",
                    "rate_limit_id": limit["id"],
                    "workspace_id": workspace_id,
                    "group": dict(limit["group"]),
                    "limits": [
                        {**value, "org_limit": value["value"], "source": {"type": "organization"}}
                        for value in limit["limits"]
                    ],
                    "models": limit["models"],
                }
                for limit in self._tables.rate_limits
            ]
            return own + inherited

    def rate_limits(self) -> list[Json]:
        with self._lock:
            return copy.deepcopy(self._tables.rate_limits)

    def spend_limits(self) -> list[Json]:
        with self._lock:
            return copy.deepcopy(list(self._tables.spend_limits.values()))

    def telemetry_destinations(self) -> list[Json]:
        with self._lock:
            return copy.deepcopy(list(self._tables.telemetry.values()))

    def webhooks(self) -> list[Json]:
        with self._lock:
            return copy.deepcopy(list(self._tables.webhooks.values()))

    def compliance(self) -> Json:
        with self._lock:
            return copy.deepcopy(self._tables.compliance)

    def external_keys(self) -> list[Json]:
        with self._lock:
            return copy.deepcopy(list(self._tables.external_keys.values()))

    def rbac_roles(self) -> list[Json]:
        with self._lock:
            return copy.deepcopy(list(self._tables.rbac_roles.values()))

    def rbac_groups(self) -> list[Json]:
        with self._lock:
            return copy.deepcopy(list(self._tables.rbac_groups.values()))

    def group_members(self, group_id: str) -> list[Json]:
        with self._lock:
            if group_id not in self._tables.group_members:
                raise not_found(f"RBAC group not found: {group_id}")
            return [dict(m) for m in self._tables.group_members[group_id].values()]

    def claude_code_configuration(self) -> Json:
        with self._lock:
            return copy.deepcopy(self._tables.cc_configuration)

    def claude_code_default(self) -> Json:
        with self._lock:
            return copy.deepcopy(self._tables.cc_default)

    def claude_code_groups(self) -> list[Json]:
        """Summaries (no settings), in precedence order, as the list endpoint gives them."""
        with self._lock:
            return [
                {k: v for k, v in doc.items() if k != "settings"}
                | {"type": "claude_code_rbac_group_managed_settings_summary"}
                for doc in (
                    self._tables.cc_groups[g]
                    for g in self._tables.cc_configuration["rbac_group_order"]
                    if g in self._tables.cc_groups
                )
            ]

    def claude_code_group(self, group_id: str) -> Json:
        with self._lock:
            found = self._tables.cc_groups.get(group_id)
            if found is None:
                raise not_found(f"No managed settings for RBAC group {group_id}")
            return copy.deepcopy(found)
