"""One failing organisation per posture check: the clean organisation with a single defect.

``claudesec emulator serve --org clean+ORG-KEY-003`` (or :func:`seed_variant`) loads the clean
organisation of :mod:`~claudesec.emulator.org_fixtures` and then the defect of that check's
:class:`Variant`, so every check of the catalogue has a failing fixture served over HTTP, and
the clean organisation is its passing one. :attr:`Variant.fails` is the contract: ``org check``
with :data:`VARIANT_SETTINGS` finds exactly those checks on the variant (the check itself,
plus any check the defect implies, e.g. the federation linter flagging the same rule), which
``tests/org/test_org_variants.py`` asserts for every check of the catalogue.

Three checks judge the organisation against claudesec's own key store (ORG-KEY-012,
ORG-DRIFT-001, ORG-DRIFT-002): their variant serves the emulator's half of the defect and
names the local half in :attr:`Variant.local` (the test builds that store for real, in
Secrets Manager on moto). Defects are made the way they arise: through the same emulator
operations the Admin API or the Console would perform (add a key, archive a workspace,
delete a group...), never by editing a served record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from claudesec.emulator.federation import JWKS_POLL_PAUSE_AFTER, JwksConfig, RuleMatch
from claudesec.emulator.keys import Actor
from claudesec.emulator.org_fixtures import (
    CLEAN_SPEND_LIMIT,
    ORG_CHECK_SETTINGS,
    SeededOrg,
    record_use,
    safe_claude_code_settings,
    seed_clean,
)
from claudesec.emulator.state import EmulatorState

# Makes the defect in the seeded clean organisation (what it returns is ignored).
Seed = Callable[[EmulatorState, SeededOrg], object]

# The `[org]` settings variants are judged with: the seeds' settings, plus the clean
# organisation's spend amount so the drift check (ORG-LIM-004) runs instead of skipping.
VARIANT_SETTINGS: dict[str, Any] = {
    **ORG_CHECK_SETTINGS,
    "workspace_spend_limit": CLEAN_SPEND_LIMIT,
}
_DEPARTED = "user_01DepartedXXXXXXXXXXXXXX"  # an id no member of the organisation has


@dataclass(frozen=True)
class Variant:
    """The defect that makes ``check_id`` fail, and what ``org check`` then finds.

    :attr:`fails` is judged with :data:`VARIANT_SETTINGS`; with claudesec's key store read
    (built as :attr:`local` says) for the variants that have a local half, and without it
    for the others (the three checks that need the store then skip, whatever keys a
    variant adds).
    """

    check_id: str
    defect: str
    seed: Seed
    # Checks that fail on the variant: check_id and the ones the defect implies.
    also: tuple[str, ...] = ()
    # The part of the defect that lives in claudesec's key store, not in the organisation.
    local: str = ""

    @property
    def fails(self) -> frozenset[str]:
        return frozenset((self.check_id, *self.also))


# ------------------------------------------------------------------------------ helpers


def _dev(seeded: SeededOrg) -> str:
    """A developer of the clean organisation (its users are 2 admins, then developers)."""
    return seeded.user_ids[2]


def _key(
    state: EmulatorState,
    seeded: SeededOrg,
    name: str,
    *,
    age_days: int = 10,
    lifetime_days: int | None = 60,
    used: bool = True,
    **options: Any,
) -> str:
    """An API key like the clean ones (a developer's, in a workspace, expiring, in use)
    except for what ``options`` changes."""
    now = state.now()
    created = now - timedelta(days=age_days)
    options.setdefault("user_id", _dev(seeded))
    options.setdefault("workspace_id", seeded.workspace_ids[1])
    issued = state.add_key(
        name=name,
        created_at=created,
        expires_at=created + timedelta(days=lifetime_days) if lifetime_days else None,
        created_by=options.pop("created_by", Actor(_dev(seeded))),
        **options,
    )
    if used:
        record_use(state, issued.id, seeded.workspace_ids[1], now - timedelta(days=1))
    return issued.id


def _workspace(state: EmulatorState, seeded: SeededOrg, name: str, **skip: bool) -> str:
    """A workspace configured as the clean ones are, minus what ``skip`` names
    (``spend``, ``rate``)."""
    org, fed = state.org, state.federation
    workspace = fed.create_workspace(name)
    fed.configure_workspace(
        workspace.id,
        data_residency=seeded.notes["residency"],
        external_key_id=seeded.notes["cmk_id"],
    )
    if not skip.get("spend"):
        org.set_spend_limit({"type": "workspace", "workspace_id": workspace.id}, CLEAN_SPEND_LIMIT)
    if not skip.get("rate"):
        org.add_workspace_rate_limit(workspace.id, {"requests_per_minute": 200})
    return workspace.id


def _residency(state: EmulatorState, seeded: SeededOrg, **changes: Any) -> None:
    """Re-create the staging workspace's residency with ``changes`` (keeping its CMK)."""
    state.federation.configure_workspace(
        seeded.workspace_ids[2],
        data_residency={**seeded.notes["residency"], **changes},
        external_key_id=seeded.notes["cmk_id"],
    )


def _cmk(state: EmulatorState, seeded: SeededOrg, key_id: str | None) -> None:
    state.federation.configure_workspace(
        seeded.workspace_ids[2], data_residency=seeded.notes["residency"], external_key_id=key_id
    )


def _settings(state: EmulatorState, **changes: Any) -> None:
    """Default Claude Code settings: the clean ones with ``changes`` (None removes a key;
    ``permissions`` entries merge)."""
    settings = safe_claude_code_settings()
    permissions = {**settings["permissions"], **changes.pop("permissions", {})}
    settings["permissions"] = {k: v for k, v in permissions.items() if v is not None}
    settings.update(changes)
    state.org.set_claude_code_default({k: v for k, v in settings.items() if v is not None})


def _rule(state: EmulatorState, seeded: SeededOrg, name: str, **changes: Any) -> None:
    """A federation rule shaped like the clean one, with ``changes``."""
    options: dict[str, Any] = {
        "name": name,
        "issuer_id": seeded.notes["issuer_id"],
        "match": RuleMatch(
            subject_prefix=f"repo:clean/{name}:ref:refs/heads/main",
            claims={"environment": "prod"},
        ),
        "oauth_scope": "workspace:inference",
        "service_account_id": seeded.notes["service_account_id"],
        "token_lifetime_seconds": 900,
        "workspace_id": seeded.workspace_ids[1],
    }
    options.update(changes)
    if options.get("applies_to_all_workspaces"):
        options.pop("workspace_id")
    state.federation.create_rule(**options)


def _polling_paused(state: EmulatorState, seeded: SeededOrg) -> None:
    for _ in range(JWKS_POLL_PAUSE_AFTER):
        state.federation.record_poll(seeded.notes["issuer_id"], ok=False)


def _archived_account_key(state: EmulatorState, seeded: SeededOrg) -> None:
    account = state.federation.create_service_account("nightly-report")
    _key(state, seeded, "nightly-report", user_id=None, service_account_id=account.id)
    state.federation.archive_service_account(account.id)


def _archived_workspace_key(state: EmulatorState, seeded: SeededOrg) -> None:
    workspace = _workspace(state, seeded, "old-project")
    _key(state, seeded, "old-project-ci", workspace_id=workspace)
    state.federation.archive_workspace(workspace)


def _deleted_group_settings(state: EmulatorState, seeded: SeededOrg) -> None:
    group = state.org.add_rbac_group(
        "contractors", role_ids=[state.org.role_id("Claude Code User")]
    )
    state.org.set_claude_code_group(group["id"], safe_claude_code_settings())
    state.org.delete_rbac_group(group["id"])


def _admin_account_in_use(state: EmulatorState, seeded: SeededOrg) -> None:
    account = state.federation.create_service_account("ops-bot", organization_role="admin")
    _key(state, seeded, "ops-bot", user_id=None, service_account_id=account.id)


def _workspace_admin_account(state: EmulatorState, seeded: SeededOrg) -> None:
    state.federation.update_membership(
        seeded.notes["service_account_id"], seeded.workspace_ids[1], "workspace_admin"
    )


def _org_admin_rule(state: EmulatorState, seeded: SeededOrg) -> None:
    account = state.federation.create_service_account("org-automation", organization_role="admin")
    _rule(
        state,
        seeded,
        "org-automation",
        service_account_id=account.id,
        oauth_scope="org:admin",
        console=True,
    )


def _no_jti_issuer(state: EmulatorState, seeded: SeededOrg) -> None:
    state.federation.update_issuer(seeded.notes["issuer_id"], {"check_jti": False}, actor=None)


def _dead_issuer(state: EmulatorState, seeded: SeededOrg) -> None:
    issuer = state.federation.create_issuer(
        name="old-ci", issuer_url="https://old-ci.clean.example", jwks=JwksConfig("discovery")
    )
    _rule(state, seeded, "old-ci-deploy", issuer_id=issuer.id)
    state.federation.force_archive_issuer(issuer.id)


def _many(count: int, role: str, domain: str = "clean.example") -> Seed:
    def seed(state: EmulatorState, seeded: SeededOrg) -> None:
        for i in range(count):
            state.org.add_user(f"{role}-extra{i}@{domain}", role=role)

    return seed


def _invite(email: str, *, role: str = "developer", days: int = 1) -> Seed:
    def seed(state: EmulatorState, seeded: SeededOrg) -> None:
        now = state.now()
        state.org.add_invite(
            email,
            role=role,
            invited_at=now - timedelta(days=days),
            expires_at=now - timedelta(days=days) + timedelta(days=21),
        )

    return seed


def _telemetry(url: str, **options: Any) -> Seed:
    def seed(state: EmulatorState, seeded: SeededOrg) -> None:
        now = state.now()
        given = dict(options)
        for name in ("last_error_at", "last_success_at"):
            if name in given:
                given[name] = now - given[name]
        state.org.add_telemetry_destination(url, display_name="extra", **given)

    return seed


def _variants() -> tuple[Variant, ...]:
    return (
        Variant(
            "ORG-KEY-001",
            "an active key created 120 days ago (it has an expiry 130 days after creation)",
            lambda s, o: _key(s, o, "legacy", age_days=120, lifetime_days=130),
            also=("ORG-KEY-003",),  # an old key either never expires or outlived the limit
        ),
        Variant(
            "ORG-KEY-002",
            "an active key with no expires_at",
            lambda s, o: _key(s, o, "forever", lifetime_days=None),
        ),
        Variant(
            "ORG-KEY-003",
            "an active key whose expiry is 200 days after its creation",
            lambda s, o: _key(s, o, "long-lived", lifetime_days=200),
        ),
        Variant(
            "ORG-KEY-004",
            "an active key expiring in 5 days",
            lambda s, o: _key(s, o, "expiring", age_days=80, lifetime_days=85),
        ),
        Variant(
            "ORG-KEY-005",
            "an active key with organization scope",
            lambda s, o: _key(s, o, "org-wide", scope="organization"),
        ),
        Variant(
            "ORG-KEY-006",
            "an active key bound to no principal",
            lambda s, o: _key(s, o, "shared-laptop", user_id=None),
        ),
        Variant(
            "ORG-KEY-007",
            "an active key created 40 days ago the usage report never saw",
            lambda s, o: _key(s, o, "dormant", age_days=40, lifetime_days=80, used=False),
        ),
        Variant(
            "ORG-KEY-008",
            "an active key acting as a user who left (created by a current developer)",
            lambda s, o: _key(s, o, "contractor-ci", user_id=_DEPARTED),
        ),
        Variant(
            "ORG-KEY-009",
            "an active key created by a user who left (acting as a current developer)",
            lambda s, o: _key(s, o, "handed-over", created_by=Actor(_DEPARTED)),
        ),
        Variant(
            "ORG-KEY-010",
            "an active key of a service account archived after the key was made",
            _archived_account_key,
        ),
        Variant(
            "ORG-KEY-011",
            "an active key of a workspace archived after the key was made",
            _archived_workspace_key,
        ),
        Variant(
            "ORG-KEY-012",
            "an active key made in the Console that claudesec's key store does not hold",
            lambda s, o: _key(s, o, "console-made"),
            local="every other active key is managed",
        ),
        Variant(
            "ORG-DRIFT-001",
            "the clean organisation: the defect follows the key store's setup",
            lambda s, o: None,
            local="every active key is managed, then one is deactivated in the Console",
        ),
        Variant(
            "ORG-DRIFT-002",
            "the clean organisation: the defect follows the key store's setup",
            lambda s, o: None,
            local="a managed key is rotated twice (retiring the first), which is then "
            "re-activated in the Console",
        ),
        Variant("ORG-USR-001", "4 organisation admins (limit 3)", _many(2, "admin")),
        Variant("ORG-USR-002", "11 developers (limit 10)", _many(7, "developer")),
        Variant(
            "ORG-USR-003",
            "a member on a domain outside allowed_email_domains",
            _many(1, "user", domain="gmail.example"),
        ),
        Variant(
            "ORG-INV-001",
            "an invite pending for 20 days",
            _invite("late@clean.example", days=20),
        ),
        Variant(
            "ORG-INV-002",
            "a pending invite granting the admin role",
            _invite("boss@clean.example", role="admin"),
        ),
        Variant(
            "ORG-INV-003",
            "a pending invite to a domain outside allowed_email_domains",
            _invite("partner@partner.example"),
        ),
        Variant(
            "ORG-WSM-001",
            "a workspace member who is no longer in the organisation",
            lambda s, o: s.org.add_member(o.workspace_ids[1], _DEPARTED, "workspace_developer"),
        ),
        Variant(
            "ORG-WSM-002",
            "a workspace with 4 workspace admins (limit 3)",
            lambda s, o: [
                s.org.add_member(o.workspace_ids[1], user, "workspace_admin")
                for user in o.user_ids[1:4]
            ],
        ),
        Variant(
            "ORG-RBAC-001",
            "an RBAC group granting the Developer role with no members",
            lambda s, o: s.org.add_rbac_group("old-project", role_ids=[s.org.role_id("Developer")]),
        ),
        Variant(
            "ORG-RBAC-002",
            "an RBAC group member who left the organisation",
            lambda s, o: s.org.add_group_member(
                o.notes["group_id"], {"id": _DEPARTED, "email": "gone@clean.example"}
            ),
        ),
        Variant(
            "ORG-RBAC-003",
            "a custom RBAC role no group carries",
            lambda s, o: s.org.add_rbac_role("Prompt Reviewer"),
        ),
        Variant(
            "ORG-LIM-001",
            "a workspace without a spend limit",
            lambda s, o: _workspace(s, o, "sandbox", spend=True),
        ),
        Variant(
            "ORG-LIM-002",
            "a workspace without a rate limit of its own",
            lambda s, o: _workspace(s, o, "sandbox", rate=True),
        ),
        Variant(
            "ORG-LIM-003",
            "the organisation spend limit disabled",
            lambda s, o: s.org.set_spend_limit(
                {"type": "organization"}, "500000", is_enabled=False
            ),
        ),
        Variant(
            "ORG-LIM-004",
            "a workspace spend limit changed by hand from the configured amount",
            lambda s, o: s.org.set_spend_limit(
                {"type": "workspace", "workspace_id": o.workspace_ids[2]}, "250000"
            ),
        ),
        Variant(
            "ORG-GEO-001",
            "a workspace allowing inference in any geo (unrestricted)",
            lambda s, o: _residency(s, o, allowed_inference_geos="unrestricted"),
        ),
        Variant(
            "ORG-GEO-002",
            "a workspace allowing the global geo besides us",
            lambda s, o: _residency(s, o, allowed_inference_geos=["us", "global"]),
        ),
        Variant(
            "ORG-GEO-003",
            "a workspace defaulting to the global geo (so allowing it)",
            lambda s, o: _residency(
                s, o, allowed_inference_geos=["us", "global"], default_inference_geo="global"
            ),
            also=("ORG-GEO-002",),  # the default geo must be an allowed one
        ),
        Variant(
            "ORG-CMK-001",
            "a workspace without a customer-managed key",
            lambda s, o: _cmk(s, o, None),
        ),
        Variant(
            "ORG-CMK-002",
            "a workspace referring to a key configuration that is not listed",
            lambda s, o: _cmk(s, o, "extkey_01GoneXXXXXXXXXXXXXXXXXX"),
        ),
        Variant(
            "ORG-CMK-003",
            "a workspace of geo us using a customer-managed key of another geo",
            lambda s, o: _cmk(
                s,
                o,
                s.org.add_external_key(
                    "arn:aws:kms:eu-west-1:111122223333:key/eu-cmk", region="eu-west-1", geo="eu"
                )["id"],
            ),
        ),
        Variant(
            "ORG-CMK-004",
            "an unattached customer-managed key configuration",
            lambda s, o: s.org.add_external_key(
                "arn:aws:kms:us-east-1:111122223333:key/spare", attached=False
            ),
        ),
        Variant(
            "ORG-CMK-005",
            "no webhook receiving external_key.failed (the only endpoint deleted)",
            lambda s, o: s.org.delete_webhook(o.notes["webhook_id"]),
        ),
        Variant(
            "ORG-TEL-001",
            "a telemetry destination exporting content",
            _telemetry("https://apm.clean.example/v1/traces", content_mode="content"),
        ),
        Variant(
            "ORG-TEL-002",
            "an enabled telemetry destination whose last delivery failed",
            _telemetry(
                "https://siem.clean.example/ingest",
                last_error="503 Service Unavailable",
                last_error_at=timedelta(hours=1),
                last_success_at=timedelta(hours=3),
            ),
        ),
        Variant(
            "ORG-TEL-003",
            "a telemetry destination Anthropic disabled after sustained failures",
            _telemetry(
                "https://siem.clean.example/ingest",
                disabled_reason="sustained_failure",
                last_success_at=timedelta(days=5),
            ),
        ),
        Variant(
            "ORG-TEL-004",
            "a telemetry destination on plain HTTP",
            _telemetry("http://otel.clean.example:4318/v1/traces"),
        ),
        Variant(
            "ORG-TEL-005",
            "the only telemetry destination disabled by an admin",
            lambda s, o: s.org.disable_telemetry_destination(o.notes["telemetry_id"]),
        ),
        Variant(
            "ORG-WHK-001",
            "a webhook endpoint Anthropic disabled after failed deliveries",
            lambda s, o: s.org.add_webhook(
                "https://hooks.clean.example/old",
                name="old-hook",
                state="disabled",
                disabled_reason="endpoint returned 410 Gone",
            ),
        ),
        Variant(
            "ORG-WHK-002",
            "a webhook endpoint disabled by an admin",
            lambda s, o: s.org.add_webhook(
                "https://hooks.clean.example/paused", name="paused-hook", state="disabled"
            ),
        ),
        Variant(
            "ORG-CMP-001",
            "the Compliance API disabled",
            lambda s, o: s.org.set_compliance(enabled=False, access_transparency=True),
        ),
        Variant(
            "ORG-SVC-001",
            "a service account with the admin role (used by an active key)",
            _admin_account_in_use,
        ),
        Variant(
            "ORG-SVC-002",
            "a service account no rule or key uses",
            lambda s, o: s.federation.create_service_account("old-etl"),
        ),
        Variant(
            "ORG-SVC-003",
            "the federation service account made workspace admin of its workspace",
            _workspace_admin_account,
            # The linter's FED014: a role beyond what its rules there grant. (A rule granting
            # workspace:developer instead trips FED010: some lint finding always follows.)
            also=("ORG-FED-001",),
        ),
        Variant(
            "ORG-FED-001",
            "a federation rule matching any repository's subject (repo:*)",
            lambda s, o: _rule(s, o, "any-repo", match=RuleMatch(subject_prefix="repo:*")),
        ),
        Variant(
            "ORG-FED-002",
            "a federation rule enabled for every workspace",
            lambda s, o: _rule(s, o, "everywhere", applies_to_all_workspaces=True),
            also=("ORG-FED-001",),  # the linter's FED009 on the same rule
        ),
        Variant(
            "ORG-FED-003",
            "a federation rule minting 24 h tokens",
            lambda s, o: _rule(s, o, "long-tokens", token_lifetime_seconds=86_400),
            also=("ORG-FED-001",),  # the linter's FED008
        ),
        Variant(
            "ORG-FED-004",
            "a federation rule granting org:admin (made in the Console)",
            _org_admin_rule,
            # org:admin needs an admin service account (SVC-001); the linter's FED011
            also=("ORG-FED-001", "ORG-SVC-001"),
        ),
        Variant(
            "ORG-FED-005",
            "the federation issuer with check_jti turned off",
            _no_jti_issuer,
            also=("ORG-FED-001",),  # the linter's FED006
        ),
        Variant(
            "ORG-FED-006",
            "a federation rule whose issuer was archived under it",
            _dead_issuer,
            also=("ORG-FED-001",),  # the linter's FED015
        ),
        Variant(
            "ORG-FED-007",
            f"the issuer's JWKS polling paused after {JWKS_POLL_PAUSE_AFTER} failed fetches",
            _polling_paused,
        ),
        Variant(
            "ORG-CC-001",
            "default Claude Code settings that do not disable bypassPermissions mode",
            lambda s, o: _settings(s, permissions={"disableBypassPermissionsMode": None}),
        ),
        Variant(
            "ORG-CC-002",
            "default Claude Code settings with no deny rule for secret files",
            lambda s, o: _settings(s, permissions={"deny": ["Bash(rm -rf *)"]}),
        ),
        Variant(
            "ORG-CC-003",
            "default Claude Code settings with no MCP server allowlist",
            lambda s, o: _settings(s, allowedMcpServers=None),
        ),
        Variant(
            "ORG-CC-004",
            "default Claude Code settings letting users add allow rules",
            lambda s, o: _settings(s, allowManagedPermissionRulesOnly=False),
        ),
        Variant(
            "ORG-CC-005",
            "no default Claude Code settings in RBAC-groups mode",
            lambda s, o: s.org.set_claude_code_default(None),
        ),
        Variant(
            "ORG-CC-006",
            "Claude Code settings left behind by a deleted RBAC group",
            _deleted_group_settings,
        ),
    )


VARIANTS: Mapping[str, Variant] = {variant.check_id: variant for variant in _variants()}


def seed_variant(state: EmulatorState, check_id: str) -> SeededOrg:
    """The clean organisation with the defect that makes ``check_id`` fail."""
    variant = VARIANTS.get(check_id)
    if variant is None:
        raise ValueError(f"no organisation variant for check {check_id!r}")
    seeded = seed_clean(state)
    variant.seed(state, seeded)
    return replace(seeded, name=f"clean+{check_id}", defects=(variant.defect,))
