"""Throttling of failed logins, per client address and per account.

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

The counts live in a limiter (gate.limits): in memory for one process, or in the database
(gate.shared_limits) so that they hold across every gate process and host. `attempt` counts a
try before the password is checked, in one atomic step with the check of the limits, so
parallel guesses cannot all pass while none has failed yet; a successful login gives its count
back. A database the limiter cannot reach raises (SQLAlchemy's errors): no login then.
"""

from __future__ import annotations

import time

from gate.limits import Windows

MAX_ACCOUNT, ACCOUNT_WINDOW = 5, 60
MAX_ACCOUNT_ANY = 10
MAX_ADDRESS, ADDRESS_WINDOW = 20, 600
KNOWN_FOR = 30 * 24 * 3600  # an address the account logged in from stays known this long
MAX_KEYS = 100_000          # bounded memory under a spray of addresses (in-memory limiter)


class Throttle:
    def __init__(self, windows=None, clock=None):
        """windows: a limiter (gate.limits.Windows or gate.shared_limits.SharedWindows); by
        default one in memory. clock: seconds (wall clock), replaceable by tests."""
        self.clock = clock or time.time
        self._failures = windows if windows is not None else Windows(
            max_keys=MAX_KEYS, horizon=ADDRESS_WINDOW)
        self._failures.clock = lambda: self.clock()  # this throttle's own limiter

    def _checks(self, address: str, account: str, known_device: bool) -> list:
        f = self._failures
        checks = [(("a", address), MAX_ADDRESS, ADDRESS_WINDOW)]
        if known_device or f.touched(("known", account, address), KNOWN_FOR):
            checks.append((("ua", account, address), MAX_ACCOUNT, ACCOUNT_WINDOW))
        elif f.count(("ua", account, address), ACCOUNT_WINDOW):
            checks.append((("u", account), MAX_ACCOUNT, ACCOUNT_WINDOW))
        else:
            checks.append((("u", account), MAX_ACCOUNT_ANY, ACCOUNT_WINDOW))
        return checks

    @staticmethod
    def _keys(address: str, account: str) -> tuple:
        return ("a", address), ("u", account), ("ua", account, address)

    def attempt(self, address: str, account: str, known_device: bool = False) -> int:
        """A try about to be made: 0 when it may go ahead (it is counted as a failure now; call
        `succeeded` if it succeeds), else the seconds to wait (nothing counted)."""
        return self._failures.take(self._keys(address, account),
                                   self._checks(address, account, known_device))

    def retry_after(self, address: str, account: str, known_device: bool = False) -> int:
        """Seconds to wait (0 = may try now); counts nothing."""
        f = self._failures
        return max(f.wait(key, limit, window)
                   for key, limit, window in self._checks(address, account, known_device))

    def failed(self, address: str, account: str) -> None:
        self._failures.add(*self._keys(address, account))

    def succeeded(self, address: str, account: str, attempted: bool = True) -> None:
        """The account logged in from `address`: its counts are cleared, the address becomes
        known, and the try counted by `attempt` is given back to the address."""
        f = self._failures
        if attempted:
            f.give_back(("a", address))
        f.forget(("u", account))
        f.forget(("ua", account, address))
        f.touch(("known", account, address))
