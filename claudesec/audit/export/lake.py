"""Amazon Security Lake custom source: OCSF API Activity events as Parquet objects in S3.

Layout, as Security Lake expects of a custom source (AWS, "Collecting data from custom
sources"): one OCSF class per source (API Activity, 6003), Parquet objects under the
source's location, partitioned
``ext/<source>/region=<region>/accountId=<account>/eventDay=<YYYYMMDD>/``, each object's
records sorted by time. ``eventDay`` is the UTC day of the event's ``time``.

No loss, no duplicate: the runner advances the cursor only after every object of a batch was
put, and an object's key is a function of what it holds, not of when it was written:
``<store id>-<seq of its first event, 12 digits>.parquet``. A run that crashed between the put
and the cursor save re-reads the same batch from the same cursor, so each of its objects
comes back under the same key (the first event of a day's group in a batch that starts at the
same cursor is the same event) and the put overwrites rather than adds. A re-read batch may
hold more events than the crashed one (the store grew): the object is overwritten with a
superset, never joined by a second copy. Each object is one row group, zstd-compressed.

Objects are as large as a batch (``batch_size``, default :data:`DEFAULT_BATCH` events per
object and day): Security Lake prefers objects of 256 MB to 1 GB written every 5 minutes to
once a day, so run ``logs export --sink NAME`` from a timer at that rate rather than with
``--follow`` (which writes as events come).
"""

from __future__ import annotations

import time
from collections import defaultdict
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
    dumps,
)
from claudesec.config import SinkConfig

DEFAULT_BATCH = 100_000
CONTENT_TYPE = "application/vnd.apache.parquet"


def partition_prefix(location: str, region: str, account: str, day: str) -> str:
    """``<location>region=<r>/accountId=<a>/eventDay=<YYYYMMDD>/``."""
    return f"{location}region={region}/accountId={account}/eventDay={day}/"


def event_day(time_ms: int) -> str:
    return time.strftime("%Y%m%d", time.gmtime(time_ms // 1000))


class LakeSink(Sink):
    kind = "lake"
    idempotent = True
    default_batch = DEFAULT_BATCH
    # Bounded by the runner's batch (events read into memory at once), not by bytes.
    limits = BatchLimits(max_events=1_000_000, max_bytes=1 << 30)

    def __init__(
        self,
        name: str,
        s3: Any,
        render: Render,
        *,
        bucket: str,
        location: str,
        region: str,
        account: str,
    ) -> None:
        super().__init__(name, render)
        self.s3 = s3
        self.bucket = bucket
        self.location = location
        self.region = region
        self.account = account
        self._docs: dict[int, dict[str, Any]] = {}

    def encode(self, item: ExportItem) -> bytes:
        # Rendered once: the runner sizes batches and dead-letters by the JSON; send() builds
        # the Parquet object from the same documents, kept only until the batch is sent.
        doc = self._render(item)
        self._docs[item.seq] = doc
        return dumps(doc)

    def objects(self, batch: Sequence[Encoded]) -> list[tuple[str, list[dict[str, Any]]]]:
        """The batch as (key, OCSF documents sorted by time) per event day."""
        days: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
        cached = self._docs
        for encoded in batch:
            doc = cached.pop(encoded.item.seq, None) or self._render(encoded.item)
            days[event_day(int(doc["time"]))].append((encoded.item.seq, doc))
        out = []
        store_id = batch[0].item.store_id
        for day, members in sorted(days.items()):
            first = min(seq for seq, _ in members)
            key = (
                partition_prefix(self.location, self.region, self.account, day)
                + f"{store_id}-{first:012d}.parquet"
            )
            ordered = [doc for _, doc in sorted(members, key=lambda m: (m[1]["time"], m[0]))]
            out.append((key, ordered))
        return out

    def send(self, batch: Sequence[Encoded]) -> Sequence[Rejection]:
        from botocore.exceptions import BotoCoreError, ClientError

        from claudesec.audit.export.parquet import to_parquet, to_table

        objects = self.objects(batch)
        self._docs.clear()  # a retried batch re-renders: nothing stale carries over
        for key, docs in objects:
            body = to_parquet(to_table(docs))
            try:
                self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=CONTENT_TYPE)
            except (ClientError, BotoCoreError) as exc:
                raise translate("S3 (Security Lake)", exc) from exc
        return []


def from_config(name: str, config: SinkConfig) -> LakeSink:
    from claudesec.audit.export import renderer
    from claudesec.errors import ConfigError

    where = f"export.sinks.{name}"
    if not config.bucket:
        raise ConfigError(f"{where}.bucket is required for a lake sink")
    if not config.aws_region:
        raise ConfigError(
            f"{where}.aws_region is required for a lake sink (it is the region= partition)"
        )
    if not config.lake_account:
        raise ConfigError(
            f"{where}.lake_account is required for a lake sink (the accountId= partition)",
            hint="the AWS account id, or the external id given to the custom source",
        )
    if config.format not in ("", "ocsf"):
        raise ConfigError(f"{where}.format: a lake sink writes OCSF only, not {config.format!r}")
    location = config.lake_location or f"ext/{config.lake_source}/"
    if not location.endswith("/"):
        location += "/"
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"{where}: the lake sink needs pyarrow",
            hint="pip install 'claudesec[lake]'",
        ) from None
    return LakeSink(
        name,
        client("s3", config.aws_region, config.aws_endpoint_url, config.timeout_s),
        renderer(config),
        bucket=config.bucket,
        location=location.lstrip("/"),
        region=config.aws_region,
        account=config.lake_account,
    )
