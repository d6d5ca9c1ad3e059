"""Audit records as OCSF 1.8.0 API Activity events (class 6003) with the ``ai_operation`` profile.

The canonical export shape. Field names follow the published OCSF 1.8.0 schema (ocsf-schema
release of March 2026): the base event and API Activity attributes, plus ``ai_model``
(``name``, ``ai_provider``) and ``message_context`` (``ai_role_id``, ``prompt_tokens``,
``completion_tokens``, ``total_tokens``, ``service``) that 1.8.0 added with the ``ai_operation``
profile. No package on PyPI ships the 1.8.0 schema with that profile (``ocsf-lib`` and
``ocsf-schema-compiler`` need the schema repository, ``ocsf-emitter`` stops at 1.5.0), so the
tests check the mapping field by field against those published names.

What OCSF has no attribute for (the hash chain position, the policy decision, the DLP kinds,
the prompt HMAC) goes under ``unmapped.claudesec``, which is OCSF's own place for it.

Never any prompt text: the store has none, and nothing here adds any.
"""

from __future__ import annotations

from typing import Any

from claudesec import __version__
from claudesec.audit.events import Decision, EventType
from claudesec.audit.export.interface import ExportItem

OCSF_VERSION = "1.8.0"
CATEGORY_UID = 6  # Application Activity
CLASS_UID = 6003  # API Activity
PROVIDER = "Anthropic"
MESSAGES_SERVICE = "Anthropic Messages API"
MESSAGES_OPERATION = "messages.create"

# API Activity activity_id: a Messages request creates a message; claudesec's own events
# (rotation, drill, prune) are none of create/read/update/delete.
ACTIVITY_CREATE = 1
ACTIVITY_OTHER = 99
_ACTIVITY_NAMES = {ACTIVITY_CREATE: "Create", ACTIVITY_OTHER: "Other"}

STATUS_UNKNOWN, STATUS_SUCCESS, STATUS_FAILURE = 0, 1, 2
_STATUS_NAMES = {STATUS_UNKNOWN: "Unknown", STATUS_SUCCESS: "Success", STATUS_FAILURE: "Failure"}

SEVERITY_INFORMATIONAL, SEVERITY_LOW, SEVERITY_MEDIUM, SEVERITY_HIGH = 1, 2, 3, 4
_SEVERITY_NAMES = {1: "Informational", 2: "Low", 3: "Medium", 4: "High"}

AI_ROLE_USER = 1  # message_context.ai_role_id: the human user initiating a request

_CALL_TYPES = frozenset({EventType.CALL, EventType.DENIAL, EventType.DLP_HIT})


def is_call(item: ExportItem) -> bool:
    """Whether the record is about a Claude API request (allowed, denied or DLP-flagged)."""
    return item.event.type in _CALL_TYPES


def status_id(item: ExportItem) -> int:
    decision = item.event.decision
    if decision in (Decision.ALLOW, Decision.REDACT):
        return STATUS_SUCCESS
    if decision in (Decision.DENY, Decision.ERROR) or item.event.type == EventType.DENIAL:
        return STATUS_FAILURE
    return STATUS_UNKNOWN


def severity_id(item: ExportItem) -> int:
    event = item.event
    if event.dlp_kinds or event.type == EventType.DLP_HIT:
        return SEVERITY_HIGH
    if event.decision == Decision.DENY or event.type == EventType.DENIAL:
        return SEVERITY_MEDIUM
    if event.decision == Decision.ERROR:
        return SEVERITY_LOW
    return SEVERITY_INFORMATIONAL


def to_ocsf(item: ExportItem) -> dict[str, Any]:
    """The OCSF API Activity event for one stored record."""
    event = item.event
    call = is_call(item)
    activity = ACTIVITY_CREATE if call else ACTIVITY_OTHER
    status = status_id(item)
    severity = severity_id(item)
    doc: dict[str, Any] = {
        "category_uid": CATEGORY_UID,
        "category_name": "Application Activity",
        "class_uid": CLASS_UID,
        "class_name": "API Activity",
        "activity_id": activity,
        "activity_name": _ACTIVITY_NAMES[activity] if call else event.type,
        "type_uid": CLASS_UID * 100 + activity,
        "type_name": f"API Activity: {_ACTIVITY_NAMES[activity]}",
        "severity_id": severity,
        "severity": _SEVERITY_NAMES[severity],
        "status_id": status,
        "status": _STATUS_NAMES[status],
        "time": event.time_ns // 1_000_000,
        "message": summary(item),
        "metadata": {
            "version": OCSF_VERSION,
            "uid": item.uid,
            "sequence": item.seq,
            "event_code": event.type,
            "log_name": "claudesec.audit",
            "profiles": ["ai_operation"] if call else [],
            "product": {"name": "claudesec", "vendor_name": "claudesec", "version": __version__},
        },
        "actor": _actor(item),
        "api": _api(item),
        # Required by API Activity; the record's host is where the call came from.
        "src_endpoint": {"hostname": event.host} if event.host else {"name": "unknown"},
        "unmapped": {"claudesec": _unmapped(item)},
    }
    if event.reason:
        doc["status_detail"] = event.reason
    if event.latency_ms:
        doc["duration"] = round(event.latency_ms)
    if call and event.model:
        doc["ai_model"] = {"name": event.model, "ai_provider": PROVIDER}
    if call:
        context: dict[str, Any] = {
            "ai_role_id": AI_ROLE_USER,
            "ai_role": "User",
            "service": {"name": MESSAGES_SERVICE},
        }
        if event.input_tokens or event.output_tokens:
            context["prompt_tokens"] = event.input_tokens
            context["completion_tokens"] = event.output_tokens
            context["total_tokens"] = event.input_tokens + event.output_tokens
        doc["message_context"] = context
    return doc


def summary(item: ExportItem) -> str:
    """One human line: what happened, to whom, never any payload."""
    event = item.event
    parts = [event.type]
    if event.decision:
        parts.append(event.decision)
    if event.user:
        parts.append(f"user={event.user}")
    if event.model:
        parts.append(f"model={event.model}")
    if event.dlp_kinds:
        parts.append("dlp=" + ",".join(event.dlp_kinds))
    return " ".join(parts)


def _actor(item: ExportItem) -> dict[str, Any]:
    event = item.event
    actor: dict[str, Any] = {}
    if event.user:
        actor["user"] = {"uid": event.user, "name": event.user}
    if event.app:
        actor["app_name"] = event.app
    if not actor:
        actor["app_name"] = "claudesec"
    return actor


def _api(item: ExportItem) -> dict[str, Any]:
    event = item.event
    if is_call(item):
        api: dict[str, Any] = {
            "operation": MESSAGES_OPERATION,
            "service": {"name": MESSAGES_SERVICE},
        }
    else:
        api = {"operation": event.type, "service": {"name": "claudesec"}}
    if event.request_id:
        api["request"] = {"uid": event.request_id}
    return api


def _unmapped(item: ExportItem) -> dict[str, Any]:
    event = item.event
    data: dict[str, Any] = {"seq": item.seq, "rec_hash": item.rec_hash, "store_id": item.store_id}
    for name in ("decision", "role", "identity_source", "prompt_hash", "stop_reason", "type"):
        value = getattr(event, name)
        if value:
            data[name] = value
    if event.upstream:
        # The credential the call went upstream on: a federated identity or a key's hint.
        data["upstream"] = dict(event.upstream)
    if event.dlp_kinds:
        data["dlp_kinds"] = list(event.dlp_kinds)
    if event.extra:
        data["extra"] = extra_fields(item)
    return data


def extra_fields(item: ExportItem) -> dict[str, Any]:
    """The record's writer-specific fields as plain JSON values."""
    full = item.event.to_dict()
    return {key: full[key] for key in item.event.extra}
