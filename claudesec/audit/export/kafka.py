"""Apache Kafka through ``confluent-kafka`` (librdkafka), the optional ``kafka`` extra.

Messages are keyed by the store id, so one host's events stay in one partition, in order;
the event uid travels in the ``claudesec-uid`` header for consumers to dedupe on. The producer
runs with ``enable.idempotence`` and ``acks=all``: within a run librdkafka's own retries never
duplicate, and a batch counts as delivered only when every delivery report came back clean.
A re-send after a crash can still duplicate (Kafka has no cross-session idempotent ids).

Delivery reports sort failures: retriable errors and timeouts are retried by the runner,
errors about the message itself (too large, invalid) go to the dead-letter file, and
authorization or unknown-topic errors stop the run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from claudesec.audit.export.interface import (
    BatchLimits,
    Encoded,
    Rejection,
    Render,
    Sink,
    SinkRetry,
    SinkUnavailable,
)
from claudesec.config import SinkConfig

# librdkafka error names that condemn one message, not the connection.
_MESSAGE_ERRORS = frozenset(
    {"MSG_SIZE_TOO_LARGE", "INVALID_MSG", "INVALID_RECORD", "_MSG_SIZE_TOO_LARGE"}
)
# ...and those that mean no message can get through.
_FATAL_ERRORS = frozenset(
    {
        "TOPIC_AUTHORIZATION_FAILED",
        "CLUSTER_AUTHORIZATION_FAILED",
        "UNKNOWN_TOPIC_OR_PART",
        "_UNKNOWN_TOPIC",
        "SASL_AUTHENTICATION_FAILED",
        "_AUTHENTICATION",
    }
)


class KafkaSink(Sink):
    kind = "kafka"
    limits = BatchLimits(max_events=5000, max_bytes=16_000_000)

    def __init__(
        self,
        name: str,
        producer: Any,
        render: Render,
        *,
        topic: str,
        flush_timeout_s: float = 30.0,
    ) -> None:
        super().__init__(name, render)
        self.producer = producer
        self.topic = topic
        self.flush_timeout_s = flush_timeout_s

    def message(self, encoded: Encoded) -> dict[str, Any]:
        """The ``produce()`` arguments for one event (key, value, headers)."""
        item = encoded.item
        return {
            "topic": self.topic,
            "key": item.store_id.encode(),
            "value": encoded.payload,
            "headers": [
                ("claudesec-uid", item.uid.encode()),
                ("claudesec-seq", str(item.seq).encode()),
                ("content-type", b"application/json"),
            ],
            "timestamp": item.event.time_ns // 1_000_000,
        }

    def send(self, batch: Sequence[Encoded]) -> Sequence[Rejection]:
        reports: dict[int, Any] = {}

        def report_for(seq: int) -> Callable[[Any, Any], None]:
            def on_delivery(err: Any, msg: Any) -> None:
                reports[seq] = err

            return on_delivery

        for encoded in batch:
            arguments = self.message(encoded)
            while True:
                try:
                    self.producer.produce(**arguments, on_delivery=report_for(encoded.item.seq))
                    break
                except BufferError:
                    # The local queue is full: serve delivery reports to make room.
                    self.producer.poll(0.5)
        remaining = self.producer.flush(self.flush_timeout_s)
        return self.settle(batch, reports, remaining)

    def settle(
        self, batch: Sequence[Encoded], reports: dict[int, Any], remaining: int = 0
    ) -> list[Rejection]:
        """Turn delivery reports into the runner's answer."""
        rejected: list[Rejection] = []
        retry: list[int] = []
        reason = ""
        for encoded in batch:
            seq = encoded.item.seq
            if seq not in reports:
                retry.append(seq)
                reason = reason or f"{remaining} messages not delivered in time"
                continue
            err = reports[seq]
            if err is None:
                continue
            name = str(err.name())
            if name in _FATAL_ERRORS:
                raise SinkUnavailable(f"Kafka: {name}: {err.str()}", hint="check topic and ACLs")
            if name in _MESSAGE_ERRORS or (not err.retriable() and not _timeout(name)):
                rejected.append(Rejection(seq, f"Kafka: {name}: {err.str()}"))
            else:
                retry.append(seq)
                reason = reason or f"{name}: {err.str()}"
        if retry:
            raise SinkRetry(f"Kafka: {reason}", pending=retry, rejected=rejected)
        return rejected

    def close(self) -> None:
        self.producer.flush(min(5.0, self.flush_timeout_s))


def _timeout(name: str) -> bool:
    return name in ("_MSG_TIMED_OUT", "_TIMED_OUT", "REQUEST_TIMED_OUT", "_TRANSPORT")


def producer_settings(name: str, config: SinkConfig) -> dict[str, Any]:
    """librdkafka settings: safe defaults, the config's options, and the secret if named."""
    from claudesec.errors import ConfigError

    if not config.brokers:
        raise ConfigError(f"export.sinks.{name}.brokers is required for a kafka sink")
    settings: dict[str, Any] = {
        "bootstrap.servers": config.brokers,
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": "zstd",
        "linger.ms": 20,
        "message.timeout.ms": int(config.timeout_s * 1000),
        "client.id": f"claudesec-{name}",
    }
    for key, value in config.kafka_options.items():
        if "password" in key or "secret" in key:
            raise ConfigError(
                f"export.sinks.{name}.kafka_options.{key} looks like a secret",
                hint="name it with token_source instead",
            )
        settings[key] = value
    if config.token_source:
        from claudesec.audit.export.credentials import sink_secret

        settings["sasl.password"] = sink_secret(name, config)
        if config.username:
            settings["sasl.username"] = config.username
    return settings


def from_config(name: str, config: SinkConfig) -> KafkaSink:
    from claudesec.audit.export import renderer
    from claudesec.errors import ConfigError

    try:
        from confluent_kafka import Producer
    except ImportError:
        raise ConfigError(
            "the kafka sink needs confluent-kafka",
            hint="pip install 'claudesec[kafka]'",
        ) from None
    producer = Producer(producer_settings(name, config))
    return KafkaSink(
        name,
        producer,
        renderer(config),
        topic=config.topic,
        flush_timeout_s=config.timeout_s + 5,
    )
