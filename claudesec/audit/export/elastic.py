"""Elasticsearch ``_bulk`` with deterministic ids: a re-send never duplicates.

Each event is a ``create`` action with ``_id`` = ``<store id>-<seq>`` in an index named from
the event's own time (``claude-logs-%Y.%m.%d`` by default), so a retry lands on the same
document: ``create`` answers 409 for a document that already exists, which counts as
delivered. ``_bulk`` answers per item: 429 and 5xx items are retried alone, other item errors
(mapping conflicts) go to the dead-letter file.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from typing import Any

from claudesec import strict_json
from claudesec.audit.export._common import HttpSink, call, fail, transient
from claudesec.audit.export._http import HttpClient
from claudesec.audit.export.interface import (
    BatchLimits,
    Encoded,
    ExportItem,
    Rejection,
    Render,
    SinkRetry,
    dumps,
)
from claudesec.config import SinkConfig

DEFAULT_INDEX = "claude-logs-%Y.%m.%d"
_BULK_PATH = "/_bulk?filter_path=errors,items.*.status,items.*.error.type,items.*.error.reason"


class ElasticBulkSink(HttpSink):
    kind = "elastic"
    idempotent = True
    limits = BatchLimits(max_events=2000, max_bytes=10_000_000)

    def __init__(
        self,
        name: str,
        client: HttpClient,
        authorization: str,
        render: Render,
        *,
        index: str = DEFAULT_INDEX,
    ) -> None:
        super().__init__(name, client, render)
        self.index = index or DEFAULT_INDEX
        self._headers = {"Content-Type": "application/x-ndjson"}
        if authorization:
            self._headers["Authorization"] = authorization

    def index_for(self, item: ExportItem) -> str:
        moment = time.gmtime(item.event.time_ns // 1_000_000_000)
        return time.strftime(self.index, moment)

    def encode(self, item: ExportItem) -> bytes:
        action = {"create": {"_index": self.index_for(item), "_id": item.uid}}
        return dumps(action) + b"\n" + super().encode(item) + b"\n"

    def send(self, batch: Sequence[Encoded]) -> Sequence[Rejection]:
        body = b"".join(e.payload for e in batch)
        answer = call(
            "Elasticsearch _bulk",
            lambda: self.client.request("POST", _BULK_PATH, body, self._headers),
        )
        if answer.status != 200:
            raise fail("Elasticsearch _bulk", answer, "check token_source / username")
        try:
            reply = strict_json.loads(answer.body)
        except ValueError as exc:
            raise SinkRetry("Elasticsearch _bulk: unreadable reply") from exc
        if not reply.get("errors"):
            return []
        items = reply.get("items", [])
        if len(items) != len(batch):
            raise SinkRetry("Elasticsearch _bulk: reply does not match the request")
        rejected: list[Rejection] = []
        retry: list[int] = []
        for encoded, entry in zip(batch, items, strict=True):
            result: dict[str, Any] = next(iter(entry.values()), {}) if entry else {}
            status = int(result.get("status", 0))
            if status in (200, 201, 409):
                continue  # 409: the document is already there (a re-send)
            if transient(status):
                retry.append(encoded.item.seq)
                continue
            error = result.get("error", {})
            reason = f"{error.get('type', 'error')}: {error.get('reason', '')}".strip(": ")
            rejected.append(Rejection(encoded.item.seq, f"HTTP {status} {reason}"))
        if retry:
            raise SinkRetry(
                f"Elasticsearch rejected {len(retry)} events for now (429/5xx)",
                pending=retry,
                rejected=rejected,
            )
        return rejected


def from_config(name: str, config: SinkConfig) -> ElasticBulkSink:
    from claudesec.audit.export import renderer
    from claudesec.audit.export.credentials import sink_secret
    from claudesec.errors import ConfigError

    if not config.url:
        raise ConfigError(f"export.sinks.{name}.url is required for an elastic sink")
    authorization = ""
    if config.token_source:
        secret = sink_secret(name, config)
        if config.username:
            basic = base64.b64encode(f"{config.username}:{secret}".encode()).decode()
            authorization = f"Basic {basic}"
        else:
            authorization = f"ApiKey {secret}"
    client = HttpClient(config.url, timeout_s=config.timeout_s, ca_bundle=config.ca_bundle)
    return ElasticBulkSink(name, client, authorization, renderer(config), index=config.index)
