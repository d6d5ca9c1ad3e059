"""Shipping the audit log to the engines organisations already run.

One interface (:mod:`.interface`), one module per sink, two standard shapes (:mod:`.ocsf`,
:mod:`.ecs`), a durable cursor (:mod:`.cursor`) and the runner that ties them together
(:mod:`.runner`). Sink modules import their client libraries (boto3, confluent-kafka) only
when built, so ``claudesec --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from claudesec.errors import ConfigError
from claudesec.registry import Registry

if TYPE_CHECKING:
    from claudesec.audit.export.interface import ExportItem, Render, Sink
    from claudesec.config import ExportConfig, SinkConfig

# Each sink module's ``from_config(name, config) -> Sink``.
REGISTRY: Registry[Callable[[str, SinkConfig], Sink]] = Registry(
    "sink type",
    {
        "jsonl": "claudesec.audit.export.jsonl:from_config",
        "splunk": "claudesec.audit.export.splunk:from_config",
        "elastic": "claudesec.audit.export.elastic:from_config",
        "datadog": "claudesec.audit.export.datadog:from_config",
        "kafka": "claudesec.audit.export.kafka:from_config",
        "cloudwatch": "claudesec.audit.export.cloudwatch:from_config",
        "s3": "claudesec.audit.export.s3:from_config",
        "lake": "claudesec.audit.export.lake:from_config",
        "syslog": "claudesec.audit.export.syslog:from_config",
    },
)


def renderer(sink: SinkConfig) -> Render:
    """The event shape a sink sends: ECS for Elasticsearch unless told otherwise, else OCSF."""
    fmt = sink.format or ("ecs" if sink.type == "elastic" else "ocsf")
    if fmt == "ecs":
        from claudesec.audit.export.ecs import to_ecs

        return to_ecs
    if fmt == "raw":
        return raw_record
    from claudesec.audit.export.ocsf import to_ocsf

    return to_ocsf


def raw_record(item: ExportItem) -> dict[str, Any]:
    """The stored record as claudesec writes it, with its chain position."""
    record = item.event.to_dict()
    record["seq"] = item.seq
    record["rec_hash"] = item.rec_hash
    record["uid"] = item.uid
    return record


def build_sink(name: str, config: SinkConfig) -> Sink:
    """The configured sink ``name``, its module imported now and not before."""
    if config.type not in REGISTRY:
        raise ConfigError(
            f"export.sinks.{name}.type: unknown sink type {config.type!r}",
            hint=f"choose one of {', '.join(REGISTRY.names)}",
        )
    return REGISTRY.load(config.type)(name, config)


def sink_config(export: ExportConfig, name: str) -> SinkConfig:
    try:
        return export.sinks[name]
    except KeyError:
        known = ", ".join(sorted(export.sinks)) or "none configured"
        raise ConfigError(
            f"no sink named {name!r} (known: {known})",
            hint="add a [export.sinks.NAME] table to claudesec.toml",
        ) from None


def state_dir(export: ExportConfig) -> Path:
    """Where cursors and dead-letter files live."""
    from claudesec.paths import ensure_home, home_dir

    if export.state_dir:
        path = Path(export.state_dir).expanduser()
        return path if path.is_absolute() else home_dir() / path
    return ensure_home() / "export"
