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

import time

from gate.limits import Windows

MAX_ACCOUNT, ACCOUNT_WINDOW = 5, 60
MAX_ACCOUNT_ANY = 10
MAX_ADDRESS, ADDRESS_WINDOW = 20, 600
KNOWN_FOR = 30 * 24 * 3600  # an address the account logged in from stays known this long
MAX_KEYS = 100_000          # bounded memory under a spray of addresses


class Throttle:
    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._failures = Windows(lambda: self.clock(), MAX_KEYS, horizon=ADDRESS_WINDOW)
        self._known = {}  # (account, address) -> time of the last success

    def _known_address(self, address: str, account: str) -> bool:
        since = self._known.get((account, address))
        return since is not None and self.clock() - since < KNOWN_FOR

    def retry_after(self, address: str, account: str, known_device: bool = False) -> int:
        """Seconds to wait (0 = may try now)."""
        f = self._failures
        with f.lock:
            checks = [(("a", address), MAX_ADDRESS, ADDRESS_WINDOW)]
            if known_device or self._known_address(address, account):
                checks.append((("ua", account, address), MAX_ACCOUNT, ACCOUNT_WINDOW))
            elif f.count(("ua", account, address), ACCOUNT_WINDOW):
                checks.append((("u", account), MAX_ACCOUNT, ACCOUNT_WINDOW))
            else:
                checks.append((("u", account), MAX_ACCOUNT_ANY, ACCOUNT_WINDOW))
            return max(f.wait(key, limit, window) for key, limit, window in checks)

    def failed(self, address: str, account: str) -> None:
        self._failures.add(("a", address), ("u", account), ("ua", account, address))

    def succeeded(self, address: str, account: str) -> None:
        with self._failures.lock:
            self._failures.forget(("u", account))
            self._failures.forget(("ua", account, address))
            if len(self._known) > MAX_KEYS:
                self._known.clear()
            self._known[(account, address)] = self.clock()
