"""Retention: prune only up to a checkpoint, keep it as the anchor, log the prune."""

from __future__ import annotations

from pathlib import Path

import pytest

from claudesec.audit import AuditStore
from claudesec.audit.query import summarise
from claudesec.audit.verify import verify_store
from claudesec.errors import CheckFailed

from .helpers import BASE_NS, DAY_NS, event, open_store, raw


def _aged_store(path: Path) -> AuditStore:
    """40 events: 1-25 on day 0, 26-40 on day 100; checkpoints every 10."""
    store = open_store(path, checkpoint_every=10)
    for i in range(1, 41):
        day = 0 if i <= 25 else 100
        store.append(event(i, time_ns=BASE_NS + day * DAY_NS + i))
    return store


def test_prune_stops_at_the_last_checkpoint_before_the_cutoff(tmp_path: Path) -> None:
    store = _aged_store(tmp_path / "audit.db")
    result = store.prune(older_than_ns=BASE_NS + 50 * DAY_NS)
    assert result.deleted == 20  # not 25: record 20 is the last checkpoint before the cutoff
    assert result.through_seq == 20
    assert result.anchor is not None and result.anchor.number == 2
    assert result.record is not None and result.record.seq == 41
    pruned = store.get(41)
    assert pruned is not None
    assert pruned.event.type == "prune"
    assert pruned.event.extra["pruned_records"] == 20
    assert store.get(20) is None and store.get(21) is not None
    report = verify_store(store)
    assert report.ok, report.problems
    assert (report.first_seq, report.last_seq, report.pruned_through) == (21, 41, 20)
    store.close()


def test_rollups_follow_the_prune(tmp_path: Path) -> None:
    store = _aged_store(tmp_path / "audit.db")
    store.prune(older_than_ns=BASE_NS + 50 * DAY_NS)
    total = summarise(store, "user").total
    assert total.events == 21  # 20 kept calls + the prune event
    assert verify_store(store).ok  # includes the rollup recount
    store.close()


def test_appends_after_a_prune_chain_from_the_kept_records(tmp_path: Path) -> None:
    store = _aged_store(tmp_path / "audit.db")
    store.prune(older_than_ns=BASE_NS + 50 * DAY_NS)
    store.close()
    with open_store(tmp_path / "audit.db", checkpoint_every=10) as again:
        assert again.append(event(99)).seq == 42
        assert verify_store(again).ok


def test_prune_everything_up_to_the_head(tmp_path: Path) -> None:
    store = open_store(tmp_path / "audit.db", checkpoint_every=10)
    for i in range(1, 21):
        store.append(event(i, time_ns=BASE_NS + i))
    result = store.prune(older_than_ns=BASE_NS + DAY_NS)
    assert (result.deleted, result.through_seq) == (20, 20)
    assert verify_store(store).ok
    assert store.prune(older_than_ns=BASE_NS + DAY_NS).deleted == 0  # idempotent
    store.close()


def test_nothing_to_prune_writes_nothing(tmp_path: Path) -> None:
    store = _aged_store(tmp_path / "audit.db")
    result = store.prune(older_than_ns=BASE_NS - DAY_NS)
    assert (result.deleted, result.record) == (0, None)
    assert store.head().seq == 40
    store.close()


def test_prune_refuses_to_destroy_evidence_of_tampering(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    _aged_store(path).close()
    with raw(path) as conn:
        conn.execute("UPDATE events SET body = replace(body, 'user1', 'x') WHERE seq = 4")
    with open_store(path) as store, pytest.raises(CheckFailed, match="damaged"):
        store.prune(older_than_ns=BASE_NS + 50 * DAY_NS)
    with raw(path) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 40


def test_a_second_prune_builds_on_the_first(tmp_path: Path) -> None:
    store = _aged_store(tmp_path / "audit.db")
    assert store.prune(older_than_ns=BASE_NS + 15).through_seq == 10
    assert store.prune(older_than_ns=BASE_NS + 50 * DAY_NS).through_seq == 20
    report = verify_store(store)
    assert report.ok, report.problems
    assert (report.first_seq, report.pruned_through) == (21, 20)
    store.close()


def test_the_meta_hints_a_prune_leaves_are_not_needed_to_prove_it(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    with _aged_store(path) as store:
        store.prune(older_than_ns=BASE_NS + 50 * DAY_NS)
    with raw(path) as conn:
        conn.execute(
            "DELETE FROM meta WHERE key IN ('prune_event_seq', 'pruned_through_checkpoint')"
        )
    with AuditStore.open(path, readonly=True) as store:
        report = verify_store(store)
    assert report.ok, report.problems
    assert report.pruned_through == 20


def test_prune_needs_the_signing_key(tmp_path: Path) -> None:
    from claudesec.errors import StoreError

    path = tmp_path / "audit.db"
    _aged_store(path).close()
    with AuditStore.open(path, checkpoint_every=0) as store, pytest.raises(StoreError):
        store.prune(older_than_ns=BASE_NS + 50 * DAY_NS)
