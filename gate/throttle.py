"""Throttling of failed logins, per client address and per account, in memory.

Per account: MAX_ACCOUNT failures within ACCOUNT_WINDOW seconds block further tries for the
rest of that window, but only from addresses that have failed on that account themselves: the
owner, from another address, may always try (so an attacker can never lock them out), and each
new address of an attacker gets one try before it is blocked too. Tries while blocked are not
counted. Per address: MAX_ADDRESS failures within ADDRESS_WINDOW, whatever the account.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict, deque

MAX_ACCOUNT, ACCOUNT_WINDOW = 5, 60
MAX_ADDRESS, ADDRESS_WINDOW = 20, 600


class Throttle:
    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._lock = threading.Lock()
        self._failures = defaultdict(deque)  # key -> times of failures

    def _recent(self, key, window):
        q = self._failures.get(key)
        if not q:
            return 0
        cutoff = self.clock() - window
        while q and q[0] <= cutoff:
            q.popleft()
        if not q:
            del self._failures[key]
            return 0
        return len(q)

    def retry_after(self, address: str, account: str) -> int:
        """Seconds to wait (0 = may try now)."""
        with self._lock:
            waits = []
            checks = [(("a", address), MAX_ADDRESS, ADDRESS_WINDOW)]
            if self._recent(("ua", account, address), ACCOUNT_WINDOW):
                checks.append((("u", account), MAX_ACCOUNT, ACCOUNT_WINDOW))
            for key, limit, window in checks:
                if self._recent(key, window) >= limit:
                    q = self._failures[key]
                    waits.append(max(1, math.ceil(q[-limit] + window - self.clock())))
            return max(waits, default=0)

    def failed(self, address: str, account: str) -> None:
        with self._lock:
            now = self.clock()
            self._failures[("a", address)].append(now)
            self._failures[("u", account)].append(now)
            self._failures[("ua", account, address)].append(now)
            if len(self._failures) > 100_000:  # bounded memory under a spray of addresses
                self._failures.clear()

    def succeeded(self, address: str, account: str) -> None:
        with self._lock:
            self._failures.pop(("u", account), None)
            self._failures.pop(("ua", account, address), None)
