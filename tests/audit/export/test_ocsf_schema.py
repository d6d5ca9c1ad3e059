"""Every OCSF event the mapper emits validates against the published OCSF 1.7.0 schema.

``pydantic-ocsf`` builds its models from the schema files OCSF publishes (1.7.0 is its
latest): types, required attributes, enums and the class/type uid arithmetic are checked by
the schema, not by us. Our events are OCSF 1.8.0; the attributes 1.8.0 added (the
``ai_operation`` profile) are unknown to 1.7.0 and show up as extras. The test pins that
list, so a new attribute beyond 1.7.0 is a decision (and a line in docs/export.md), never an
accident.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from claudesec.audit.events import Decision, EventType
from claudesec.audit.export.interface import ExportItem
from claudesec.audit.export.ocsf import to_ocsf
from tests.audit.helpers import event

# docs/export.md lists these: 1.8.0 attributes of API Activity that 1.7.0 does not have.
BEYOND_1_7_0 = frozenset({"ai_model", "message_context"})


def api_activity() -> Any:
    from ocsf.v1_7_0 import events  # pydantic-ocsf, in the test extra

    return events.ApiActivity


def extras(model: Any, path: str = "") -> set[str]:
    """Dotted paths of every attribute the schema does not define, at any depth."""
    from pydantic import BaseModel

    found = {path + key for key in (model.model_extra or {})}
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        values = value if isinstance(value, list) else [value]
        for child in values:
            if isinstance(child, BaseModel):
                found |= extras(child, f"{path}{field.alias or name}.")
    return found


def variants() -> list[ExportItem]:
    """One record per event type x decision, plus the optional fields on and off."""
    items = []
    pairs = itertools.product(EventType, [*Decision, None])
    for seq, (kind, decision) in enumerate(pairs, start=1):
        fields: dict[str, Any] = {"type": kind.value, "decision": decision or ""}
        if seq % 2:
            fields.update(user="", model="", host="", request_id="", latency_ms=0.0)
            fields.update(input_tokens=0, output_tokens=0)
        if kind is EventType.DLP_HIT or seq % 3 == 0:
            fields["dlp_kinds"] = ["anthropic_key"]
        if decision is Decision.DENY:
            fields["reason"] = "policy.model_not_allowed"
        if seq % 4 == 0:
            fields["upstream"] = {"kind": "federation", "issuer": "https://idp", "rule_id": "r"}
        items.append(ExportItem(seq, "ab" * 32, event(seq, **fields), "cd" * 16))
    return items


@pytest.mark.parametrize("item", variants(), ids=lambda i: f"{i.event.type}-{i.event.decision}")
def test_every_event_kind_validates_against_ocsf_1_7_0(item: ExportItem) -> None:
    model = api_activity().model_validate(to_ocsf(item))
    beyond = {path for path in extras(model) if not path.startswith("unmapped.")}
    assert beyond <= BEYOND_1_7_0, beyond - BEYOND_1_7_0
    if item.event.type in ("call", "denial", "dlp_hit") and item.event.model:
        assert beyond == BEYOND_1_7_0


@pytest.mark.parametrize(
    ("field", "value"),
    [("activity_id", 42), ("severity_id", "high"), ("type_uid", 1), ("time", "yesterday")],
)
def test_the_schema_check_has_teeth(field: str, value: object) -> None:
    from pydantic import ValidationError

    doc = to_ocsf(variants()[0])
    doc[field] = value
    with pytest.raises(ValidationError):
        api_activity().model_validate(doc)


def test_a_missing_required_attribute_fails() -> None:
    from pydantic import ValidationError

    doc = to_ocsf(variants()[0])
    del doc["actor"]
    with pytest.raises(ValidationError):
        api_activity().model_validate(doc)
