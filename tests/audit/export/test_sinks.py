"""Each HTTP sink against a loopback server that checks the real wire format, through the runner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from claudesec.audit.export import build_sink
from claudesec.audit.export.cursor import CursorStore
from claudesec.audit.export.interface import Sink
from claudesec.audit.export.runner import DeadLetter, Exporter, RetryPolicy
from claudesec.config import SinkConfig
from claudesec.errors import ExternalServiceError
from tests.audit.export.helpers import make_store
from tests.fixtures.sinks import DatadogServer, ElasticServer, HecServer

FAST = RetryPolicy(max_attempts=4, initial_s=0.001, max_s=0.01)


def exporter(tmp_path: Path, sink: Sink, n: int = 25, batch: int = 10) -> Exporter:
    store = make_store(tmp_path / "audit.db", n)
    return Exporter(
        store,
        sink,
        CursorStore(tmp_path / "cursors.db"),
        DeadLetter(tmp_path / f"{sink.name}.dl.jsonl"),
        batch_size=batch,
        retry=FAST,
        sleep=lambda s: None,
    )


def dead_letters(tmp_path: Path, name: str) -> list[dict[str, Any]]:
    path = tmp_path / f"{name}.dl.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


# --------------------------------------------------------------------------- Splunk HEC


def hec_sink(server: HecServer, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> Sink:
    monkeypatch.setenv("TEST_HEC_TOKEN", server.token)
    config = SinkConfig(
        type="splunk", url=server.url, token_source="env:TEST_HEC_TOKEN", index="claude", **kw
    )
    return build_sink("splunk", config)


def test_hec_ships_every_event_once_in_batches(
    tmp_path: Path, hec_server: HecServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    stats = exporter(tmp_path, hec_sink(hec_server, monkeypatch)).run()
    assert stats.shipped == 25 and stats.batches == 3 and stats.cursor == 25
    assert [e["event"]["metadata"]["sequence"] for e in hec_server.events] == list(range(1, 26))
    first = hec_server.events[0]
    assert first["sourcetype"] == "claudesec:ocsf" and first["index"] == "claude"
    assert first["event"]["class_uid"] == 6003
    assert isinstance(first["time"], float)
    assert all(r.headers["content-type"] == "application/json" for r in hec_server.requests)


def test_hec_retries_5xx_429_and_dropped_connections(
    tmp_path: Path, hec_server: HecServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    hec_server.fail(503)
    hec_server.fail(429, retry_after=0)
    hec_server.fail("drop")
    stats = exporter(tmp_path, hec_sink(hec_server, monkeypatch)).run()
    assert stats.retries == 3
    assert [e["event"]["metadata"]["sequence"] for e in hec_server.events] == list(range(1, 26))


def test_hec_gives_up_after_max_attempts_and_keeps_the_cursor(
    tmp_path: Path, hec_server: HecServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    export = exporter(tmp_path, hec_sink(hec_server, monkeypatch))
    hec_server.fail(500, times=10)
    with pytest.raises(ExternalServiceError, match="still failing after 4 attempts"):
        export.run()
    assert export.position() == 0
    assert "HTTP 500" in export.cursors.get("splunk").last_error  # type: ignore[union-attr]
    hec_server.state.faults.clear()
    assert export.run().shipped == 25


def test_hec_bad_token_stops_without_dead_lettering(
    tmp_path: Path, hec_server: HecServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = hec_sink(hec_server, monkeypatch)
    sink._headers["Authorization"] = "Splunk wrong"  # type: ignore[attr-defined]
    export = exporter(tmp_path, sink)
    with pytest.raises(ExternalServiceError, match="HTTP 403"):
        export.run()
    assert export.position() == 0
    assert dead_letters(tmp_path, "splunk") == []


def test_hec_invalid_event_goes_to_dead_letter_and_the_rest_is_resent(
    tmp_path: Path, hec_server: HecServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    hec_server.invalid_event = 3
    stats = exporter(tmp_path, hec_sink(hec_server, monkeypatch)).run()
    shipped = [e["event"]["metadata"]["sequence"] for e in hec_server.events]
    assert shipped == [s for s in range(1, 26) if s != 4]
    assert stats.dead_lettered == 1 and stats.cursor == 25
    [letter] = dead_letters(tmp_path, "splunk")
    assert letter["seq"] == 4 and "Invalid data format" in letter["reason"]
    assert letter["payload"]["event"]["metadata"]["sequence"] == 4


def test_hec_indexer_acknowledgement_waits_for_the_ack(
    tmp_path: Path, hec_server: HecServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    hec_server.ack_polls_before_true = 2
    sink = hec_sink(hec_server, monkeypatch, hec_ack=True)
    sink._sleep = lambda s: None  # type: ignore[attr-defined]
    stats = exporter(tmp_path, sink).run()
    assert stats.shipped == 25
    acks = [r for r in hec_server.requests if r.path.startswith("/services/collector/ack")]
    assert len(acks) == 3 * 3  # two "not yet" and one "done" per batch
    channels = {r.headers["x-splunk-request-channel"] for r in hec_server.requests}
    assert len(channels) == 1


# --------------------------------------------------------------------------- Elasticsearch


def elastic_sink(server: ElasticServer, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> Sink:
    monkeypatch.setenv("TEST_ES_KEY", server.token)
    return build_sink(
        "es", SinkConfig(type="elastic", url=server.url, token_source="env:TEST_ES_KEY", **kw)
    )


def test_elastic_bulk_uses_deterministic_ids_and_daily_indices(
    tmp_path: Path, elastic_server: ElasticServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    export = exporter(tmp_path, elastic_sink(elastic_server, monkeypatch))
    export.run()
    store_id = export.store_id
    assert set(elastic_server.docs) == {
        ("claude-logs-2026.05.28", f"{store_id}-{seq}") for seq in range(1, 26)
    }
    doc = elastic_server.docs[("claude-logs-2026.05.28", f"{store_id}-1")]
    assert doc["event"]["category"] == ["api"] and doc["ecs"]["version"] == "9.0.0"


def test_elastic_resend_is_idempotent(
    tmp_path: Path, elastic_server: ElasticServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    export = exporter(tmp_path, elastic_sink(elastic_server, monkeypatch))
    export.run()
    export.seek(0)  # everything again, as after a lost cursor
    stats = export.run()
    assert stats.shipped == 25 and stats.dead_lettered == 0
    assert len(elastic_server.docs) == 25


def test_elastic_partial_failure_retries_only_failed_items_and_dead_letters_bad_ones(
    tmp_path: Path, elastic_server: ElasticServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    elastic_server.item_errors = {1: 429, 2: 400, 5: 503}
    stats = exporter(tmp_path, elastic_sink(elastic_server, monkeypatch)).run()
    seqs = sorted(int(doc["claudesec"]["seq"]) for doc in elastic_server.docs.values())
    assert seqs == [s for s in range(1, 26) if s != 3]
    assert stats.dead_lettered == 1 and stats.retries == 1
    retried = elastic_server.requests[1].body.decode().splitlines()
    assert len(retried) == 4  # only items 2 and 6 went again
    [letter] = dead_letters(tmp_path, "es")
    assert letter["seq"] == 3 and "mapper_parsing_exception" in letter["reason"]


def test_elastic_basic_auth_and_custom_index_pattern(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = ElasticServer("pw-for-test", username="shipper").start()
    try:
        monkeypatch.setenv("TEST_ES_PW", server.token)
        sink = build_sink(
            "es",
            SinkConfig(
                type="elastic",
                url=server.url,
                username="shipper",
                token_source="env:TEST_ES_PW",
                index="ai-%Y.%m",
            ),
        )
        exporter(tmp_path, sink, n=3).run()
        assert {index for index, _ in server.docs} == {"ai-2026.05"}
    finally:
        server.stop()


# --------------------------------------------------------------------------- Datadog


def test_datadog_ships_json_arrays_with_the_api_key(
    tmp_path: Path, datadog_server: DatadogServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_DD_KEY", datadog_server.token)
    sink = build_sink(
        "dd",
        SinkConfig(
            type="datadog",
            url=datadog_server.url,
            token_source="env:TEST_DD_KEY",
            tags=("env:test",),
        ),
    )
    datadog_server.fail(500)
    stats = exporter(tmp_path, sink).run()
    assert stats.shipped == 25 and stats.retries == 1
    assert len(datadog_server.logs) == 25
    entry = datadog_server.logs[0]
    assert entry["ddsource"] == "claudesec" and entry["ddtags"] == "env:test"
    assert entry["class_uid"] == 6003 and entry["hostname"]


def test_missing_token_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from claudesec.errors import ConfigError

    with pytest.raises(
        ConfigError, match=r"TEST_NOT_SET named by export.sinks.dd.token_source is not set"
    ):
        build_sink("dd", SinkConfig(type="datadog", token_source="env:TEST_NOT_SET"))


# --------------------------------------------------------------------------- JSONL


def test_jsonl_file_is_exactly_once_across_a_lost_cursor_and_a_torn_line(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out.jsonl"
    sink = build_sink("file", SinkConfig(type="jsonl", path=str(out)))
    export = exporter(tmp_path, sink)
    export.run()
    with out.open("ab") as handle:
        handle.write(b'{"metadata":{"sequ')  # a kill in the middle of a write
    export.seek(0)
    export.run()
    lines = out.read_text().splitlines()
    assert [json.loads(line)["metadata"]["sequence"] for line in lines] == list(range(1, 26))
    assert oct(out.stat().st_mode & 0o777) == "0o600"


def test_an_event_with_a_lone_surrogate_is_exported_as_valid_utf8(tmp_path: Path) -> None:
    # The audit log holds whatever str a caller passed; the export must not stop on it.
    from claudesec.audit.export.interface import Encoded, ExportItem, Rejection
    from tests.audit.helpers import event

    sink = build_sink("file", SinkConfig(type="jsonl", path=str(tmp_path / "o.jsonl")))
    item = ExportItem(1, "00" * 32, event(1, user="mallory\ud800"), "ab" * 16)
    payload = sink.encode(item)
    assert "mallory\ufffd" in payload.decode("utf-8")
    # A sink's reason quoting a hostile reply is written to the dead-letter file intact.
    letters = DeadLetter(tmp_path / "dl.jsonl")
    letters.write("file", [(Rejection(1, "HTTP 400 \udc00"), Encoded(item, payload))])
    [line] = (tmp_path / "dl.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["reason"] == "HTTP 400 \ufffd"


@pytest.mark.parametrize(("status", "error"), [(403, "security_exception"), (404, "index_not")])
def test_elastic_forbidden_or_missing_index_stops_instead_of_dead_lettering(
    tmp_path: Path,
    elastic_server: ElasticServer,
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    error: str,
) -> None:
    # A role without write on the index answers 200 with every item 403: a verdict on the
    # sink, not on the events. Dead-lettering them all moved the cursor past the lot.
    elastic_server.item_errors = {position: status for position in range(10)}
    export = exporter(tmp_path, elastic_sink(elastic_server, monkeypatch))
    with pytest.raises(ExternalServiceError, match=error) as caught:
        export.run()
    assert caught.value.exit_code == 3
    assert export.position() == 0 and dead_letters(tmp_path, "es") == []


def test_elastic_item_without_a_known_verdict_is_retried_not_dead_lettered(
    tmp_path: Path, elastic_server: ElasticServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    elastic_server.item_errors = {1: 0, 2: 418}
    stats = exporter(tmp_path, elastic_sink(elastic_server, monkeypatch)).run()
    assert stats.dead_lettered == 0 and stats.retries == 1
    assert len(elastic_server.docs) == 25 and dead_letters(tmp_path, "es") == []
