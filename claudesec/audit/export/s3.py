"""S3 objects, optionally write-once under Object Lock, one gzip'd JSONL object per batch.

Keys are ``PREFIX/YYYY/MM/DD/<store id>-<first seq>.jsonl.gz`` (the date of the batch's
first event): a function of where the batch starts, not of where it ends, because a run
killed between the put and the cursor save re-reads its batch from the same cursor, and the
store may have grown meanwhile: the larger batch then replaces the object instead of leaving
a second one that overlaps it (a key ending in the last seq did exactly that). Consumers can
still dedupe on ``metadata.uid`` after a deliberate ``--since`` replay.

With ``object_lock_mode`` each object is locked for ``object_lock_days`` (the bucket must
have Object Lock enabled); S3 requires a checksum with Object Lock parameters, which boto3
sends (CRC32) by default. Object Lock buckets are versioned: a replaced object stays as a
locked noncurrent version, the current version is the complete batch.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from claudesec.audit.export._aws import client, translate
from claudesec.audit.export.interface import (
    BatchLimits,
    Encoded,
    Rejection,
    Render,
    Sink,
)
from claudesec.config import SinkConfig


class S3Sink(Sink):
    kind = "s3"
    limits = BatchLimits(max_events=10_000, max_bytes=64_000_000)

    def __init__(
        self,
        name: str,
        s3: Any,
        render: Render,
        *,
        bucket: str,
        prefix: str = "claudesec/",
        lock_mode: str = "",
        lock_days: int = 0,
    ) -> None:
        super().__init__(name, render)
        self.s3 = s3
        self.bucket = bucket
        self.prefix = prefix
        self.lock_mode = lock_mode
        self.lock_days = lock_days

    def key_for(self, batch: Sequence[Encoded]) -> str:
        first = batch[0].item
        day = time.strftime("%Y/%m/%d", time.gmtime(first.event.time_ns // 1_000_000_000))
        return f"{self.prefix}{day}/{first.store_id}-{first.seq:012d}.jsonl.gz"

    def send(self, batch: Sequence[Encoded]) -> Sequence[Rejection]:
        from botocore.exceptions import BotoCoreError, ClientError

        body = gzip.compress(b"".join(e.payload + b"\n" for e in batch), mtime=0)
        extra: dict[str, Any] = {}
        if self.lock_mode:
            extra["ObjectLockMode"] = self.lock_mode
            extra["ObjectLockRetainUntilDate"] = datetime.now(UTC) + timedelta(
                days=max(1, self.lock_days)
            )
        try:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=self.key_for(batch),
                Body=body,
                ContentType="application/x-ndjson",
                ContentEncoding="gzip",
                **extra,
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate("S3", exc) from exc
        return []


def from_config(name: str, config: SinkConfig) -> S3Sink:
    from claudesec.audit.export import renderer
    from claudesec.errors import ConfigError

    if not config.bucket:
        raise ConfigError(f"export.sinks.{name}.bucket is required for an s3 sink")
    return S3Sink(
        name,
        client("s3", config.aws_region, config.aws_endpoint_url, config.timeout_s),
        renderer(config),
        bucket=config.bucket,
        prefix=config.prefix,
        lock_mode=config.object_lock_mode,
        lock_days=config.object_lock_days,
    )
