"""Pieces the HTTP sinks share: status classification and turning network errors into retries."""

from __future__ import annotations

import http.client
from collections.abc import Callable
from typing import TypeVar

from claudesec.audit.export._http import HttpClient, Response
from claudesec.audit.export.interface import Render, Sink, SinkRetry, SinkUnavailable

T = TypeVar("T")


class HttpSink(Sink):
    """A sink that talks to its server through one :class:`HttpClient`, closed with the run."""

    def __init__(self, name: str, client: HttpClient, render: Render) -> None:
        super().__init__(name, render)
        self.client = client

    def close(self) -> None:
        self.client.close()


def transient(status: int) -> bool:
    """Statuses worth retrying: timeouts, throttling, server trouble."""
    return status in (408, 425, 429) or status >= 500


def call(what: str, send: Callable[[], T]) -> T:
    """Run ``send``; a network failure is a transient error for the runner to retry."""
    try:
        return send()
    except (OSError, http.client.HTTPException) as exc:
        raise SinkRetry(f"{what}: {type(exc).__name__}: {exc}") from exc


def fail(what: str, answer: Response, hint: str = "") -> SinkUnavailable | SinkRetry:
    """The error for a whole-request failure (never includes request bodies or tokens)."""
    detail = answer.body[:300].decode("utf-8", "replace").strip()
    message = f"{what}: HTTP {answer.status} {detail}".rstrip()
    if transient(answer.status):
        return SinkRetry(message, retry_after_s=answer.retry_after_s())
    if answer.status in (401, 403):
        return SinkUnavailable(message, hint=hint or "check the sink's token_source")
    return SinkUnavailable(message, hint=hint or None)
