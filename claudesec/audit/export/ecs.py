"""Audit records as Elastic Common Schema (ECS 9.0) documents, for Elasticsearch sinks.

Categorisation uses ECS's ``api`` category (expected types: access, allowed, denied, info...).
Model and token fields use ECS's ``gen_ai.*`` field set (adopted from OpenTelemetry's GenAI
semantic conventions): ``gen_ai.system``, ``gen_ai.request.model``,
``gen_ai.usage.input_tokens``/``output_tokens`` and ``gen_ai.response.finish_reasons``.
claudesec-specific facts live under the custom ``claudesec.*`` namespace, as ECS advises for
fields it does not define.
"""

from __future__ import annotations

from typing import Any

from claudesec import __version__
from claudesec.audit.events import Decision, EventType
from claudesec.audit.export.interface import ExportItem
from claudesec.audit.export.ocsf import (
    STATUS_FAILURE,
    STATUS_SUCCESS,
    extra_fields,
    is_call,
    severity_id,
    status_id,
    summary,
)
from claudesec.timeparse import format_ns

ECS_VERSION = "9.0.0"
_OUTCOMES = {STATUS_SUCCESS: "success", STATUS_FAILURE: "failure"}


def event_types(item: ExportItem) -> list[str]:
    """ECS ``event.type`` values for the ``api`` category."""
    event = item.event
    if not is_call(item):
        return ["change"] if event.type in (EventType.KEY_ROTATION, EventType.PRUNE) else ["info"]
    if event.decision == Decision.DENY or event.type == EventType.DENIAL:
        return ["access", "denied"]
    if event.decision in (Decision.ALLOW, Decision.REDACT):
        return ["access", "allowed"]
    return ["access"]


def to_ecs(item: ExportItem) -> dict[str, Any]:
    """The ECS document for one stored record."""
    event = item.event
    ecs_event: dict[str, Any] = {
        "kind": "event",
        "category": ["api"],
        "type": event_types(item),
        "action": event.type,
        "outcome": _OUTCOMES.get(status_id(item), "unknown"),
        "id": item.uid,
        "sequence": item.seq,
        "severity": severity_id(item),
        "dataset": "claudesec.audit",
        "module": "claudesec",
        "provider": "claudesec",
    }
    if event.reason:
        ecs_event["reason"] = event.reason
    if event.latency_ms:
        ecs_event["duration"] = round(event.latency_ms * 1_000_000)  # ECS wants nanoseconds
    doc: dict[str, Any] = {
        "@timestamp": format_ns(event.time_ns, precise=True),
        "ecs": {"version": ECS_VERSION},
        "message": summary(item),
        "event": ecs_event,
        "observer": {"vendor": "claudesec", "product": "claudesec", "version": __version__},
    }
    if event.user or event.role:
        user: dict[str, Any] = {}
        if event.user:
            user["id"] = event.user
            user["name"] = event.user
        if event.role:
            user["roles"] = [event.role]
        doc["user"] = user
    if event.host:
        doc["host"] = {"name": event.host, "hostname": event.host}
    if event.app:
        doc["service"] = {"name": event.app}
    if event.request_id:
        doc["http"] = {"request": {"id": event.request_id}}
    if is_call(item):
        gen_ai: dict[str, Any] = {"system": "anthropic", "operation": {"name": "chat"}}
        if event.model:
            gen_ai["request"] = {"model": event.model}
        if event.input_tokens or event.output_tokens:
            gen_ai["usage"] = {
                "input_tokens": event.input_tokens,
                "output_tokens": event.output_tokens,
            }
        if event.stop_reason:
            gen_ai["response"] = {"finish_reasons": [event.stop_reason]}
        doc["gen_ai"] = gen_ai
    own: dict[str, Any] = {"seq": item.seq, "rec_hash": item.rec_hash, "store_id": item.store_id}
    for name in ("decision", "identity_source", "prompt_hash"):
        value = getattr(event, name)
        if value:
            own[name] = value
    if event.upstream:
        # The credential the call went upstream on: a federated identity or a key's hint.
        own["upstream"] = dict(event.upstream)
    if event.dlp_kinds:
        own["dlp_kinds"] = list(event.dlp_kinds)
    if event.extra:
        own["extra"] = extra_fields(item)
    doc["claudesec"] = own
    return doc
