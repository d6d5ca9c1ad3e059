"""boto3 clients for the AWS sinks, and AWS errors sorted into retry / stop."""

from __future__ import annotations

from typing import Any

from claudesec.audit.export.interface import SinkRetry, SinkUnavailable

_THROTTLING = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ServiceUnavailableException",
        "ServiceUnavailable",
        "SlowDown",
        "InternalError",
        "InternalFailure",
        "RequestTimeout",
    }
)


def client(service: str, region: str, endpoint_url: str, timeout_s: float) -> Any:
    """A boto3 client whose every request gives up after ``timeout_s`` (the sink's
    ``timeout_s``): botocore's own defaults (60 s to read, per attempt) would hold a hung
    endpoint for minutes before the runner could retry or report it."""
    import boto3
    from botocore.config import Config

    make: Any = boto3.client  # the service name is dynamic: skip the per-service overloads
    return make(
        service,
        region_name=region or None,
        endpoint_url=endpoint_url or None,
        config=Config(
            connect_timeout=timeout_s,
            read_timeout=timeout_s,
            # The runner owns retries (with the cursor and backoff); one quick botocore
            # retry covers a dropped keep-alive connection without multiplying delays.
            retries={"total_max_attempts": 2, "mode": "standard"},
            tcp_keepalive=True,
        ),
    )


def translate(what: str, exc: Exception) -> SinkRetry | SinkUnavailable:
    """A boto3 failure as the runner's retry or stop signal."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code in _THROTTLING or status >= 500 or status == 429:
            return SinkRetry(f"{what}: {code}")
        return SinkUnavailable(f"{what}: {code}: {exc}")
    if isinstance(exc, BotoCoreError):
        return SinkRetry(f"{what}: {exc}")
    raise exc
