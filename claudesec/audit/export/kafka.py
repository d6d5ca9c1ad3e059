"""Apache Kafka through ``confluent-kafka`` (librdkafka), the optional ``kafka`` extra.

Messages are keyed by the store id, so one host's events stay in one partition, in order;
the event uid travels in the ``claudesec-uid`` header for consumers to dedupe on. The producer
runs with ``enable.idempotence`` and ``acks=all``: within a run librdkafka's own retries never
duplicate, and a batch counts as delivered only when every delivery report came back clean.
A re-send after a crash or a producer reset can still duplicate (Kafka has no cross-session
idempotent ids): consumers dedupe on ``claudesec-uid``.

Delivery reports sort failures by *whose* fault they are, and only one kind moves the cursor:

* the message itself is refused for good (too large, invalid record): the dead-letter file;
* the producer or its connection is broken (fenced after a broker restart, a fatal
  idempotence error, a transport failure or delivery timeout): the producer is dropped (its
  queue purged), a new one is made, and the whole unacknowledged remainder is retried;
* authorization or unknown-topic errors: the run stops (exit 3), the cursor stays;
* anything else, including errors this module has never heard of: retried. An unknown error
  is never taken for a verdict on the event, so it can never cost an event.
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

# librdkafka error names that condemn one message, not the producer or the connection. The
# only ones that may dead-letter an event: the list is closed on purpose.
_MESSAGE_ERRORS = frozenset(
    {"MSG_SIZE_TOO_LARGE", "_MSG_SIZE_TOO_LARGE", "INVALID_MSG", "INVALID_RECORD"}
)
# ...those that mean no message can get through.
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
# ...and those that say the producer (its id, epoch or sequence state) or its connection is
# unusable: after a broker restart the broker no longer knows the idempotent producer and
# fences it. Only a new producer can send again; librdkafka also flags the first ``fatal()``.
_PRODUCER_ERRORS = frozenset(
    {
        "_FATAL",
        "_FENCED",
        "PRODUCER_FENCED",
        "INVALID_PRODUCER_EPOCH",
        "UNKNOWN_PRODUCER_ID",
        "INVALID_PRODUCER_ID_MAPPING",
        "OUT_OF_ORDER_SEQUENCE_NUMBER",
        "_INCONSISTENT",
        # Transport: the connection died or stayed dead for message.timeout.ms. A broker that
        # came back may have forgotten this producer and answer UNKNOWN_PRODUCER_ID to it
        # for ever (Tansu does): a fresh producer is cheap and always safe.
        "_TRANSPORT",
        "_ALL_BROKERS_DOWN",
        "_MSG_TIMED_OUT",
        "_TIMED_OUT",
        "REQUEST_TIMED_OUT",
    }
)

#: Makes a librdkafka producer; called again whenever the current one is broken.
ProducerFactory = Callable[[], Any]


class KafkaSink(Sink):
    kind = "kafka"
    limits = BatchLimits(max_events=5000, max_bytes=16_000_000)

    def __init__(
        self,
        name: str,
        make_producer: ProducerFactory,
        render: Render,
        *,
        topic: str,
        flush_timeout_s: float = 30.0,
    ) -> None:
        super().__init__(name, render)
        self._make_producer = make_producer
        self._producer: Any = None
        self.topic = topic
        self.flush_timeout_s = flush_timeout_s
        #: How many times a broken producer was replaced (reported by tests and status).
        self.resets = 0

    @property
    def producer(self) -> Any:
        """The current producer, made on first use and after every reset."""
        if self._producer is None:
            self._producer = self._make_producer()
        return self._producer

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
        from confluent_kafka import KafkaException

        reports: dict[int, Any] = {}

        def report_for(seq: int) -> Callable[[Any, Any], None]:
            def on_delivery(err: Any, msg: Any) -> None:
                reports[seq] = err

            return on_delivery

        producer = self.producer
        try:
            for encoded in batch:
                arguments = self.message(encoded)
                while True:
                    try:
                        producer.produce(**arguments, on_delivery=report_for(encoded.item.seq))
                        break
                    except BufferError:
                        # The local queue is full: serve delivery reports to make room.
                        producer.poll(0.5)
        except KafkaException as exc:
            # produce() itself refuses once the producer hit a fatal error: nothing of this
            # batch is acknowledged, and this producer will never send again.
            self.reset()
            raise SinkRetry(f"Kafka: producer failed: {_describe(exc)}") from None
        remaining = producer.flush(self.flush_timeout_s)
        return self.settle(batch, reports, remaining)

    def settle(
        self, batch: Sequence[Encoded], reports: dict[int, Any], remaining: int = 0
    ) -> list[Rejection]:
        """Turn delivery reports into the runner's answer (see the module docstring)."""
        rejected: list[Rejection] = []
        retry: list[int] = []
        reason = ""
        broken = ""
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
            if name in _MESSAGE_ERRORS:
                rejected.append(Rejection(seq, f"Kafka: {name}: {err.str()}"))
                continue
            retry.append(seq)
            if name in _PRODUCER_ERRORS or err.fatal():
                broken = broken or f"{name}: {err.str()}"
            reason = reason or f"{name}: {err.str()}"
        if broken:
            self.reset()
            reason = f"producer reset after {broken}"
        elif remaining:
            # Still queued after the flush deadline: drop them from this producer, or they
            # could land later beside the re-send.
            self._purge()
        if retry:
            raise SinkRetry(f"Kafka: {reason}", pending=retry, rejected=rejected)
        return rejected

    def reset(self) -> None:
        """Drop the current producer; the next send makes a new one (new id, epoch 0)."""
        self._purge()
        self._producer = None
        self.resets += 1

    def _purge(self) -> None:
        producer = self._producer
        if producer is None:
            return
        try:
            producer.purge()
            producer.poll(0)
        except Exception:  # noqa: S110 - a fatal producer may refuse; it is dropped anyway
            pass

    def close(self) -> None:
        if self._producer is not None:
            self._producer.flush(min(5.0, self.flush_timeout_s))
            # Dropped, so its threads stop reconnecting once the sink is done.
            self._producer = None


def _describe(exc: Exception) -> str:
    error = exc.args[0] if exc.args else None
    if error is not None and hasattr(error, "name"):
        return f"{error.name()}: {error.str()}"
    return str(exc)


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
        from confluent_kafka import KafkaException, Producer
    except ImportError:
        raise ConfigError(
            "the kafka sink needs confluent-kafka",
            hint="pip install 'claudesec[kafka]'",
        ) from None
    settings = producer_settings(name, config)
    try:
        # Made now so a bad kafka_options setting is a config error before anything is read.
        first = [Producer(settings)]
    except KafkaException as exc:
        raise ConfigError(
            f"export.sinks.{name}: librdkafka refused the settings: {_describe(exc)}",
            hint="check kafka_options",
        ) from None

    def make_producer() -> Any:
        return first.pop() if first else Producer(settings)

    return KafkaSink(
        name,
        make_producer,
        renderer(config),
        topic=config.topic,
        flush_timeout_s=config.timeout_s + 5,
    )
