"""CloudWatch Logs (``PutLogEvents``) through boto3.

One log stream per host (``claudesec-HOST`` unless configured); group and stream are created
when missing. A request carries at most 10,000 events and 1 MiB (each event counts 26 bytes
more than its message) within 24 hours, in time order. CloudWatch reports events it refused
for their age (``rejectedLogEventsInfo``): those go to the dead-letter file. It has no
idempotent ids: a batch re-sent after a crash may appear twice (dedupe on ``metadata.uid``).
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

from claudesec.audit.export._aws import client, translate
from claudesec.audit.export.interface import (
    BatchLimits,
    Encoded,
    ExportItem,
    Rejection,
    Render,
    Sink,
    SinkRetry,
)
from claudesec.config import SinkConfig

_EVENT_OVERHEAD = 26
_DAY_MS = 86_400_000


class CloudWatchSink(Sink):
    kind = "cloudwatch"
    limits = BatchLimits(max_events=10_000, max_bytes=1_000_000)

    def __init__(
        self,
        name: str,
        logs: Any,
        render: Render,
        *,
        log_group: str,
        log_stream: str,
    ) -> None:
        super().__init__(name, render)
        self.logs = logs
        self.log_group = log_group
        self.log_stream = log_stream

    def open(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        for create, kwargs in (
            (self.logs.create_log_group, {"logGroupName": self.log_group}),
            (
                self.logs.create_log_stream,
                {"logGroupName": self.log_group, "logStreamName": self.log_stream},
            ),
        ):
            try:
                create(**kwargs)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ResourceAlreadyExistsException":
                    raise translate("CloudWatch Logs", exc) from exc
            except BotoCoreError as exc:
                raise translate("CloudWatch Logs", exc) from exc

    def encode(self, item: ExportItem) -> bytes:
        # The per-event overhead counts against the request limit, so carry it in the size.
        return super().encode(item) + b" " * _EVENT_OVERHEAD

    def send(self, batch: Sequence[Encoded]) -> Sequence[Rejection]:
        from botocore.exceptions import BotoCoreError, ClientError

        events = [
            {
                "timestamp": e.item.event.time_ns // 1_000_000,
                "message": e.payload[:-_EVENT_OVERHEAD].decode("utf-8"),
            }
            for e in batch
        ]
        rejected: list[Rejection] = []
        # One request must be in time order and span under 24 hours: ship the longest prefix
        # that is, and hand the rest back to be sent at once.
        cut = _ordered_prefix([e.item.event.time_ns // 1_000_000 for e in batch])
        try:
            answer = self.logs.put_log_events(
                logGroupName=self.log_group,
                logStreamName=self.log_stream,
                logEvents=events[:cut],
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate("CloudWatch Logs", exc) from exc
        info = answer.get("rejectedLogEventsInfo") or {}
        too_old = int(info.get("tooOldLogEventEndIndex", -1))
        expired = int(info.get("expiredLogEventEndIndex", -1))
        too_new = int(info.get("tooNewLogEventStartIndex", cut))
        # AWS documents the "end" indices as exclusive, moto reports them inclusive. Reading
        # them inclusively at worst dead-letters one event CloudWatch did keep; the other
        # reading could drop a refused event without trace.
        last_old = max(too_old, expired)
        for index in range(cut):
            if index <= last_old:
                rejected.append(Rejection(batch[index].item.seq, "CloudWatch: event too old"))
            elif index >= too_new:
                rejected.append(Rejection(batch[index].item.seq, "CloudWatch: event too new"))
        if cut < len(batch):
            raise SinkRetry(
                "CloudWatch: batch out of time order or over 24 hours; sending the rest",
                pending=[e.item.seq for e in batch[cut:]],
                rejected=rejected,
                retry_after_s=0.0,
            )
        return rejected


def _ordered_prefix(stamps: Sequence[int]) -> int:
    for index in range(1, len(stamps)):
        if stamps[index] < stamps[index - 1] or stamps[index] - stamps[0] >= _DAY_MS:
            return index
    return len(stamps)


def from_config(name: str, config: SinkConfig) -> CloudWatchSink:
    from claudesec.audit.export import renderer
    from claudesec.errors import ConfigError

    if not config.log_group:
        raise ConfigError(f"export.sinks.{name}.log_group is required for a cloudwatch sink")
    return CloudWatchSink(
        name,
        client("logs", config.aws_region, config.aws_endpoint_url, config.timeout_s),
        renderer(config),
        log_group=config.log_group,
        log_stream=config.log_stream or f"claudesec-{socket.gethostname()}",
    )
