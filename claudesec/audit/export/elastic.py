"""Elasticsearch ``_bulk`` with deterministic ids: a re-send never duplicates.

Each event is a ``create`` action with ``_id`` = ``<store id>-<seq>`` in an index named from
the event's own time (``claude-logs-%Y.%m.%d`` by default), so a retry lands on the same
document: ``create`` answers 409 for a document that already exists, which counts as
delivered. ``_bulk`` answers per item, and only a 400 (the document cannot be indexed: a
mapping conflict, a parse error) is a verdict on that event, for the dead-letter file. 401,
403 and 404 items (no write privilege, index missing) are true of every event: the run stops
with the cursor in place. Anything else (429, 5xx, an item without a status) is retried alone.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from typing import Any

from claudesec import strict_json
from claudesec.audit.export._common import HttpSink, call, fail
from claudesec.audit.export._http import HttpClient
from claudesec.audit.export.interface import (
    BatchLimits,
    Encoded,
    ExportItem,
    Rejection,
    Render,
    SinkRetry,
    SinkUnavailable,
    dumps,
)
from claudesec.config import SinkConfig

DEFAULT_INDEX = "claude-logs-%Y.%m.%d"
# Item statuses that condemn the sink (credentials, privileges, the index), not the event.
_SINK_ITEM_STATUSES = frozenset({401, 403, 404})
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
        if not isinstance(reply, dict):
            raise SinkRetry("Elasticsearch _bulk: unreadable reply")
        if not reply.get("errors"):
            return []
        items = reply.get("items", [])
        if len(items) != len(batch):
            raise SinkRetry("Elasticsearch _bulk: reply does not match the request")
        rejected: list[Rejection] = []
        retry: list[int] = []
        for encoded, entry in zip(batch, items, strict=True):
            result: dict[str, Any] = next(iter(entry.values()), {}) if entry else {}
            status = _status(result)
            if status in (200, 201, 409):
                continue  # 409: the document is already there (a re-send)
            error = result.get("error")
            error = error if isinstance(error, dict) else {}
            reason = f"{error.get('type', 'error')}: {error.get('reason', '')}".strip(": ")
            if status in _SINK_ITEM_STATUSES:
                # Forbidden index, missing index (auto-create off): true of every event.
                raise SinkUnavailable(
                    f"Elasticsearch _bulk: HTTP {status} {reason}",
                    hint="check the index pattern and the writer's index privileges",
                )
            if status != 400:
                # 429/5xx, or a status that is no verdict on this document: later.
                retry.append(encoded.item.seq)
                continue
            # 400 is Elasticsearch saying this document cannot be indexed (mapping, parse).
            rejected.append(Rejection(encoded.item.seq, f"HTTP {status} {reason}"))
        if retry:
            raise SinkRetry(
                f"Elasticsearch rejected {len(retry)} events for now (429/5xx)",
                pending=retry,
                rejected=rejected,
            )
        return rejected


def _status(result: dict[str, Any]) -> int:
    try:
        return int(result.get("status", 0))
    except (TypeError, ValueError):
        return 0


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
