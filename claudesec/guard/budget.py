"""Per-user token budgets: the state policy needs to enforce ``tokens_per_minute/day``.

Policy only *reads* a ledger (how many tokens has this user spent in the last N seconds?);
the caller *charges* it once a call's real usage is known (input + output tokens from the
response). :class:`InMemoryBudgetLedger` serves one process. The audit store may provide a
persistent implementation of :class:`BudgetLedger` later, so that budgets survive restarts and
are shared between processes on a host; anything with these two methods will do.

Windows slide: "per minute" means the 60 seconds before now, "per day" the 86 400 seconds
before now, so a user cannot spend two budgets across a window boundary.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Protocol, runtime_checkable

MINUTE_S = 60
DAY_S = 86_400


@runtime_checkable
class BudgetLedger(Protocol):
    """Token usage per user over time. Implementations must be thread-safe."""

    def used(self, user: str, window_s: int, now: float) -> int:
        """Tokens charged to ``user`` in ``(now - window_s, now]``."""
        ...

    def charge(self, user: str, tokens: int, now: float) -> None:
        """Record that ``user`` spent ``tokens`` at time ``now`` (seconds since the epoch)."""
        ...


class InMemoryBudgetLedger:
    """A thread-safe, in-process :class:`BudgetLedger` keeping one bucket per user-second.

    Memory per user is bounded by the longest window in seconds (``horizon_s``), however many
    calls are made, since charges within one second share a bucket.
    """

    def __init__(self, horizon_s: int = DAY_S) -> None:
        self._horizon_s = horizon_s
        self._lock = threading.Lock()
        self._buckets: dict[str, deque[list[int]]] = {}

    def used(self, user: str, window_s: int, now: float) -> int:
        since = int(now) - window_s
        with self._lock:
            buckets = self._buckets.get(user)
            if not buckets:
                return 0
            self._prune(buckets, int(now))
            return sum(tokens for second, tokens in buckets if second > since)

    def charge(self, user: str, tokens: int, now: float) -> None:
        if tokens <= 0:
            return
        second = int(now)
        with self._lock:
            buckets = self._buckets.setdefault(user, deque())
            if buckets and buckets[-1][0] == second:
                buckets[-1][1] += tokens
            elif buckets and buckets[-1][0] > second:
                # A clock that stepped back: charge the newest bucket rather than lose usage.
                buckets[-1][1] += tokens
            else:
                buckets.append([second, tokens])
            self._prune(buckets, second)

    def _prune(self, buckets: deque[list[int]], now: int) -> None:
        while buckets and buckets[0][0] <= now - self._horizon_s:
            buckets.popleft()
