"""Counting events per key in sliding time windows: the one limiter behind login throttling
(gate.throttle) and the search rate limit.

In memory, per process, bounded: under a spray of keys (addresses) it forgets what has expired,
and if that is not enough, everything.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict, deque

MAX_KEYS = 100_000


class Windows:
    def __init__(self, clock=time.monotonic, max_keys: int = MAX_KEYS, horizon: float = 3600):
        """horizon: the longest window the caller asks about (older events may be forgotten)."""
        self.clock, self.max_keys, self.horizon = clock, max_keys, horizon
        self.lock = threading.RLock()  # callers may hold it across several calls
        self._events = defaultdict(deque)  # key -> times of events, oldest first

    def count(self, key, window: float) -> int:
        """Events of `key` within the last `window` seconds."""
        with self.lock:
            q = self._events.get(key)
            if not q:
                return 0
            cutoff = self.clock() - window
            while q and q[0] <= cutoff:
                q.popleft()
            if not q:
                del self._events[key]
                return 0
            return len(q)

    def wait(self, key, limit: int, window: float) -> int:
        """Seconds until `key` is below `limit` events in `window` (0: it is now)."""
        with self.lock:
            if self.count(key, window) < limit:
                return 0
            q = self._events[key]
            return max(1, math.ceil(q[-limit] + window - self.clock()))

    def add(self, *keys) -> None:
        with self.lock:
            now = self.clock()
            for key in keys:
                self._events[key].append(now)
            if len(self._events) > self.max_keys:
                self._prune(now)

    def hit(self, key, limit: int, window: float) -> int:
        """Counts an event when `key` is below its limit and answers 0; else the seconds to
        wait (the refused event is not counted)."""
        with self.lock:
            wait = self.wait(key, limit, window)
            if not wait:
                self.add(key)
            return wait

    def forget(self, key) -> None:
        with self.lock:
            self._events.pop(key, None)

    def _prune(self, now: float) -> None:
        self._events = defaultdict(deque, {k: q for k, q in self._events.items()
                                           if q and q[-1] > now - self.horizon})
        if len(self._events) > self.max_keys:
            self._events.clear()
