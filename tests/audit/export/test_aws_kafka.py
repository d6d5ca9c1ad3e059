"""CloudWatch Logs and S3 Object Lock against moto's server; Kafka's delivery reports."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path
from typing import Any

import pytest

from claudesec.audit.export import build_sink
from claudesec.audit.export.cursor import CursorStore
from claudesec.audit.export.interface import Encoded, Sink, SinkRetry, SinkUnavailable
from claudesec.audit.export.runner import DeadLetter, Exporter, RetryPolicy
from claudesec.config import SinkConfig
from claudesec.errors import ExternalServiceError
from tests.audit.export.helpers import make_store
from tests.audit.helpers import event
from tests.fixtures.sinks import SilentServer

FAST = RetryPolicy(max_attempts=4, initial_s=0.001, max_s=0.01)


def run(tmp_path: Path, sink: Sink, n: int = 25, batch: int = 10, **kw: Any) -> Exporter:
    store = make_store(tmp_path / "audit.db", n, **kw)
    export = Exporter(
        store,
        sink,
        CursorStore(tmp_path / "c.db"),
        DeadLetter(tmp_path / "dl.jsonl"),
        batch_size=batch,
        retry=FAST,
        sleep=lambda s: None,
    )
    export.run()
    return export


def test_cloudwatch_creates_group_and_stream_and_ships_in_order(
    tmp_path: Path, aws_endpoint: str, aws_client: Any
) -> None:
    sink = build_sink(
        "cw",
        SinkConfig(
            type="cloudwatch",
            log_group="/claudesec/audit",
            log_stream="host-1",
            aws_region="us-east-1",
            aws_endpoint_url=aws_endpoint,
        ),
    )
    store = make_store(tmp_path / "audit.db", 0)
    now = time.time_ns()
    store.append_many(event(i, time_ns=now - (30 - i) * 10**6) for i in range(1, 26))
    export = Exporter(
        store,
        sink,
        CursorStore(tmp_path / "c.db"),
        DeadLetter(tmp_path / "d"),
        batch_size=10,
        retry=FAST,
        sleep=lambda s: None,
    )
    export.run()
    assert export.position() == 25
    logs = aws_client("logs")
    events = logs.get_log_events(
        logGroupName="/claudesec/audit", logStreamName="host-1", startFromHead=True
    )["events"]
    docs = [json.loads(e["message"]) for e in events]
    assert [d["metadata"]["sequence"] for d in docs] == list(range(1, 26))
    assert events[0]["timestamp"] == docs[0]["time"]


def test_cloudwatch_splits_batches_spanning_more_than_a_day(
    tmp_path: Path, aws_endpoint: str, aws_client: Any
) -> None:
    sink = build_sink(
        "cw",
        SinkConfig(
            type="cloudwatch",
            log_group="g",
            log_stream="s",
            aws_region="us-east-1",
            aws_endpoint_url=aws_endpoint,
        ),
    )
    store = make_store(tmp_path / "audit.db", 0)
    day = 86_400 * 10**9
    now = time.time_ns()
    # Two days apart: one request may only span 24 hours. The third is older than
    # CloudWatch accepts (14 days): rejected for good, into the dead-letter file.
    store.append_many(
        [event(1, time_ns=now - 2 * day), event(2, time_ns=now), event(3, time_ns=now - 30 * day)]
    )
    export = Exporter(
        store,
        sink,
        CursorStore(tmp_path / "c.db"),
        DeadLetter(tmp_path / "d"),
        retry=FAST,
        sleep=lambda s: None,
    )
    stats = export.run()
    assert stats.shipped == 2 and stats.dead_lettered == 1
    events = aws_client("logs").get_log_events(
        logGroupName="g", logStreamName="s", startFromHead=True
    )["events"]
    assert len(events) == 2


def test_s3_objects_are_locked_gzip_jsonl_with_deterministic_keys(
    tmp_path: Path, aws_endpoint: str, aws_client: Any
) -> None:
    s3 = aws_client("s3")
    s3.create_bucket(Bucket="audit-worm", ObjectLockEnabledForBucket=True)
    sink = build_sink(
        "s3",
        SinkConfig(
            type="s3",
            bucket="audit-worm",
            prefix="logs/",
            object_lock_mode="COMPLIANCE",
            object_lock_days=30,
            aws_region="us-east-1",
            aws_endpoint_url=aws_endpoint,
        ),
    )
    export = run(tmp_path, sink)
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="audit-worm")["Contents"])
    sid = export.store_id
    assert keys == [f"logs/2026/05/28/{sid}-{a:012d}.jsonl.gz" for a in (1, 11, 21)]
    head = s3.head_object(Bucket="audit-worm", Key=keys[0])
    assert head["ObjectLockMode"] == "COMPLIANCE"
    body = s3.get_object(Bucket="audit-worm", Key=keys[0])["Body"].read()
    lines = gzip.decompress(body).decode().splitlines()
    assert [json.loads(x)["metadata"]["sequence"] for x in lines] == list(range(1, 11))


def test_s3_missing_bucket_stops_the_run(tmp_path: Path, aws_endpoint: str) -> None:
    sink = build_sink(
        "s3",
        SinkConfig(type="s3", bucket="nope", aws_region="us-east-1", aws_endpoint_url=aws_endpoint),
    )
    with pytest.raises(SinkUnavailable, match="NoSuchBucket"):
        run(tmp_path, sink, n=2)


# --------------------------------------------------------------------------- Kafka


class FakeError:
    """Shaped like confluent_kafka.KafkaError: name(), str(), retriable(), fatal()."""

    def __init__(self, name: str, retriable: bool, fatal: bool = False) -> None:
        self._name, self._retriable, self._fatal = name, retriable, fatal

    def name(self) -> str:
        return self._name

    def str(self) -> str:
        return self._name.lower()

    def retriable(self) -> bool:
        return self._retriable

    def fatal(self) -> bool:
        return self._fatal


class FakeProducer:
    """Records produce() calls and answers each with a scripted delivery report.

    ``errors`` is shared by every producer a sink makes, so a script survives a reset."""

    def __init__(self, errors: dict[int, FakeError | None] | None = None) -> None:
        self.errors = {} if errors is None else errors
        self.messages: list[dict[str, Any]] = []
        self._pending: list[Any] = []
        self.purged = False

    def produce(self, **kwargs: Any) -> None:
        callback = kwargs.pop("on_delivery")
        self.messages.append(kwargs)
        seq = int(dict(kwargs["headers"])["claudesec-seq"])
        self._pending.append((callback, self.errors.pop(seq, None)))

    def poll(self, timeout: float) -> int:
        return 0

    def purge(self) -> None:
        self.purged = True

    def flush(self, timeout: float) -> int:
        for callback, err in self._pending:
            callback(err, None)
        self._pending.clear()
        return 0


class Producers:
    """The producer factory a KafkaSink calls; keeps every producer it made."""

    def __init__(self, errors: dict[int, FakeError | None] | None = None) -> None:
        self.errors = {} if errors is None else errors
        self.made: list[FakeProducer] = []

    def __call__(self) -> FakeProducer:
        self.made.append(FakeProducer(self.errors))
        return self.made[-1]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [m for producer in self.made for m in producer.messages]


def kafka_sink(producers: Producers) -> Any:
    from claudesec.audit.export import renderer
    from claudesec.audit.export.kafka import KafkaSink

    return KafkaSink("kafka", producers, renderer(SinkConfig(type="kafka")), topic="audit")


def test_kafka_messages_are_keyed_by_store_with_uid_headers(tmp_path: Path) -> None:
    producer = Producers()
    export = run(tmp_path, kafka_sink(producer), n=5)
    first = producer.messages[0]
    assert first["topic"] == "audit"
    assert first["key"] == export.store_id.encode()
    headers = dict(first["headers"])
    assert headers["claudesec-uid"] == f"{export.store_id}-1".encode()
    assert json.loads(first["value"])["class_uid"] == 6003
    assert len(producer.messages) == 5


def test_kafka_delivery_reports_retry_transient_and_dead_letter_oversized(
    tmp_path: Path,
) -> None:
    producer = Producers(
        {
            2: FakeError("_MSG_TIMED_OUT", retriable=False),
            3: FakeError("MSG_SIZE_TOO_LARGE", retriable=False),
            4: FakeError("NOT_ENOUGH_REPLICAS", retriable=True),
        }
    )
    export = run(tmp_path, kafka_sink(producer), n=5)
    seqs = [int(dict(m["headers"])["claudesec-seq"]) for m in producer.messages]
    assert seqs == [1, 2, 3, 4, 5, 2, 4]
    assert export.position() == 5
    [letter] = [json.loads(x) for x in (tmp_path / "dl.jsonl").read_text().splitlines()]
    assert letter["seq"] == 3 and "MSG_SIZE_TOO_LARGE" in letter["reason"]


def test_kafka_authorization_failure_stops(tmp_path: Path) -> None:
    sink = kafka_sink(Producers({1: FakeError("TOPIC_AUTHORIZATION_FAILED", False)}))
    with pytest.raises(SinkUnavailable, match="TOPIC_AUTHORIZATION_FAILED"):
        run(tmp_path, sink, n=1)


def test_kafka_real_client_reports_an_unreachable_broker_as_retry(tmp_path: Path) -> None:
    pytest.importorskip("confluent_kafka")
    sink = build_sink("kafka", SinkConfig(type="kafka", brokers="127.0.0.1:9", timeout_s=0.3))
    store = make_store(tmp_path / "audit.db", 2)
    from claudesec.audit.export.interface import ExportItem

    items = [
        ExportItem(s.seq, s.rec_hash, s.event, "ab" * 16)
        for s in (store.get(1), store.get(2))
        if s is not None
    ]
    with pytest.raises(SinkRetry) as caught:
        sink.send([Encoded(i, sink.encode(i)) for i in items])
    assert caught.value.pending == (1, 2)


def letters(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "dl.jsonl"
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_kafka_fenced_producer_is_replaced_and_its_events_resent_not_dead_lettered(
    tmp_path: Path,
) -> None:
    # What a broker restart does to an idempotent producer: the broker no longer knows its
    # id, fences it, and librdkafka marks the error fatal. Not the events' fault.
    producers = Producers(
        {
            3: FakeError("PRODUCER_FENCED", retriable=False, fatal=True),
            4: FakeError("_FATAL", retriable=False, fatal=True),
            5: FakeError("UNKNOWN_PRODUCER_ID", retriable=False),
        }
    )
    export = run(tmp_path, kafka_sink(producers), n=6, batch=10)
    assert letters(tmp_path) == []
    assert export.position() == 6
    assert export.stats.dead_lettered == 0 and export.stats.exit_code == 0
    # The broken producer was dropped (its queue purged) and a new one sent the rest.
    assert len(producers.made) == 2 and producers.made[0].purged
    resent = [int(dict(m["headers"])["claudesec-seq"]) for m in producers.made[1].messages]
    assert resent == [3, 4, 5]


def test_kafka_unknown_error_is_retried_never_dead_lettered(tmp_path: Path) -> None:
    producers = Producers({2: FakeError("SOME_FUTURE_ERROR", retriable=False)})
    export = run(tmp_path, kafka_sink(producers), n=3)
    assert letters(tmp_path) == [] and export.position() == 3
    seqs = [int(dict(m["headers"])["claudesec-seq"]) for m in producers.messages]
    assert seqs == [1, 2, 3, 2]


def test_kafka_transport_failure_resets_the_producer(tmp_path: Path) -> None:
    producers = Producers({1: FakeError("_MSG_TIMED_OUT", retriable=False)})
    export = run(tmp_path, kafka_sink(producers), n=2)
    assert letters(tmp_path) == [] and export.position() == 2
    assert len(producers.made) == 2


def test_kafka_produce_refused_by_a_fatal_producer_is_retried_on_a_new_one(
    tmp_path: Path,
) -> None:
    from confluent_kafka import KafkaError, KafkaException

    class Fatal(Producers):
        def __call__(self) -> FakeProducer:
            producer = super().__call__()
            if len(self.made) == 1:

                def refuse(**kwargs: Any) -> None:
                    raise KafkaException(KafkaError(KafkaError._FATAL, "fenced", fatal=True))

                producer.produce = refuse  # type: ignore[method-assign]
            return producer

    producers = Fatal()
    export = run(tmp_path, kafka_sink(producers), n=3)
    assert letters(tmp_path) == [] and export.position() == 3
    assert len(producers.made) == 2 and len(producers.made[1].messages) == 3


def test_kafka_message_rejection_dead_letters_and_the_run_reports_partial(
    tmp_path: Path,
) -> None:
    producers = Producers({2: FakeError("INVALID_RECORD", retriable=False)})
    export = run(tmp_path, kafka_sink(producers), n=3)
    assert [x["seq"] for x in letters(tmp_path)] == [2]
    assert export.position() == 3
    assert export.stats.exit_code == 4


# ------------------------------------------------------------------ hung AWS endpoints


@pytest.mark.timeout(60)  # a hang guard: before timeout_s reached botocore, this took minutes
def test_s3_hung_endpoint_gives_up_after_timeout_s_as_a_retry(
    tmp_path: Path, silent_server: SilentServer
) -> None:
    from claudesec.audit.export.interface import ExportItem

    sink = build_sink(
        "s3",
        SinkConfig(
            type="s3",
            bucket="audit",
            aws_region="us-east-1",
            aws_endpoint_url=silent_server.url,
            timeout_s=0.5,
        ),
    )
    store = make_store(tmp_path / "audit.db", 1)
    stored = store.get(1)
    assert stored is not None
    item = ExportItem(stored.seq, stored.rec_hash, stored.event, "ab" * 16)
    with pytest.raises(SinkRetry, match="Read timeout"):
        sink.send([Encoded(item, sink.encode(item))])
    assert silent_server.accepted >= 1


@pytest.mark.timeout(60)
def test_cloudwatch_hung_endpoint_ends_the_run_with_exit_3_and_keeps_the_cursor(
    tmp_path: Path, silent_server: SilentServer
) -> None:
    sink = build_sink(
        "cw",
        SinkConfig(
            type="cloudwatch",
            log_group="g",
            log_stream="s",
            aws_region="us-east-1",
            aws_endpoint_url=silent_server.url,
            timeout_s=0.5,
        ),
    )
    with pytest.raises(ExternalServiceError, match="Read timeout") as caught:
        run(tmp_path, sink, n=3)
    assert caught.value.exit_code == 3
    assert CursorStore(tmp_path / "c.db").get("cw") is None or (
        CursorStore(tmp_path / "c.db").get("cw").seq == 0  # type: ignore[union-attr]
    )


def test_s3_crash_after_put_then_a_grown_store_leaves_each_event_in_one_object(
    tmp_path: Path, aws_endpoint: str, aws_client: Any
) -> None:
    """Killed after S3 stored a batch and before the cursor moved; the store grows; the resumed
    batch is larger than the crashed one and must replace its object, not overlap it."""

    class Crash(BaseException):
        pass

    s3 = aws_client("s3")
    s3.create_bucket(Bucket="audit")

    def sink() -> Sink:
        return build_sink(
            "s3",
            SinkConfig(
                type="s3", bucket="audit", aws_region="us-east-1", aws_endpoint_url=aws_endpoint
            ),
        )

    def crash(**_: Any) -> None:
        raise Crash

    store = make_store(tmp_path / "audit.db", 4)
    first = sink()
    first.s3.meta.events.register("after-call.s3.PutObject", crash)  # type: ignore[attr-defined]
    exporter = Exporter(
        store, first, CursorStore(tmp_path / "c.db"), DeadLetter(tmp_path / "d"), batch_size=10
    )
    with pytest.raises(Crash):
        exporter.run()
    store.append_many(event(i) for i in range(5, 9))
    Exporter(
        store, sink(), CursorStore(tmp_path / "c.db"), DeadLetter(tmp_path / "d"), batch_size=10
    ).run()
    seqs: list[int] = []
    for obj in s3.list_objects_v2(Bucket="audit")["Contents"]:
        body = gzip.decompress(s3.get_object(Bucket="audit", Key=obj["Key"])["Body"].read())
        seqs += [json.loads(line)["metadata"]["sequence"] for line in body.splitlines()]
    assert sorted(seqs) == list(range(1, 9))
