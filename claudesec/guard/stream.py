"""Watching an SSE answer as it streams: usage, errors, and response redaction.

:class:`SseMonitor` sits between the upstream socket and the caller. Without response
redaction it forwards every chunk untouched and only keeps the few events that carry usage or
errors; with it, text deltas are redacted as they stream, holding back just the tail that might
be the start of a secret. When the stream ends the monitor hands its :class:`Outcome` to the
pipeline, which writes the attempt's record.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import weakref
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol

from claudesec.errors import ClaudesecError
from claudesec.guard.dlp import DlpReport, DlpScanner, Finding, redact_findings
from claudesec.guard.model import (
    Admission,
    Outcome,
    StreamEnd,
    Usage,
    positive_int,
    short_str,
)

if TYPE_CHECKING:
    from claudesec.audit.store import StoredRecord

log = logging.getLogger("claudesec.audit")


class StreamOwner(Protocol):
    """What a monitor needs of the pipeline that made it."""

    @property
    def scanner(self) -> DlpScanner: ...

    @property
    def responses(self) -> Literal["off", "secrets", "all"]: ...

    def finish(self, admission: Admission, outcome: Outcome) -> StoredRecord | None: ...

    async def finish_async(self, admission: Admission, outcome: Outcome) -> StoredRecord | None: ...


# Where a value split across deltas may still be growing: a PEM block not yet closed, or a
# run of number groups ("4111 1111 ") at the end, or the last word.
_DIGIT_TAIL = re.compile(r"(?:[+(]?\d[\d().-]*[ ]?){1,8}\Z")
_HOLD_LIMIT = 8192


class _HeldText:
    """Per content block: emit text as it streams, holding back a tail that might be the start
    of a secret, and redact with the last emitted characters as context.

    The limit: a value is caught if it has no whitespace (keys, tokens, emails), or is a run
    of number groups (cards, phones), or a PEM block; a value with other spaces in it that
    straddles two deltas can slip through in pieces. The final message (``messages.stream()``'s
    accumulated one) is built from these redacted deltas.
    """

    def __init__(self, scanner: DlpScanner, pii: bool) -> None:
        self._scanner = scanner
        self._pii = pii
        self._pending = ""
        self._context = ""  # the last emitted characters, unredacted
        self.report = DlpReport()

    def push(self, text: str) -> str:
        self._pending += text
        cut = _safe_cut(self._pending)
        if cut <= 0:
            return ""
        return self._emit(cut)

    def flush(self) -> str:
        return self._emit(len(self._pending)) if self._pending else ""

    @property
    def holding(self) -> bool:
        return bool(self._pending)

    def _emit(self, cut: int) -> str:
        out, self._pending = self._pending[:cut], self._pending[cut:]
        context = self._context
        joined = context + out
        data = joined.encode("utf-8", "surrogatepass")
        base = len(context.encode("utf-8", "surrogatepass"))
        findings = [f for f in self._scanner.scan_bytes(data, pii=self._pii) if f.end > base]
        self._context = joined[-256:]
        if not findings:
            return out
        # Only the part past the context is still ours to change.
        clipped = [
            Finding(f.kind, f.category, max(0, f.start - base), f.end - base, f.part)
            for f in findings
        ]
        self.report = self.report.merged(DlpReport.of(clipped))
        return redact_findings(out, clipped)


def _safe_cut(text: str) -> int:
    begin = text.rfind("-----BEGIN")
    if begin != -1 and text.find("-----END", begin) == -1 and len(text) - begin < _HOLD_LIMIT:
        return begin
    cut = max(text.rfind(" "), text.rfind("\n"), text.rfind("\t")) + 1
    if cut <= 0:
        return 0 if len(text) < _HOLD_LIMIT else len(text)
    tail = _DIGIT_TAIL.search(text, max(0, cut - 64), cut)
    if tail is not None and tail.start() < cut:
        cut = tail.start()
    return cut


class SseMonitor:
    """Watches an SSE response as it streams: usage from ``message_start``/``message_delta``,
    errors from ``error`` events, and (when response redaction is on) rewrites text deltas.

    Without redaction, chunks pass through untouched. With redaction, output is released one
    complete event at a time, and only text deltas are decoded. Either way the events that
    carry usage or errors are only kept as bytes on the way through and decoded when the
    stream ends: nothing delays the first event. ``finish`` is idempotent: the first call
    writes the record.
    """

    def __init__(
        self, pipeline: StreamOwner, admission: Admission, *, status: int, request_id: str
    ) -> None:
        self._pipeline = pipeline
        self._admission = admission
        self._status = status
        self._request_id = request_id
        self._redact = pipeline.responses != "off" and admission.request.path == "/v1/messages"
        self._pii = pipeline.responses == "all"
        self._partial = b""
        self._event = b""
        self._usage_in = 0
        self._usage_out = 0
        self._cache = 0
        self._stop_reason = ""
        self._model = ""
        self._error = ""
        self._noted: list[tuple[bytes, bytes]] = []
        self._released = False  # whether any bytes have been handed out yet
        self._held: dict[int, _HeldText] = {}
        self._report = DlpReport()
        self._done = False
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- bytes in, bytes out

    def feed(self, chunk: bytes) -> bytes:
        """Observe ``chunk``; return the bytes to forward in its place."""
        if not self._redact:
            self._watch(chunk)
            return chunk
        return b"".join(self.feed_parts(chunk))

    def feed_parts(self, chunk: bytes) -> Iterator[bytes]:
        """:meth:`feed` in pieces, each to be forwarded as soon as it is yielded.

        Until the first bytes have gone out, the events that need no rewriting
        (``message_start``, ``ping``...) are a piece of their own, released before any text
        delta of the same chunk is decoded and scanned: the caller's time to first byte does
        not wait for DLP. Later chunks come out in one piece (one write each)."""
        if not self._redact:
            self._watch(chunk)
            if chunk:
                yield chunk
            return
        data = (
            self._partial + chunk.replace(b"\r", b"") if b"\r" in chunk else self._partial + chunk
        )
        find = data.find
        frames: list[tuple[int, int, bytes, bytes]] = []
        first = -1  # the first frame to rewrite
        start = 0
        end = find(b"\n\n")
        while end != -1:
            event, raw = _event_and_data(data, start, end)
            if event in _NOTED_EVENTS:
                # Noted for the whole chunk up front: a caller that stops reading after the
                # first piece still gets the usage the upstream reported in this chunk.
                self._note(event, raw)
            elif event in _REWRITTEN_EVENTS and first == -1:
                first = len(frames)
            frames.append((start, end + 2, event, raw))
            start = end + 2
            end = find(b"\n\n", start)
        self._partial = data[start:]
        if first == -1:
            if start:
                self._released = True
                yield data[:start]
            return
        out: list[bytes] = []
        if first and not self._released:
            self._released = True
            yield data[: frames[first][0]]
        elif first:
            out.append(data[: frames[first][0]])
        for begin, stop, event, raw in frames[first:]:
            if event in _REWRITTEN_EVENTS:
                out.append(self._rewrite(event, raw, data[begin:stop]))
            else:
                out.append(data[begin:stop])
        self._released = True
        yield b"".join(out)

    def _watch(self, chunk: bytes) -> None:
        """Pass-through mode: find the data lines of the events that carry usage or errors."""
        data = self._partial + chunk if self._partial else chunk
        cut = data.rfind(b"\n") + 1
        self._partial = data[cut:]
        if not cut:
            return
        if self._event not in _NOTED_EVENTS and b"message_" not in data and b"error" not in data:
            # Only other events' lines here: whatever event is current after them is not one
            # to note either.
            self._event = b""
            return
        for line in data[: cut - 1].split(b"\n"):
            self._line(line.rstrip(b"\r"))

    def _line(self, line: bytes) -> None:
        if not line:
            self._event = b""
        elif line.startswith(b"event:"):
            self._event = line[6:].strip()
        elif line.startswith(b"data:") and self._event in _NOTED_EVENTS:
            self._note(self._event, line[5:].strip())

    def _note(self, event: bytes, raw: bytes) -> None:
        # Decoded at the end (a stream has one message_start and usually one message_delta);
        # folded early should an upstream send many, so memory stays bounded.
        noted = self._noted
        noted.append((event, raw))
        if len(noted) >= _NOTE_LIMIT:
            self._fold()

    def _fold(self) -> None:
        noted, self._noted = self._noted, []
        for event, raw in noted:
            self._data(event, raw)

    def _data(self, event: bytes, raw: bytes) -> dict[str, Any] | None:
        try:
            data = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        if event == b"message_start":
            message = data.get("message")
            if isinstance(message, Mapping):
                usage = Usage.of(message)
                self._usage_in = usage.input_tokens
                self._usage_out = usage.output_tokens
                self._cache = usage.cache_tokens
                self._model = usage.model
        elif event == b"message_delta":
            counts = data.get("usage")
            if isinstance(counts, Mapping):
                # Cumulative counts: the last message_delta has the final figures.
                self._usage_out = positive_int(counts.get("output_tokens")) or self._usage_out
                self._usage_in = positive_int(counts.get("input_tokens")) or self._usage_in
            delta = data.get("delta")
            if isinstance(delta, Mapping) and delta.get("stop_reason"):
                self._stop_reason = short_str(delta.get("stop_reason"))
        elif event == b"error":
            error = data.get("error")
            kind = error.get("type") if isinstance(error, Mapping) else None
            self._error = f"stream.{kind}" if isinstance(kind, str) else "stream.error"
        return data

    def _rewrite(self, event: bytes, raw: bytes, frame: bytes) -> bytes:
        data = self._data(event, raw)
        if data is None:
            return frame
        if event == b"content_block_delta":
            delta = data.get("delta")
            if isinstance(delta, dict) and delta.get("type") == "text_delta":
                held = self._held_for(data.get("index"))
                text = _str_any(delta.get("text"))
                out = held.push(text)
                if out == text and not held.holding:
                    return frame  # nothing held back, nothing redacted: the bytes as they came
                delta["text"] = out
                return _frame(event, data)
            return frame
        index = data.get("index")
        ending = self._held.get(index) if isinstance(index, int) else None
        if ending is not None:
            rest = ending.flush()
            self._report = self._report.merged(ending.report)
            del self._held[index]  # type: ignore[arg-type]
            if rest:
                flush = {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "text_delta", "text": rest},
                }
                return _frame(b"content_block_delta", flush) + frame
        return frame

    def _held_for(self, index: Any) -> _HeldText:
        key = index if isinstance(index, int) else 0
        held = self._held.get(key)
        if held is None:
            held = self._held[key] = _HeldText(self._pipeline.scanner, self._pii)
        return held

    # ----------------------------------------------------------------- the end

    def finish(self, how: StreamEnd, error: str = "") -> StoredRecord | None:
        """Write the attempt's record: the stream completed, was closed early, or failed."""
        outcome = self.outcome(how, error)
        return None if outcome is None else self._pipeline.finish(self._admission, outcome)

    async def finish_async(self, how: StreamEnd, error: str = "") -> StoredRecord | None:
        """:meth:`finish` without waiting on the store on the event loop."""
        outcome = self.outcome(how, error)
        if outcome is None:
            return None
        return await self._pipeline.finish_async(self._admission, outcome)

    def outcome(self, how: StreamEnd, error: str = "") -> Outcome | None:
        """How the stream ended, the first time this is asked (None afterwards)."""
        with self._lock:
            if self._done:
                return None
            self._done = True
        if self._partial and not self._redact:
            self._line(self._partial.rstrip(b"\r"))
        self._fold()
        report = self._report
        for held in self._held.values():
            report = report.merged(held.report)
        code = self._error or error
        if code:
            how = "failed"
        if how == "failed" and not code:
            code = "stream.failed"
        extra: dict[str, Any] = {"stream_end": how}
        if self._cache:
            extra["cache_tokens"] = self._cache
        return Outcome(
            status=self._status,
            request_id=self._request_id,
            model=self._model,
            input_tokens=self._usage_in,
            output_tokens=self._usage_out,
            stop_reason=self._stop_reason,
            error=code,
            response_dlp=report,
            extra=extra,
        )

    def finish_quietly(self, how: StreamEnd) -> None:
        """``finish`` from a finaliser or a close path that must not raise."""
        try:
            self.finish(how)
        except ClaudesecError as exc:
            log.error("claudesec: %s", exc.message)


_NOTED_EVENTS = frozenset({b"message_start", b"message_delta", b"error"})
_REWRITTEN_EVENTS = frozenset({b"content_block_delta", b"content_block_stop"})
_NOTE_LIMIT = 16


def _event_and_data(data: bytes, start: int, end: int) -> tuple[bytes, bytes]:
    """The event name and the (last) data line of the SSE frame ``data[start:end]``."""
    event = b""
    raw = b""
    for line in data[start:end].split(b"\n"):
        if line.startswith(b"event:"):
            event = line[6:].strip()
        elif line.startswith(b"data:"):
            raw = line[5:].strip()
    return event, raw


def _str_any(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _frame(event: bytes, data: Mapping[str, Any]) -> bytes:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return b"event: " + event + b"\ndata: " + body + b"\n\n"


def finalize_on_collect(owner: object, monitor: SseMonitor) -> None:
    """Record an abandoned stream whose owner is garbage-collected without being closed."""
    weakref.finalize(owner, monitor.finish_quietly, "abandoned")
