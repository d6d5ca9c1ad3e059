"""The audit record's ``upstream`` field: additive (older records keep their bytes and their
chain), identifiers only (a whole credential is refused), and readable back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from claudesec.audit.events import AuditEvent, InvalidEvent
from claudesec.audit.verify import verify_store
from tests.fixtures.cli import RunCli
from tests.fixtures.keys import KeyFactory
from tests.guard.test_pipeline import open_store

FEDERATED = {
    "kind": "federation",
    "issuer": "https://token.actions.githubusercontent.com",
    "subject": "repo:acme/app:environment:prod",
    "rule_id": "fdrl_01",
    "organization_id": "00000000-0000-4000-8000-000000000000",
    "service_account_id": "svac_01",
    "workspace_id": "wrkspc_01",
}


def test_a_record_without_upstream_encodes_exactly_as_before() -> None:
    # The canonical form of a version-1 record written before the field existed.
    old = '{"time_ns":1,"type":"call","user":"alice","v":1}'
    event = AuditEvent.from_json(old)
    assert event.upstream == {}
    assert event.canonical_json() == old


def test_upstream_round_trips_and_leaves_out_empty_values() -> None:
    event = AuditEvent(type="call", time_ns=1, upstream={**FEDERATED, "workspace_id": ""})
    again = AuditEvent.from_json(event.canonical_json())
    assert dict(again.upstream) == {k: v for k, v in FEDERATED.items() if k != "workspace_id"}
    assert again.canonical_json() == event.canonical_json()
    assert "upstream" not in again.extra


def test_a_whole_key_cannot_be_recorded_as_upstream() -> None:
    with pytest.raises(InvalidEvent, match="credential"):
        AuditEvent(
            type="call",
            upstream={"kind": "api_key", "key_hint": KeyFactory().anthropic_api().value},
        )
    with pytest.raises(InvalidEvent):
        AuditEvent(type="call", upstream={"Kind!": "x"})
    with pytest.raises(InvalidEvent):
        AuditEvent(type="call", extra={"upstream": {"kind": "api_key"}})


def test_a_store_mixing_records_with_and_without_upstream_verifies(tmp_path: Path) -> None:
    with open_store(tmp_path / "audit.db") as store:
        store.append(AuditEvent(type="call", user="alice"))
        store.append(AuditEvent(type="call", user="bob", upstream=FEDERATED))
        store.append(AuditEvent(type="call", user="carol"))
        assert dict(store.get(2).event.upstream) == FEDERATED  # type: ignore[union-attr]
        assert verify_store(store).ok


def test_exports_carry_the_upstream_identity() -> None:
    from claudesec.audit.export.ecs import to_ecs
    from claudesec.audit.export.interface import ExportItem
    from claudesec.audit.export.ocsf import to_ocsf

    item = ExportItem(1, "ab" * 32, AuditEvent(type="call", time_ns=1, upstream=FEDERATED), "cd")
    assert to_ocsf(item)["unmapped"]["claudesec"]["upstream"] == FEDERATED
    assert to_ecs(item)["claudesec"]["upstream"] == FEDERATED
    plain = ExportItem(2, "ab" * 32, AuditEvent(type="call", time_ns=1), "cd")
    assert "upstream" not in to_ocsf(plain)["unmapped"]["claudesec"]


def test_logs_query_filters_on_the_upstream_credential(tmp_path: Path, run_cli: RunCli) -> None:
    with open_store(tmp_path / "audit.db") as store:
        store.append(AuditEvent(type="call", user="alice", upstream={"kind": "api_key"}))
        store.append(AuditEvent(type="call", user="bob", upstream=FEDERATED))
        store.append(
            AuditEvent(type="call", user="carol", upstream={**FEDERATED, "rule_id": "fdrl_02"})
        )
        store.append(AuditEvent(type="call", user="dave"))

    def users(*args: str) -> list[str]:
        result = run_cli(
            "logs", "query", "--store", str(tmp_path / "audit.db"), "--format", "json", *args
        )
        assert result.exit_code == 0, result.stderr
        return [row["user"] for row in json.loads(result.stdout)]

    assert users("--upstream", "kind=federation") == ["bob", "carol"]
    assert users("--upstream", "kind=federation", "--upstream", "rule_id=fdrl_02") == ["carol"]
    assert users("--upstream", "rule_id=fdrl_01", "--upstream", "rule_id=fdrl_02") == [
        "bob",
        "carol",
    ]
    assert users("--upstream", "subject=repo:acme/*") == ["bob", "carol"]
    bad = run_cli("logs", "query", "--store", str(tmp_path / "audit.db"), "--upstream", "x=1")
    assert bad.exit_code == 2 and "unknown upstream field 'x'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
