"""OCSF 1.8.0 API Activity and ECS documents, checked field by field."""

from __future__ import annotations

import json

from claudesec import __version__
from claudesec.audit.events import AuditEvent
from claudesec.audit.export.ecs import to_ecs
from claudesec.audit.export.interface import ExportItem
from claudesec.audit.export.ocsf import to_ocsf

STORE_ID = "ab" * 16
T_NS = 1_780_000_000_123_456_789


def item(seq: int = 7, **fields: object) -> ExportItem:
    values: dict[str, object] = {
        "type": "call",
        "time_ns": T_NS,
        "user": "alice",
        "role": "analyst",
        "identity_source": "oidc",
        "model": "claude-sonnet-4-6",
        "prompt_hash": "0" * 64,
        "input_tokens": 1200,
        "output_tokens": 300,
        "latency_ms": 812.4,
        "stop_reason": "end_turn",
        "decision": "allow",
        "request_id": "req_011",
        "host": "web-1",
        "app": "helpdesk",
    }
    values.update(fields)
    return ExportItem(seq, "cd" * 32, AuditEvent(**values), STORE_ID)  # type: ignore[arg-type]


def test_ocsf_allowed_call_maps_every_field() -> None:
    doc = to_ocsf(item())
    assert doc["class_uid"] == 6003
    assert doc["class_name"] == "API Activity"
    assert doc["category_uid"] == 6
    assert doc["category_name"] == "Application Activity"
    assert doc["activity_id"] == 1
    assert doc["activity_name"] == "Create"
    assert doc["type_uid"] == 600301
    assert doc["type_name"] == "API Activity: Create"
    assert doc["time"] == T_NS // 1_000_000
    assert doc["severity_id"] == 1 and doc["severity"] == "Informational"
    assert doc["status_id"] == 1 and doc["status"] == "Success"
    assert doc["duration"] == 812
    assert doc["metadata"] == {
        "version": "1.8.0",
        "uid": f"{STORE_ID}-7",
        "sequence": 7,
        "event_code": "call",
        "log_name": "claudesec.audit",
        "profiles": ["ai_operation"],
        "product": {"name": "claudesec", "vendor_name": "claudesec", "version": __version__},
    }
    assert doc["actor"] == {"user": {"uid": "alice", "name": "alice"}, "app_name": "helpdesk"}
    assert doc["api"] == {
        "operation": "messages.create",
        "service": {"name": "Anthropic Messages API"},
        "request": {"uid": "req_011"},
    }
    assert doc["src_endpoint"] == {"hostname": "web-1"}
    assert doc["ai_model"] == {"name": "claude-sonnet-4-6", "ai_provider": "Anthropic"}
    assert doc["message_context"] == {
        "ai_role_id": 1,
        "ai_role": "User",
        "service": {"name": "Anthropic Messages API"},
        "prompt_tokens": 1200,
        "completion_tokens": 300,
        "total_tokens": 1500,
    }
    assert doc["unmapped"]["claudesec"] == {
        "seq": 7,
        "rec_hash": "cd" * 32,
        "store_id": STORE_ID,
        "decision": "allow",
        "role": "analyst",
        "identity_source": "oidc",
        "prompt_hash": "0" * 64,
        "stop_reason": "end_turn",
        "type": "call",
    }
    assert "status_detail" not in doc


def test_ocsf_denial_and_dlp_are_failures_with_severity() -> None:
    denied = to_ocsf(item(type="denial", decision="deny", reason="model not allowed"))
    assert denied["status_id"] == 2 and denied["status"] == "Failure"
    assert denied["severity_id"] == 3 and denied["severity"] == "Medium"
    assert denied["status_detail"] == "model not allowed"
    assert denied["activity_id"] == 1
    dlp = to_ocsf(item(type="dlp_hit", decision="deny", dlp_kinds=("anthropic-api-key",)))
    assert dlp["severity_id"] == 4 and dlp["severity"] == "High"
    assert dlp["unmapped"]["claudesec"]["dlp_kinds"] == ["anthropic-api-key"]


def test_ocsf_admin_events_are_other_activity_without_ai_profile() -> None:
    doc = to_ocsf(
        ExportItem(
            3,
            "ee" * 32,
            AuditEvent(type="key_rotation", time_ns=T_NS, extra={"key_id": "k1"}),
            STORE_ID,
        )
    )
    assert doc["activity_id"] == 99 and doc["type_uid"] == 600399
    assert doc["activity_name"] == "key_rotation"
    assert doc["status_id"] == 0
    assert doc["api"] == {"operation": "key_rotation", "service": {"name": "claudesec"}}
    assert doc["actor"] == {"app_name": "claudesec"}
    assert doc["src_endpoint"] == {"name": "unknown"}
    assert doc["metadata"]["profiles"] == []
    assert "ai_model" not in doc and "message_context" not in doc
    assert doc["unmapped"]["claudesec"]["extra"] == {"key_id": "k1"}


def test_ecs_document_maps_every_field() -> None:
    doc = to_ecs(item())
    assert doc["@timestamp"] == "2026-05-28T20:26:40.123456Z"
    assert doc["ecs"] == {"version": "9.0.0"}
    assert doc["event"] == {
        "kind": "event",
        "category": ["api"],
        "type": ["access", "allowed"],
        "action": "call",
        "outcome": "success",
        "id": f"{STORE_ID}-7",
        "sequence": 7,
        "severity": 1,
        "dataset": "claudesec.audit",
        "module": "claudesec",
        "provider": "claudesec",
        "duration": 812_400_000,
    }
    assert doc["user"] == {"id": "alice", "name": "alice", "roles": ["analyst"]}
    assert doc["host"] == {"name": "web-1", "hostname": "web-1"}
    assert doc["service"] == {"name": "helpdesk"}
    assert doc["http"] == {"request": {"id": "req_011"}}
    assert doc["gen_ai"] == {
        "system": "anthropic",
        "operation": {"name": "chat"},
        "request": {"model": "claude-sonnet-4-6"},
        "usage": {"input_tokens": 1200, "output_tokens": 300},
        "response": {"finish_reasons": ["end_turn"]},
    }
    assert doc["claudesec"]["seq"] == 7 and doc["claudesec"]["decision"] == "allow"
    assert doc["observer"]["product"] == "claudesec"


def test_ecs_denial_is_a_denied_failure() -> None:
    doc = to_ecs(item(type="denial", decision="deny", reason="unknown user"))
    assert doc["event"]["type"] == ["access", "denied"]
    assert doc["event"]["outcome"] == "failure"
    assert doc["event"]["reason"] == "unknown user"


def test_exports_carry_no_prompt_text_only_the_hmac() -> None:
    for doc in (to_ocsf(item()), to_ecs(item())):
        text = json.dumps(doc)
        assert "prompt" not in text.replace("prompt_hash", "").replace("prompt_tokens", "")
