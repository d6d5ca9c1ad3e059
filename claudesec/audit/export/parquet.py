"""OCSF API Activity events as one Arrow table with a fixed schema, for Parquet files.

Security Lake (and Athena, Glue, DuckDB) read a custom source's objects as one table, so every
object must carry the same columns whatever its events hold: the schema below lists every
attribute :func:`claudesec.audit.export.ocsf.to_ocsf` emits, absent ones are null. ``time`` stays
OCSF's ``timestamp_t`` (milliseconds since the epoch, int64); ``time_dt`` is the same instant as
a Parquet timestamp (OCSF's ``datetime`` profile), which is what SQL engines filter on best.

``unmapped`` is ``map<string,string>`` as in Security Lake's own OCSF tables: the nested
``unmapped.claudesec`` object is flattened to dotted keys (``claudesec.decision``,
``claudesec.extra.http_status``) with scalar values as text and lists joined by commas, so one
``element_at(unmapped, 'claudesec.role')`` works in Athena and DuckDB alike, with no JSON
functions (which the two spell differently).

pyarrow is imported by the functions, never at module import: the CLI stays fast.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

UNMAPPED_PREFIX = "claudesec."
_LIST_SEPARATOR = ","


@cache
def schema() -> pa.Schema:
    """The one Arrow schema every object of the lake sink has."""
    import pyarrow as pa

    text = pa.string()
    name_only = pa.struct([("name", text)])
    return pa.schema(
        [
            ("activity_id", pa.int32()),
            ("activity_name", text),
            ("category_uid", pa.int32()),
            ("category_name", text),
            ("class_uid", pa.int32()),
            ("class_name", text),
            ("type_uid", pa.int64()),
            ("type_name", text),
            ("severity_id", pa.int32()),
            ("severity", text),
            ("status_id", pa.int32()),
            ("status", text),
            ("status_detail", text),
            ("time", pa.int64()),
            ("time_dt", pa.timestamp("ms", tz="UTC")),
            ("duration", pa.int64()),
            ("message", text),
            (
                "metadata",
                pa.struct(
                    [
                        ("version", text),
                        ("uid", text),
                        ("sequence", pa.int64()),
                        ("event_code", text),
                        ("log_name", text),
                        ("profiles", pa.list_(text)),
                        (
                            "product",
                            pa.struct([("name", text), ("vendor_name", text), ("version", text)]),
                        ),
                    ]
                ),
            ),
            (
                "actor",
                pa.struct(
                    [
                        ("user", pa.struct([("uid", text), ("name", text)])),
                        ("app_name", text),
                    ]
                ),
            ),
            (
                "api",
                pa.struct(
                    [
                        ("operation", text),
                        ("service", name_only),
                        ("request", pa.struct([("uid", text)])),
                    ]
                ),
            ),
            ("src_endpoint", pa.struct([("hostname", text), ("name", text)])),
            ("ai_model", pa.struct([("name", text), ("ai_provider", text)])),
            (
                "message_context",
                pa.struct(
                    [
                        ("ai_role_id", pa.int32()),
                        ("ai_role", text),
                        ("prompt_tokens", pa.int64()),
                        ("completion_tokens", pa.int64()),
                        ("total_tokens", pa.int64()),
                        ("service", name_only),
                    ]
                ),
            ),
            ("unmapped", pa.map_(text, text)),
        ]
    )


def flatten_unmapped(unmapped: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``{"claudesec": {"role": "dev", "extra": {"http_status": 401}}}`` as
    ``[("claudesec.role", "dev"), ("claudesec.extra.http_status", "401")]``."""
    flat: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, inner in value.items():
                walk(f"{prefix}{key}.", inner)
            return
        key = prefix[:-1]
        if isinstance(value, str):
            flat.append((key, value))
        elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            flat.append((key, _LIST_SEPARATOR.join(value)))
        elif isinstance(value, bool) or value is None:
            flat.append((key, json.dumps(value)))
        elif isinstance(value, (int, float)):
            flat.append((key, str(value)))
        else:
            flat.append((key, json.dumps(value, separators=(",", ":"), default=str)))

    walk("", unmapped)
    return flat


def to_row(doc: Mapping[str, Any]) -> dict[str, Any]:
    """One OCSF document as a row of :func:`schema` (a shallow copy; the input is untouched)."""
    row = dict(doc)
    row["time_dt"] = doc["time"]
    row["unmapped"] = flatten_unmapped(doc.get("unmapped") or {})
    return row


def to_table(docs: Iterable[Mapping[str, Any]]) -> pa.Table:
    """Rows in the given order as one table of :func:`schema`."""
    import pyarrow as pa

    return pa.Table.from_pylist([to_row(doc) for doc in docs], schema=schema())


def to_parquet(table: pa.Table) -> bytes:
    """The table as one Parquet file in memory: zstd, one row group (objects are batch-sized)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(
        table,
        sink,
        compression="zstd",
        row_group_size=max(1, table.num_rows),
    )
    return bytes(sink.getvalue().to_pybytes())
