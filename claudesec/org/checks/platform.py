"""Workspaces and platform settings: spend and rate limits, data residency, customer-managed
keys, telemetry destinations, webhooks and the Compliance API."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from claudesec.org.model import OrgInventory
from claudesec.org.rules import (
    Check,
    CheckContext,
    Hit,
    NotApplicable,
    Severity,
    get,
    label,
    make_check,
    when,
)


def live_workspaces(inv: OrgInventory) -> Iterator[Mapping[str, Any]]:
    return (w for w in inv.items("workspaces") if not w.get("archived_at"))


def workspaces_without_spend_limit(inv: OrgInventory) -> list[Mapping[str, Any]]:
    """Live workspaces with no spend limit carrying an amount (``--fix`` sets one)."""
    limited = {
        str(get(s, "scope", "workspace_id"))
        for s in inv.items("spend_limits")
        if get(s, "scope", "type") == "workspace" and s.get("amount") is not None
    }
    return [w for w in live_workspaces(inv) if str(w.get("id")) not in limited]


def _no_spend(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    for ws in workspaces_without_spend_limit(inv):
        yield Hit(str(ws["id"]), f"workspace {label(ws)} has no spend limit")


def _no_rate(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    limited = {
        str(r.get("workspace_id", r.get("_parent_id"))) for r in inv.items("workspace_rate_limits")
    }
    for ws in live_workspaces(inv):
        if str(ws.get("id")) not in limited:
            yield Hit(str(ws["id"]), f"workspace {label(ws)} has no rate-limit override")


def _org_spend(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    for limit in inv.items("spend_limits"):
        scoped = get(limit, "scope", "type") == "organization"
        if scoped and limit.get("amount") is not None and limit.get("is_enabled"):
            return
    yield Hit("organization", "the organisation has no enabled spend limit with an amount")


def _spend_drift(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    wanted = ctx.config.workspace_spend_limit
    if not wanted:
        raise NotApplicable("org.workspace_spend_limit is empty (claudesec manages no limit)")
    period = ctx.config.workspace_spend_period
    for limit in inv.items("spend_limits"):
        if get(limit, "scope", "type") != "workspace" or limit.get("period") != period:
            continue
        if limit.get("amount") is not None and str(limit.get("amount")) != wanted:
            ws = get(limit, "scope", "workspace_id")
            yield Hit(
                str(ws),
                f"workspace {ws} {period} spend limit is {limit.get('amount')}, "
                f"the config says {wanted}",
            )


def _required_geos(ctx: CheckContext) -> frozenset[str]:
    if not ctx.config.required_inference_geos:
        raise NotApplicable("org.required_inference_geos is empty (no region required)")
    return frozenset(ctx.config.required_inference_geos)


def _geo_unrestricted(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    _required_geos(ctx)
    for ws in live_workspaces(inv):
        if get(ws, "data_residency", "allowed_inference_geos") == "unrestricted":
            yield Hit(str(ws["id"]), f"workspace {label(ws)} allows inference in any geo")


def _geo_outside(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    required = _required_geos(ctx)
    for ws in live_workspaces(inv):
        allowed = get(ws, "data_residency", "allowed_inference_geos")
        if isinstance(allowed, list):
            extra = sorted(set(map(str, allowed)) - required)
            if extra:
                yield Hit(str(ws["id"]), f"workspace {label(ws)} allows geo {', '.join(extra)}")


def _geo_default(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    required = _required_geos(ctx)
    for ws in live_workspaces(inv):
        default = get(ws, "data_residency", "default_inference_geo")
        if default is not None and default not in required:
            yield Hit(str(ws["id"]), f"workspace {label(ws)} defaults to inference geo {default}")


def _cmk_missing(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    if not ctx.config.require_cmk:
        raise NotApplicable("org.require_cmk is false")
    for ws in live_workspaces(inv):
        if not ws.get("external_key_id"):
            yield Hit(str(ws["id"]), f"workspace {label(ws)} has no customer-managed key")


def _cmk_dangling(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    keys = {str(k.get("id")) for k in inv.items("external_keys")}
    for ws in live_workspaces(inv):
        ref = ws.get("external_key_id")
        if ref and str(ref) not in keys:
            yield Hit(
                str(ws["id"]),
                f"workspace {label(ws)} uses key config {ref}, which is "
                "not listed: its data may be unreadable",
            )


def _cmk_geo(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    keys = {str(k.get("id")): k for k in inv.items("external_keys")}
    for ws in live_workspaces(inv):
        key = keys.get(str(ws.get("external_key_id")))
        geo = get(ws, "data_residency", "workspace_geo")
        if key is not None and geo and key.get("geo") != geo:
            yield Hit(
                str(ws["id"]),
                f"workspace {label(ws)} stores data in {geo} with a key for {key.get('geo')}",
            )


def _cmk_unattached(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    for key in inv.items("external_keys"):
        if get(key, "attachment", "type") == "unattached":
            yield Hit(str(key["id"]), f"external key config {label(key)} is attached to nothing")


def _cmk_no_alert(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    if not any(get(k, "attachment", "type") == "attached" for k in inv.items("external_keys")):
        raise NotApplicable("no customer-managed key is attached")
    for hook in inv.items("webhooks"):
        if hook.get("state") == "enabled" and "external_key.failed" in (
            hook.get("enabled_events") or ()
        ):
            return
    yield Hit(
        "organization",
        "no enabled webhook receives external_key.failed: a failing "
        "customer-managed key would go unnoticed",
    )


def _telemetry_content(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    for dest in inv.items("telemetry_destinations"):
        if (
            get(dest, "state", "type") == "enabled"
            and get(dest, "traces", "enabled")
            and get(dest, "traces", "content_mode") == "content"
        ):
            yield Hit(
                str(dest["id"]),
                f"telemetry destination {label(dest)} exports prompt and "
                f"completion content to {dest.get('endpoint_url')}",
            )


def _telemetry_failing(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    for dest in inv.items("telemetry_destinations"):
        if get(dest, "state", "type") != "enabled":
            continue
        error_at = when(get(dest, "delivery_health", "last_error_at"))
        success_at = when(get(dest, "delivery_health", "last_success_at"))
        if error_at is not None and (success_at is None or success_at < error_at):
            error = get(dest, "delivery_health", "last_error")
            yield Hit(str(dest["id"]), f"telemetry destination {label(dest)} is failing: {error}")


def _telemetry_auto_disabled(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    for dest in inv.items("telemetry_destinations"):
        reason = get(dest, "state", "reason", "type")
        if get(dest, "state", "type") == "disabled" and reason and reason != "caller":
            yield Hit(
                str(dest["id"]),
                f"Anthropic disabled telemetry destination {label(dest)} ({reason})",
            )


def _telemetry_plain(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    for dest in inv.items("telemetry_destinations"):
        urls = [dest.get("endpoint_url"), get(dest, "traces", "endpoint_url")]
        if any(isinstance(u, str) and not u.lower().startswith("https://") for u in urls):
            yield Hit(str(dest["id"]), f"telemetry destination {label(dest)} is not HTTPS")


def _telemetry_none(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    if not any(get(d, "state", "type") == "enabled" for d in inv.items("telemetry_destinations")):
        yield Hit(
            "organization",
            "no telemetry destination is enabled: API activity reaches no monitoring",
        )


def _webhook_failing(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    for hook in inv.items("webhooks"):
        if hook.get("state") == "disabled" and hook.get("disabled_reason"):
            yield Hit(
                str(hook["id"]),
                f"Anthropic disabled webhook {label(hook)}: {hook.get('disabled_reason')}",
            )


def _webhook_disabled(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    for hook in inv.items("webhooks"):
        if hook.get("state") == "disabled" and not hook.get("disabled_reason"):
            yield Hit(str(hook["id"]), f"webhook {label(hook)} is disabled")


def _compliance_off(inv: OrgInventory, ctx: CheckContext) -> Iterator[Hit]:
    if not ctx.config.require_compliance_api:
        raise NotApplicable("org.require_compliance_api is false")
    settings = inv.singleton("compliance_settings") or {}
    if get(settings, "state", "type") != "enabled":
        yield Hit("organization", "the Compliance API is disabled")


_c = make_check


_SPEND_API = (
    'POST /v1/organizations/spend_limits {"scope": {"type": "workspace", "workspace_id": '
    '...}, "amount": "50000", "period": "monthly"} '
    "(client.beta.organization.spend_limits.set)."
)
_WS_API = "POST /v1/organizations/workspaces/{workspace_id} (client.organization.workspaces.update)"
_TEL_API = (
    "POST /v1/organizations/telemetry_destinations/{id} "
    "(client.beta.organization.telemetry_destinations.update)"
)
_HOOK_API = (
    'POST /v1/organizations/webhooks/{id} {"state": "enabled"} '
    "(client.beta.organization.webhooks.update)."
)

CHECKS: tuple[Check, ...] = (
    _c(
        "ORG-LIM-001",
        "Workspace without a spend limit",
        Severity.HIGH,
        _no_spend,
        ("workspaces", "spend_limits"),
        "A leaked key in an uncapped workspace spends without bound before anyone notices.",
        "Workspaces > (workspace) > Limits: set a monthly spend "
        "limit (`org check --fix` sets org.workspace_spend_limit).",
        _SPEND_API,
        ("CC6.1", "A1.1"),
        ("A.8.6", "A.5.15"),
        ("4.1",),
        "limits",
        ("workspace_spend_limit",),
        True,
    ),
    _c(
        "ORG-LIM-002",
        "Workspace without rate-limit overrides",
        Severity.LOW,
        _no_rate,
        ("workspaces", "workspace_rate_limits"),
        "Without its own rate limits, one workspace can "
        "exhaust the organisation's capacity for every other.",
        "Workspaces > (workspace) > Limits: set rate limits below the organisation's.",
        "POST /v1/organizations/workspaces/"
        "{workspace_id}/rate_limits/{rate_limit_id} (client.beta.organization.workspaces."
        "rate_limits.update).",
        ("A1.1",),
        ("A.8.6",),
        ("4.1",),
        "limits",
    ),
    _c(
        "ORG-LIM-003",
        "Organisation spend limit absent",
        Severity.HIGH,
        _org_spend,
        ("spend_limits",),
        "The organisation-wide cap is the last stop for runaway or abusive spend.",
        "Settings > Limits: set a spend limit and keep extra usage capped.",
        'POST /v1/organizations/spend_limits {"scope": {"type": "organization"}, "amount": ...}.',
        ("CC6.1", "A1.1"),
        ("A.8.6",),
        ("4.1",),
        "limits",
    ),
    _c(
        "ORG-LIM-004",
        "Workspace spend limit differs from the claudesec config",
        Severity.LOW,
        _spend_drift,
        ("spend_limits",),
        "A limit changed by hand drifts from the reviewed configuration.",
        "Workspaces > (workspace) > Limits: set the configured amount.",
        _SPEND_API,
        ("CC8.1",),
        ("A.8.9",),
        ("4.1",),
        "drift",
        ("workspace_spend_limit", "workspace_spend_period"),
    ),
    _c(
        "ORG-GEO-001",
        "Inference geo unrestricted where a region is required",
        Severity.HIGH,
        _geo_unrestricted,
        ("workspaces",),
        "Your policy requires a region; 'unrestricted' lets requests run anywhere.",
        "Workspaces > (workspace) > Data residency: allow only the required geos.",
        f"{_WS_API} with data_residency.allowed_inference_geos.",
        ("CC6.1", "C1.1"),
        ("A.5.34", "A.5.31"),
        ("3.12",),
        "residency",
        ("required_inference_geos",),
    ),
    _c(
        "ORG-GEO-002",
        "Inference allowed outside the required geos",
        Severity.HIGH,
        _geo_outside,
        ("workspaces",),
        "A geo outside the policy moves processing to a region you did not approve.",
        "Workspaces > (workspace) > Data residency: remove the extra geos.",
        f"{_WS_API} with data_residency.allowed_inference_geos.",
        ("CC6.1", "C1.1"),
        ("A.5.34", "A.5.31"),
        ("3.12",),
        "residency",
        ("required_inference_geos",),
    ),
    _c(
        "ORG-GEO-003",
        "Default inference geo outside the required geos",
        Severity.MEDIUM,
        _geo_default,
        ("workspaces",),
        "Requests that name no geo run in the default one.",
        "Workspaces > (workspace) > Data residency: set the default to a required geo.",
        f"{_WS_API} with data_residency.default_inference_geo.",
        ("C1.1",),
        ("A.5.34",),
        ("3.12",),
        "residency",
        ("required_inference_geos",),
    ),
    _c(
        "ORG-CMK-001",
        "Workspace without a customer-managed key where one is required",
        Severity.HIGH,
        _cmk_missing,
        ("workspaces",),
        "Your policy requires data encrypted under your own key; this workspace's data is not.",
        "Settings > Encryption: create a key config, then attach it to the workspace (write-once).",
        "POST /v1/organizations/"
        "external_keys, then POST /v1/organizations/workspaces/{workspace_id} "
        '{"external_key_id": ...}.',
        ("CC6.1", "CC6.7"),
        ("A.8.24",),
        ("3.11",),
        "encryption",
        ("require_cmk",),
    ),
    _c(
        "ORG-CMK-002",
        "Workspace references a missing key configuration",
        Severity.HIGH,
        _cmk_dangling,
        ("workspaces", "external_keys"),
        "Data encrypted under a key config that "
        "is gone or unreadable cannot be decrypted: the workspace fails.",
        "Settings > Encryption: check the key config and its KMS key policy; validate it.",
        "POST /v1/organizations/external_keys/{external_key_id}/validate.",
        ("CC6.1", "A1.2"),
        ("A.8.24",),
        ("3.11",),
        "encryption",
    ),
    _c(
        "ORG-CMK-003",
        "Customer-managed key in another geo than its workspace",
        Severity.MEDIUM,
        _cmk_geo,
        ("workspaces", "external_keys"),
        "A key from another region breaks the residency the workspace promises.",
        "Settings > Encryption: use a key config of the workspace's geo.",
        "GET /v1/organizations/external_keys/{external_key_id}.",
        ("C1.1",),
        ("A.8.24", "A.5.34"),
        ("3.11",),
        "encryption",
    ),
    _c(
        "ORG-CMK-004",
        "Unattached customer-managed key configuration",
        Severity.LOW,
        _cmk_unattached,
        ("external_keys",),
        "An inert key config is clutter that hides the ones in use.",
        "Settings > Encryption: delete the unattached config.",
        "DELETE /v1/organizations/external_keys/{external_key_id}.",
        ("CC6.1",),
        ("A.8.24",),
        ("3.11",),
        "encryption",
    ),
    _c(
        "ORG-CMK-005",
        "No alert on customer-managed key failure",
        Severity.MEDIUM,
        _cmk_no_alert,
        ("external_keys", "webhooks"),
        "When a KMS key stops working, requests fail; a webhook "
        "on external_key.failed says so at once.",
        "Settings > Webhooks: add an endpoint for external_key.failed and external_key.recovered.",
        "POST /v1/organizations/webhooks (client.beta.organization.webhooks.create).",
        ("CC7.2",),
        ("A.8.16",),
        ("8.11",),
        "encryption",
    ),
    _c(
        "ORG-TEL-001",
        "Telemetry destination exports prompt content",
        Severity.HIGH,
        _telemetry_content,
        ("telemetry_destinations",),
        "content mode copies prompts, "
        "completions and tool inputs to another system, with its own access and retention.",
        "Settings > Telemetry: set the destination's content mode to metadata only.",
        f"{_TEL_API} with traces.content_mode = 'metadata_only'.",
        ("CC6.1", "C1.1"),
        ("A.8.11", "A.8.12"),
        ("3.3",),
        "telemetry",
    ),
    _c(
        "ORG-TEL-002",
        "Telemetry destination failing",
        Severity.MEDIUM,
        _telemetry_failing,
        ("telemetry_destinations",),
        "Spans that fail to deliver are never re-sent: monitoring has a hole.",
        "Settings > Telemetry: check the endpoint, then send a test delivery.",
        "POST /v1/organizations/telemetry_destinations/{id}/test.",
        ("CC7.2",),
        ("A.8.15", "A.8.16"),
        ("8.2", "8.9"),
        "telemetry",
    ),
    _c(
        "ORG-TEL-003",
        "Telemetry destination disabled by Anthropic",
        Severity.MEDIUM,
        _telemetry_auto_disabled,
        ("telemetry_destinations",),
        "Anthropic stops deliveries "
        "after sustained failures or a redirect; nothing is exported until it is re-enabled.",
        "Settings > Telemetry: fix the endpoint and enable the destination.",
        f'{_TEL_API} with state = {{"type": "enabled"}}.',
        ("CC7.2",),
        ("A.8.15", "A.8.16"),
        ("8.2",),
        "telemetry",
    ),
    _c(
        "ORG-TEL-004",
        "Telemetry destination not on HTTPS",
        Severity.HIGH,
        _telemetry_plain,
        ("telemetry_destinations",),
        "Spans and header credentials would cross the network in clear.",
        "Settings > Telemetry: use an https:// endpoint.",
        f"{_TEL_API} with endpoint_url.",
        ("CC6.7",),
        ("A.8.24", "A.5.14"),
        ("3.10",),
        "telemetry",
    ),
    _c(
        "ORG-TEL-005",
        "No telemetry destination enabled",
        Severity.LOW,
        _telemetry_none,
        ("telemetry_destinations",),
        "Without an OpenTelemetry export, API activity reaches no monitoring system of yours.",
        "Settings > Telemetry: add a metadata-only destination.",
        "POST /v1/organizations/telemetry_destinations.",
        ("CC7.2",),
        ("A.8.15", "A.8.16"),
        ("8.2",),
        "telemetry",
    ),
    _c(
        "ORG-WHK-001",
        "Webhook endpoint disabled by Anthropic",
        Severity.MEDIUM,
        _webhook_failing,
        ("webhooks",),
        "Anthropic disabled it after failed deliveries: its events are lost.",
        "Settings > Webhooks: fix the endpoint and enable it.",
        _HOOK_API,
        ("CC7.2",),
        ("A.8.16",),
        ("8.11",),
        "monitoring",
    ),
    _c(
        "ORG-WHK-002",
        "Webhook endpoint disabled",
        Severity.LOW,
        _webhook_disabled,
        ("webhooks",),
        "A disabled endpoint delivers nothing: enable it or delete it.",
        "Settings > Webhooks: enable or delete the endpoint.",
        _HOOK_API,
        ("CC7.2",),
        ("A.8.16",),
        ("8.11",),
        "monitoring",
    ),
    _c(
        "ORG-CMP-001",
        "Compliance API off",
        Severity.MEDIUM,
        _compliance_off,
        ("compliance_settings",),
        "The Compliance API is how activity is exported for legal hold, eDiscovery and audit.",
        "Settings > Compliance: enable the Compliance API.",
        'POST /v1/organizations/compliance_settings {"state": {"type": "enabled"}} '
        "(client.beta.organization.compliance_settings.update).",
        ("CC7.2", "CC4.1"),
        ("A.8.15", "A.5.33"),
        ("8.2",),
        "monitoring",
        ("require_compliance_api",),
    ),
)
