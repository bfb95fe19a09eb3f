"""A sliding-window rate limit per principal (the security guide's limiter).

An attempt over the quota is refused and not recorded, so a caller that backs off is served again as soon
as its oldest request leaves the window.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from .errors import RateLimited


class RateLimit:
    """At most ``max_requests`` per ``window`` seconds for each key (a principal id or client address)."""

    def __init__(
        self, max_requests: int, window: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_requests < 1 or window <= 0:
            raise ValueError(f"need max_requests >= 1 and window > 0, got {max_requests}, {window}")
        self.max_requests = max_requests
        self.window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        """Record one request for ``key`` or raise RateLimited (with the seconds until a slot frees)."""
        now = self._clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and now - hits[0] >= self.window:
                hits.popleft()
            if len(hits) >= self.max_requests:
                wait = self.window - (now - hits[0])
                raise RateLimited("Rate limit exceeded", retry_after=max(wait, 0.0))
            hits.append(now)
