"""Throttling of failed logins, per client address and per account, in memory.

Per address: MAX_ADDRESS failures within ADDRESS_WINDOW, whatever the account.
Per account, limits lasting at most ACCOUNT_WINDOW (60 s):
- a *known* address (the account logged in from it within KNOWN_FOR) or a known device (the
  caller says so: a browser holding the login's device cookie) is blocked only after
  MAX_ACCOUNT failures of its own: the owner is never locked out by somebody else's guesses;
- another address that has failed on the account is blocked once the account has had
  MAX_ACCOUNT failures from anywhere (an attacker's address gets one try);
- any other address is blocked once the account has had MAX_ACCOUNT_ANY failures from anywhere,
  so guesses spread over many addresses get MAX_ACCOUNT_ANY a minute in all; the owner on a new
  network with a new browser may have to wait, each time at most 60 s.
Tries while blocked are not counted.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict, deque

MAX_ACCOUNT, ACCOUNT_WINDOW = 5, 60
MAX_ACCOUNT_ANY = 10
MAX_ADDRESS, ADDRESS_WINDOW = 20, 600
KNOWN_FOR = 30 * 24 * 3600  # an address the account logged in from stays known this long
MAX_KEYS = 100_000          # bounded memory under a spray of addresses


class Throttle:
    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._lock = threading.Lock()
        self._failures = defaultdict(deque)  # key -> times of failures
        self._known = {}                     # (account, address) -> time of the last success

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

    def _known_address(self, address: str, account: str) -> bool:
        since = self._known.get((account, address))
        return since is not None and self.clock() - since < KNOWN_FOR

    def retry_after(self, address: str, account: str, known_device: bool = False) -> int:
        """Seconds to wait (0 = may try now)."""
        with self._lock:
            waits = []
            checks = [(("a", address), MAX_ADDRESS, ADDRESS_WINDOW)]
            if known_device or self._known_address(address, account):
                checks.append((("ua", account, address), MAX_ACCOUNT, ACCOUNT_WINDOW))
            elif self._recent(("ua", account, address), ACCOUNT_WINDOW):
                checks.append((("u", account), MAX_ACCOUNT, ACCOUNT_WINDOW))
            else:
                checks.append((("u", account), MAX_ACCOUNT_ANY, ACCOUNT_WINDOW))
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
            if len(self._failures) > MAX_KEYS:  # a spray of addresses: forget what has expired
                cutoff = now - ADDRESS_WINDOW
                self._failures = defaultdict(deque, {k: q for k, q in self._failures.items()
                                                     if q and q[-1] > cutoff})
                if len(self._failures) > MAX_KEYS:
                    self._failures.clear()

    def succeeded(self, address: str, account: str) -> None:
        with self._lock:
            self._failures.pop(("u", account), None)
            self._failures.pop(("ua", account, address), None)
            if len(self._known) > MAX_KEYS:
                self._known.clear()
            self._known[(account, address)] = self.clock()
