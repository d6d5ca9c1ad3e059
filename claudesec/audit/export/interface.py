"""The one seam every export sink sits behind.

A sink turns an audit record into its own payload (:meth:`Sink.encode`) and ships a batch of
payloads (:meth:`Sink.send`). The runner owns everything else: reading the store, batching
under the sink's limits, retrying with backoff, the dead-letter file and the cursor. So a new
SIEM is one new module that knows its wire format and how its server says "yes", "no" and
"later" — nothing else changes.

How a sink answers:

* return normally: every payload not listed in the returned rejections is acknowledged;
* return :class:`Rejection` entries: the sink refused those events for good (malformed, too
  large); they go to the dead-letter file and the cursor moves past them;
* raise :class:`SinkRetry`: a transient failure (timeout, 429, 5xx); the runner backs off and
  retries the ``pending`` events (all of them when ``pending`` is None);
* raise :class:`SinkUnavailable`: the sink cannot work at all (bad credentials, missing
  index or bucket); the run stops with exit 3 and the cursor stays where it is.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from claudesec.audit.events import AuditEvent
from claudesec.errors import ExternalServiceError


@dataclass(frozen=True, slots=True)
class ExportItem:
    """One stored record on its way out, with the identity a sink needs for idempotence."""

    seq: int
    rec_hash: str
    event: AuditEvent
    store_id: str

    @property
    def uid(self) -> str:
        """Globally unique and stable: the same record always gets the same id, on any re-send."""
        return f"{self.store_id}-{self.seq}"


@dataclass(frozen=True, slots=True)
class Encoded:
    """An item and the bytes its sink will put on the wire for it."""

    item: ExportItem
    payload: bytes


@dataclass(frozen=True, slots=True)
class Rejection:
    """An event a sink refused permanently, and the sink's reason (never a secret)."""

    seq: int
    reason: str


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """What one request to the sink may carry."""

    max_events: int
    max_bytes: int


class SinkRetry(Exception):
    """A transient failure: retry ``pending`` (every event of the batch when None)."""

    def __init__(
        self,
        message: str,
        *,
        pending: Sequence[int] | None = None,
        rejected: Sequence[Rejection] = (),
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.pending = None if pending is None else tuple(pending)
        self.rejected = tuple(rejected)
        self.retry_after_s = retry_after_s


class SinkUnavailable(ExternalServiceError):
    """The sink cannot accept anything (credentials, missing index or bucket): stop, exit 3."""


#: How a sink shapes a record before its own envelope (OCSF, ECS or the raw record).
Render = Callable[[ExportItem], dict[str, Any]]


class Sink(ABC):
    """A destination for audit records."""

    kind: ClassVar[str]
    #: Whether re-sending an event the sink already holds leaves one copy (deterministic ids).
    idempotent: ClassVar[bool] = False
    limits: BatchLimits = BatchLimits(max_events=500, max_bytes=5_000_000)
    #: Events per batch when the sink's ``batch_size`` is unset (0 = ``export.batch_size``):
    #: a sink that writes one object per batch wants far more than a request-per-batch one.
    default_batch: ClassVar[int] = 0

    def __init__(self, name: str, render: Render) -> None:
        self.name = name
        self._render = render

    def encode(self, item: ExportItem) -> bytes:
        """The bytes this sink sends for ``item`` (used for batching by size): the rendered
        record as compact JSON, unless the sink wraps it in its own envelope."""
        return dumps(self._render(item))

    @abstractmethod
    def send(self, batch: Sequence[Encoded]) -> Sequence[Rejection]:
        """Deliver ``batch``; see the module docstring for how to answer."""

    def open(self) -> None:  # noqa: B027 - optional hook
        """Prepare (create a log stream, check the bucket) before the first batch."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; called once when the run ends."""


# One encoder for every event: json.dumps() with options builds a new encoder per call,
# which was a tenth of the export time.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def dumps(document: Any) -> bytes:
    """Compact JSON as every sink sends it, always valid UTF-8: a lone surrogate that reached
    the audit log (it can hold any str a caller passed) goes out as U+FFFD rather than
    stopping the export on that event for ever."""
    text = _ENCODER.encode(document)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        from claudesec.strict_json import scrub

        return _ENCODER.encode(scrub(document)).encode("utf-8")
