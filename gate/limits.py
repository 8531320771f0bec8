"""Counting events per key in sliding time windows: the one limiter interface behind login
throttling (gate.throttle) and the search rate limit.

Two backends with the same methods:
- `Windows` (here): in memory, per process, bounded: under a spray of keys (addresses) it
  forgets what has expired, and if that is not enough, everything. For one process (tests,
  tools).
- `gate.shared_limits.SharedWindows`: in the database, so a limit holds across every gate
  process and host that shares it. What `gate serve` uses.

Keys are tuples of strings. `take` is the one atomic step a limit needs: check some limits and
count an event only if none is reached, so concurrent requests cannot all slip under a limit.
`touch`/`touched` remember when a key was last seen (for "a known address").
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
        self._touched = {}  # key -> time it was last touched

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

    def take(self, keys, limits) -> int:
        """When every (key, limit, window) of `limits` is below its limit: counts one event for
        each of `keys` and answers 0. Otherwise the seconds to wait, and nothing is counted."""
        with self.lock:
            wait = max((self.wait(k, limit, window) for k, limit, window in limits), default=0)
            if not wait:
                self.add(*keys)
            return wait

    def hit(self, key, limit: int, window: float) -> int:
        """Counts an event when `key` is below its limit and answers 0; else the seconds to
        wait (the refused event is not counted)."""
        return self.take((key,), ((key, limit, window),))

    def give_back(self, key) -> None:
        """Uncounts the latest event of `key` (an attempt that turned out not to count)."""
        with self.lock:
            q = self._events.get(key)
            if q:
                q.pop()

    def forget(self, key) -> None:
        with self.lock:
            self._events.pop(key, None)

    def touch(self, key) -> None:
        with self.lock:
            if len(self._touched) > self.max_keys:
                self._touched.clear()
            self._touched[key] = self.clock()

    def touched(self, key, within: float) -> bool:
        """Whether `key` was touched within the last `within` seconds."""
        with self.lock:
            at = self._touched.get(key)
            return at is not None and self.clock() - at < within

    def _prune(self, now: float) -> None:
        self._events = defaultdict(deque, {k: q for k, q in self._events.items()
                                           if q and q[-1] > now - self.horizon})
        if len(self._events) > self.max_keys:
            self._events.clear()
