"""Splunk HTTP Event Collector (``/services/collector/event``).

Wire format: concatenated JSON envelopes ``{"time", "host", "source", "sourcetype", "index",
"event"}``; auth header ``Authorization: Splunk <token>``. HEC answers a whole request, except
that a malformed event fails with ``invalid-event-number`` N: events before N are indexed,
N is rejected, the rest are retried. With ``hec_ack = true`` the request carries a channel and
the cursor moves only once the indexer acknowledges the ``ackId`` (indexer acknowledgement),
not merely when HEC received the batch.

HEC has no idempotent ids: a batch re-sent after a crash may be indexed twice (dedupe on
``metadata.uid``).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
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
    dumps,
)
from claudesec.config import SinkConfig

# HEC status codes that describe one bad event rather than the request.
_EVENT_ERRORS = frozenset({6, 12, 13})


class SplunkHecSink(HttpSink):
    kind = "splunk"
    limits = BatchLimits(max_events=1000, max_bytes=1_000_000)

    def __init__(
        self,
        name: str,
        client: HttpClient,
        token: str,
        render: Render,
        *,
        index: str = "",
        source: str = "claudesec",
        sourcetype: str = "claudesec:ocsf",
        ack: bool = False,
        ack_timeout_s: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(name, client, render)
        self.index = index
        self.source = source
        self.sourcetype = sourcetype
        self.ack = ack
        self.ack_timeout_s = ack_timeout_s
        self._sleep = sleep
        self._headers = {"Authorization": f"Splunk {token}", "Content-Type": "application/json"}
        if ack:
            # A stable channel per sink and host keeps acks together across restarts.
            self._headers["X-Splunk-Request-Channel"] = str(uuid.uuid4())

    def encode(self, item: ExportItem) -> bytes:
        event = item.event
        envelope: dict[str, Any] = {
            "time": round(event.time_ns / 1e9, 6),
            "source": self.source,
            "sourcetype": self.sourcetype,
            "event": self._render(item),
        }
        if event.host:
            envelope["host"] = event.host
        if self.index:
            envelope["index"] = self.index
        return dumps(envelope)

    def send(self, batch: Sequence[Encoded]) -> Sequence[Rejection]:
        body = b"\n".join(e.payload for e in batch)
        answer = call(
            "Splunk HEC",
            lambda: self.client.request("POST", "/services/collector/event", body, self._headers),
        )
        reply = _json(answer.body)
        code = reply.get("code")
        if answer.status == 400 and code in _EVENT_ERRORS and "invalid-event-number" in reply:
            bad = int(reply["invalid-event-number"])
            if 0 <= bad < len(batch):
                rejected = [Rejection(batch[bad].item.seq, f"HEC: {reply.get('text', '')}")]
                rest = [e.item.seq for e in batch[bad + 1 :]]
                if rest:
                    raise SinkRetry(
                        "HEC rejected one event; sending the rest again",
                        pending=rest,
                        rejected=rejected,
                        retry_after_s=0.0,
                    )
                return rejected
        if answer.status != 200:
            raise fail("Splunk HEC", answer, "check token_source and that the token is enabled")
        if self.ack:
            self._wait_for_ack(reply.get("ackId"))
        return []

    def _wait_for_ack(self, ack_id: object) -> None:
        if not isinstance(ack_id, int):
            raise SinkRetry("HEC did not return an ackId (is indexer acknowledgement enabled?)")
        body = json.dumps({"acks": [ack_id]}).encode()
        deadline = time.monotonic() + self.ack_timeout_s
        delay = 0.05
        while time.monotonic() < deadline:
            answer = call(
                "Splunk HEC ack",
                lambda: self.client.request("POST", "/services/collector/ack", body, self._headers),
            )
            if answer.status != 200:
                raise fail("Splunk HEC ack", answer)
            acks = _json(answer.body).get("acks", {})
            if isinstance(acks, dict) and acks.get(str(ack_id)) is True:
                return
            self._sleep(delay)
            delay = min(delay * 2, 2.0)
        raise SinkRetry(f"HEC did not acknowledge ackId {ack_id} in {self.ack_timeout_s:g} s")


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = strict_json.loads(body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def from_config(name: str, config: SinkConfig) -> SplunkHecSink:
    from claudesec.audit.export import renderer
    from claudesec.audit.export.credentials import sink_secret
    from claudesec.errors import ConfigError

    if not config.url:
        raise ConfigError(f"export.sinks.{name}.url is required for a splunk sink")
    token = sink_secret(name, config)
    client = HttpClient(config.url, timeout_s=config.timeout_s, ca_bundle=config.ca_bundle)
    return SplunkHecSink(
        name,
        client,
        token,
        renderer(config),
        index=config.index,
        source=config.source,
        sourcetype=config.sourcetype,
        ack=config.hec_ack,
    )
