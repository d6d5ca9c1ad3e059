"""Queries, tail, follow and summaries."""

from __future__ import annotations

from pathlib import Path

import pytest

from claudesec.audit import AuditEvent
from claudesec.audit.query import (
    DEFAULT_PRICES,
    EventFilter,
    PriceTable,
    follow,
    iter_events,
    summarise,
    tail,
)
from claudesec.errors import ConfigError, UsageError
from claudesec.timeparse import format_ns, parse_duration_ns, parse_time_ns

from .helpers import BASE_NS, DAY_NS, event, open_store


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "audit.db"
    with open_store(path) as store:
        for i in range(1, 31):
            store.append(event(i, time_ns=BASE_NS + (i % 3) * DAY_NS + i))
        store.append(
            AuditEvent(
                type="denial",
                time_ns=BASE_NS,
                user="eve",
                role="guest",
                model="claude-opus-4-5",
                decision="deny",
                reason="unknown user",
            )
        )
        store.append(
            AuditEvent(
                type="dlp_hit",
                time_ns=BASE_NS,
                user="eve",
                role="guest",
                model="claude-opus-4-5",
                decision="deny",
                dlp_kinds=("email",),
            )
        )
    return path


def _seqs(store_path: Path, where: EventFilter, limit: int | None = None) -> list[int]:
    with open_store(store_path) as store:
        return [e.seq for e in iter_events(store, where, limit=limit)]


def test_filters_combine(store_path: Path) -> None:
    assert _seqs(store_path, EventFilter(users=("eve",))) == [31, 32]
    assert _seqs(store_path, EventFilter(types=("denial", "dlp_hit"))) == [31, 32]
    assert _seqs(store_path, EventFilter(decisions=("deny",), types=("dlp_hit",))) == [32]
    assert _seqs(store_path, EventFilter(models=("claude-opus-*",))) == [31, 32]
    assert _seqs(store_path, EventFilter(users=("user1",), roles=("analyst",))) == [
        1,
        7,
        13,
        19,
        25,
    ]
    assert _seqs(store_path, EventFilter(min_tokens=155)) == [23, 24, 25, 26, 27, 28, 29, 30]
    day2 = EventFilter(since_ns=BASE_NS + 2 * DAY_NS, until_ns=BASE_NS + 3 * DAY_NS)
    assert _seqs(store_path, day2) == [2, 5, 8, 11, 14, 17, 20, 23, 26, 29]


def test_limit_keeps_the_newest_in_order(store_path: Path) -> None:
    assert _seqs(store_path, EventFilter(), limit=3) == [30, 31, 32]
    with open_store(store_path) as store:
        assert [e.seq for e in tail(store, 2)] == [31, 32]
        assert tail(store, 0) == []


def test_follow_yields_new_events_as_they_arrive(store_path: Path) -> None:
    with open_store(store_path) as store, open_store(store_path) as writer:
        batches = follow(store, 32, poll_s=0, sleep=lambda _: writer.append(event(99)))
        batch = next(batches)
        assert [e.seq for e in batch] == [33]


def test_summary_by_user_counts_calls_tokens_denials_dlp_and_cost(store_path: Path) -> None:
    with open_store(store_path) as store:
        result = summarise(store, "user")
    rows = {r.key: r for r in result.rows}
    assert set(rows) == {"user0", "user1", "user2", "eve"}
    eve = rows["eve"]
    assert (eve.calls, eve.events, eve.denials, eve.dlp_hits) == (0, 2, 2, 1)
    user1 = rows["user1"]
    assert user1.calls == 10
    assert user1.input_tokens == sum(100 + i for i in range(1, 31) if i % 3 == 1)
    assert result.total.events == 32
    assert result.price_source == "built-in"
    expected = sum(
        ((100 + i) * (1.0 if i % 2 else 3.0) + (10 + i) * (5.0 if i % 2 else 15.0)) / 1e6
        for i in range(1, 31)
    )
    assert result.total.cost_usd == pytest.approx(expected)


def test_summary_by_day_model_role_and_top(store_path: Path) -> None:
    with open_store(store_path) as store:
        by_day = summarise(store, "day")
        assert [r.key for r in by_day.rows] == [
            format_ns(BASE_NS + d * DAY_NS)[:10] for d in range(3)
        ]
        by_model = summarise(store, "model", top=1)
        assert len(by_model.rows) == 1 and by_model.groups == 3
        by_role = summarise(store, "role", since_ns=BASE_NS + DAY_NS)
        assert by_role.total.events == 20
        with pytest.raises(ConfigError):
            summarise(store, "prompt")


def test_configured_prices_replace_the_defaults_and_unknown_models_are_flagged(
    store_path: Path,
) -> None:
    with open_store(store_path) as store:
        result = summarise(
            store, "model", prices={"claude-haiku-*:input": 1000.0, "claude-haiku-*:output": 0.0}
        )
    assert result.price_source == "config"
    assert "claude-sonnet-4-5" in result.unpriced_models
    haiku = next(r for r in result.rows if r.key == "claude-haiku-4-5")
    assert haiku.cost_usd == pytest.approx(sum(100 + i for i in range(1, 31, 2)) / 1000)


def test_price_table_prefers_the_most_specific_glob() -> None:
    table = PriceTable(DEFAULT_PRICES)
    assert table.price("claude-opus-4-5-20251101") == (5.0, 25.0)
    assert table.price("claude-opus-4-1-20250805") == (15.0, 75.0)
    assert table.price("claude-3-5-haiku-20241022") == (0.8, 4.0)
    assert table.price("gpt-4") is None
    with pytest.raises(ConfigError):
        PriceTable({"claude-*": 1.0})


def test_time_parsing() -> None:
    now = 1_800_000_000 * 10**9
    assert parse_time_ns("2h", now_ns=now) == now - 7200 * 10**9
    assert parse_time_ns("7d", now_ns=now) == now - 7 * 86400 * 10**9
    assert parse_time_ns("2026-01-31") == 1_769_817_600 * 10**9
    assert parse_time_ns("2026-01-31T01:00:00Z") == (1_769_817_600 + 3600) * 10**9
    assert parse_time_ns("2026-01-31T02:00:00+01:00") == (1_769_817_600 + 3600) * 10**9
    assert parse_time_ns("now", now_ns=now) == now
    assert parse_time_ns("today", now_ns=now) % (86400 * 10**9) == 0
    assert parse_duration_ns("90d") == 90 * 86400 * 10**9
    for bad in ("yesterday-ish", "2h ago", ""):
        with pytest.raises(UsageError):
            parse_time_ns(bad)
    with pytest.raises(UsageError):
        parse_duration_ns("90")
