"""Ship ``org check`` results to a configured export sink as OCSF Compliance Findings.

The sinks were built for audit records: each encodes an :class:`ExportItem` through its
render function into its own envelope (Splunk's ``{"event": ...}``, Elastic's ``_bulk`` lines,
a Kafka message, a syslog frame...). Here every finding's OCSF event (class 2003) stands in for
a record: the sink renders it unchanged, and its id (``<run id>-<n>``, the run id derived from
the organisation and the check time) is stable, so a re-sent run overwrites in the sinks that
deduplicate. Transient failures are retried with backoff; a sink that cannot work stops the
run (exit 3); rejections are counted and reported (exit 4). The Security Lake sink is refused:
its Parquet schema is API Activity's, not Compliance Finding's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from claudesec.audit.events import AuditEvent
from claudesec.config import ExportConfig
from claudesec.errors import ConfigError, ExitCode, ExternalServiceError
from claudesec.org.check import CheckRun

RETRIES = 5
# Sinks whose payload is the rendered JSON document (in their own envelope).
_UNSUPPORTED = {"lake": "its Parquet schema is OCSF API Activity (6003), not Compliance Finding"}


@dataclass(frozen=True)
class ShipResult:
    sink: str
    sent: int
    rejected: tuple[str, ...]

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.PARTIAL if self.rejected else ExitCode.OK


def ship_findings(
    run: CheckRun,
    export: ExportConfig,
    sink_name: str,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> ShipResult:
    """Send every OCSF event of ``run`` to the configured sink ``sink_name``."""
    from claudesec.audit.export import build_sink, sink_config
    from claudesec.audit.export.interface import (
        Encoded,
        ExportItem,
        SinkRetry,
        SinkUnavailable,
    )
    from claudesec.org.reports.ocsf import events

    config = sink_config(export, sink_name)
    if config.type in _UNSUPPORTED:
        raise ConfigError(
            f"export.sinks.{sink_name}: org check findings cannot go to a {config.type} sink: "
            f"{_UNSUPPORTED[config.type]}",
            hint="ship them to a JSON sink (jsonl, splunk, elastic, datadog, kafka, s3, ...)",
        )
    documents = list(events(run))
    run_id = f"orgcheck-{run.organization_id}-{int(run.checked_at.timestamp())}"
    sink = build_sink(sink_name, config)
    by_seq: dict[int, dict[str, Any]] = dict(enumerate(documents, start=1))
    # The sink's render, whatever its configured format, gives the finding as it is.
    sink._render = lambda item: by_seq[item.seq]
    moment = int(run.checked_at.timestamp() * 1e9)
    items = [
        ExportItem(seq, "", AuditEvent(type="org_check", time_ns=moment), run_id) for seq in by_seq
    ]
    rejected: list[str] = []
    sink.open()
    try:
        size = max(1, min(sink.limits.max_events, 500))
        for start in range(0, len(items), size):
            batch: Sequence[Encoded] = [
                Encoded(i, sink.encode(i)) for i in items[start : start + size]
            ]
            rejected += _send(sink, batch, sleep, SinkRetry, SinkUnavailable)
    finally:
        sink.close()
    return ShipResult(sink_name, len(items) - len(rejected), tuple(rejected))


def _send(
    sink: Any, batch: Sequence[Any], sleep: Callable[[float], None], retry: Any, unavailable: Any
) -> list[str]:
    pending = list(batch)
    for attempt in range(RETRIES + 1):
        try:
            return [f"{r.seq}: {r.reason}" for r in sink.send(pending)]
        except unavailable:
            raise
        except retry as exc:
            if attempt == RETRIES:
                raise ExternalServiceError(
                    f"sink {sink.name} kept failing: {exc.message}",
                    hint="the run's findings were not all delivered; rerun to send them again",
                ) from None
            if exc.pending is not None:
                keep = set(exc.pending)
                pending = [e for e in pending if e.item.seq in keep]
            sleep(exc.retry_after_s if exc.retry_after_s is not None else 2**attempt * 0.5)
    return []
