"""Progress of a long scan on a terminal: items done of total, and the rate, on one stderr line.

A scan that runs for minutes (``--history`` over thousands of commits, a tree of a million
files) must show that it is alive. The line is plain text rewritten in place with a carriage
return (no ``rich`` import: the scan path stays fast to start), drawn at most a few times a
second, and erased when the scan ends so the report and summary below it stay clean. Nothing is
drawn when stderr is not a terminal.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import IO

# done, total, unit ("files", "blobs")
ProgressFn = Callable[[int, int, str], None]

REDRAW_S = 0.2


class TerminalProgress:
    """A :data:`ProgressFn` that draws ``scanning: 1,200/47,000 files (2%)  3,100 files/s``."""

    def __init__(self, stream: IO[str], *, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = stream
        self._clock = clock
        self._started = clock()
        self._drawn_at: float | None = None
        self._shown = False

    def __call__(self, done: int, total: int, unit: str) -> None:
        now = self._clock()
        final = total > 0 and done >= total
        if self._drawn_at is not None and now - self._drawn_at < REDRAW_S and not final:
            return
        self._drawn_at = now
        elapsed = now - self._started
        rate = f"  {done / elapsed:,.0f} {unit}/s" if elapsed > 0 and done else ""
        share = f" ({100 * done // total}%)" if total else ""
        self._stream.write(f"\r\x1b[Kscanning: {done:,}/{total:,} {unit}{share}{rate}")
        self._stream.flush()
        self._shown = True

    def close(self) -> None:
        """Erase the line (the summary that follows takes its place)."""
        if self._shown:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._shown = False
