"""Failures the emulator can be told to produce, one request at a time."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FaultKind(StrEnum):
    """What the next matching request experiences instead of a normal answer."""

    RATE_LIMIT = "rate_limit"  # 429 rate_limit_error with retry-after
    SERVER_ERROR = "server_error"  # 500 api_error
    OVERLOADED = "overloaded"  # 529 overloaded_error
    DROP_CONNECTION = "drop_connection"  # socket closed before any response byte
    STREAM_CUT = "stream_cut"  # streaming only: connection closed mid-stream
    STREAM_ERROR = "stream_error"  # streaming only: an SSE `error` event mid-stream

    @property
    def streaming_only(self) -> bool:
        return self in (FaultKind.STREAM_CUT, FaultKind.STREAM_ERROR)


@dataclass(frozen=True)
class Fault:
    """One pending failure. It hits the first request whose path starts with ``path_prefix``."""

    kind: FaultKind
    path_prefix: str = "/v1/"
    # Seconds for a 429's retry-after header; None means the state's default.
    retry_after: float | None = None

    def matches(self, path: str, streaming: bool) -> bool:
        if self.kind.streaming_only and not streaming:
            return False
        return path.startswith(self.path_prefix)
