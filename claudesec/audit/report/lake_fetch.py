"""Copy a lake's Parquet objects from ``s3://bucket/prefix`` to a local directory for DuckDB.

DuckDB reads S3 through its ``httpfs`` extension, which it downloads on first use: impossible
on an offline host and one more binary to trust. boto3 (already a dependency, and configured
by the usual AWS chain) lists the objects under the prefix and downloads them in parallel,
keeping their keys as paths so the ``region=/accountId=/eventDay=`` partitions survive as Hive
partitions. Objects of the days outside the period are skipped by their ``eventDay``.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from claudesec.errors import ExternalServiceError, UsageError

_DAY = re.compile(r"(?:^|/)eventDay=(\d{8})/")


@dataclass(frozen=True, slots=True)
class Fetched:
    objects: int
    bytes: int
    directory: Path


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/prefix`` as (bucket, prefix)."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise UsageError(f"--from must be s3://BUCKET[/PREFIX], not {url!r}")
    return parts.netloc, parts.path.lstrip("/")


def fetch(
    url: str,
    directory: Path,
    *,
    first_day: str = "",
    last_day: str = "",
    region: str = "",
    endpoint_url: str = "",
    workers: int = 8,
) -> Fetched:
    """Download every ``.parquet`` object under ``url`` whose ``eventDay`` (if any) lies in
    ``first_day``..``last_day`` (YYYYMMDD, inclusive; empty = unbounded)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from claudesec.audit.export._aws import client

    bucket, prefix = parse_s3_url(url)
    s3 = client("s3", region, endpoint_url, 30.0)
    try:
        wanted = [
            (obj["Key"], int(obj["Size"]))
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for obj in page.get("Contents", [])
            if obj["Key"].endswith(".parquet") and _in_period(obj["Key"], first_day, last_day)
        ]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda kv: _download(s3, bucket, kv[0], directory), wanted))
    except (ClientError, BotoCoreError) as exc:
        raise ExternalServiceError(
            f"cannot read {url}: {exc}", hint="check the bucket, the prefix and AWS credentials"
        ) from exc
    return Fetched(len(wanted), sum(size for _, size in wanted), directory)


def _in_period(key: str, first_day: str, last_day: str) -> bool:
    found = _DAY.search(key)
    if found is None:
        return True
    day = found.group(1)
    return (not first_day or day >= first_day) and (not last_day or day <= last_day)


def _download(s3: Any, bucket: str, key: str, directory: Path) -> None:
    target = (directory / key).resolve()
    # A key is attacker-influenced text: it must stay inside the directory.
    if directory.resolve() not in target.parents:
        raise UsageError(f"refusing object key outside the download directory: {key!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    s3.download_file(bucket, key, str(target))
