"""A sliding-window brake on requests per key, held by the app (so per process)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Hashable

from flask import current_app

MAX_KEYS = 10_000


class RateLimiter:
    def __init__(self, limit: int, window_seconds: float = 60.0) -> None:
        self.limit = limit
        self.window = window_seconds
        self._hits: defaultdict[Hashable, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def allow(self, key: Hashable, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._hits) > MAX_KEYS:
                self._hits.clear()  # bounded memory; a brake, not a ledger rule
            hits = self._hits[key]
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            return True


def limiter(name: str, limit: int) -> RateLimiter:
    """The app's limiter called ``name``, created on first use."""
    limiters: dict[str, RateLimiter] = current_app.extensions.setdefault("rate_limiters", {})
    if name not in limiters:
        limiters[name] = RateLimiter(limit)
    return limiters[name]
