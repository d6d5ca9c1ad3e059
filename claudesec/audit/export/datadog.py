"""Datadog Logs intake (``POST /api/v2/logs``, header ``DD-API-KEY``).

A batch is a JSON array of log entries (at most 1000 entries and 5 MB); the intake answers
202 for the whole batch. Datadog has no idempotent ids: a re-send after a crash may store a
batch twice (dedupe on ``metadata.uid``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from claudesec.audit.export._common import HttpSink, call, fail
from claudesec.audit.export._http import HttpClient
from claudesec.audit.export.interface import (
    BatchLimits,
    Encoded,
    ExportItem,
    Rejection,
    Render,
    dumps,
)
from claudesec.config import SinkConfig

DEFAULT_URL = "https://http-intake.logs.datadoghq.com"


class DatadogSink(HttpSink):
    kind = "datadog"
    limits = BatchLimits(max_events=1000, max_bytes=4_500_000)

    def __init__(
        self,
        name: str,
        client: HttpClient,
        api_key: str,
        render: Render,
        *,
        source: str = "claudesec",
        service: str = "claudesec",
        tags: Sequence[str] = (),
    ) -> None:
        super().__init__(name, client, render)
        self.source = source
        self.service = service
        self.tags = ",".join(tags)
        self._headers = {"DD-API-KEY": api_key, "Content-Type": "application/json"}

    def encode(self, item: ExportItem) -> bytes:
        entry: dict[str, Any] = dict(self._render(item))
        entry["ddsource"] = self.source
        entry["service"] = self.service
        if self.tags:
            entry["ddtags"] = self.tags
        if item.event.host:
            entry["hostname"] = item.event.host
        return dumps(entry)

    def send(self, batch: Sequence[Encoded]) -> Sequence[Rejection]:
        body = b"[" + b",".join(e.payload for e in batch) + b"]"
        answer = call(
            "Datadog logs intake",
            lambda: self.client.request("POST", "/api/v2/logs", body, self._headers),
        )
        if answer.status not in (200, 202):
            raise fail("Datadog logs intake", answer, "check token_source (a Datadog API key)")
        return []


def from_config(name: str, config: SinkConfig) -> DatadogSink:
    from claudesec.audit.export import renderer
    from claudesec.audit.export.credentials import sink_secret

    api_key = sink_secret(name, config)
    client = HttpClient(
        config.url or DEFAULT_URL, timeout_s=config.timeout_s, ca_bundle=config.ca_bundle
    )
    return DatadogSink(
        name,
        client,
        api_key,
        renderer(config),
        source=config.source,
        service=config.service,
        tags=config.tags,
    )
