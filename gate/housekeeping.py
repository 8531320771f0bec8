"""Background chores of `gate serve`, off every request's path: the last use of API tokens and
the counted refusals are written in batches, the audit log is pruned to GATE_AUDIT_DAYS, the
used tokens of the client portal are forgotten once expired (gate.sso), and the accounts
snapshot is kept fresh even in a process no request has reached for a while: it is what answers
when the database goes away, and a logout made in another process must be in it
(gate.identities). More chores (usage counts: gate.usage_log.Keeper) are passed in. Each chore
fails soft (logged, tried again next time)."""

from __future__ import annotations

import logging
import threading
import time

from gate import audit, sso
from gate.clock import utcnow

log = logging.getLogger("gate.housekeeping")
TOKEN_USE_EVERY = 60   # seconds between writes of the API tokens' last use
PRUNE_EVERY = 3600     # seconds between prunings of the audit log
SSO_PRUNE_EVERY = 60   # seconds between prunings of the portal's used token ids (they live 5 min)
TICK = 10.0            # seconds between rounds: a snapshot is at most REFRESH + TICK old


class Housekeeper(threading.Thread):
    def __init__(self, engine, identities, refusals, audit_days: int, interval: float = TICK,
                 chores=()):
        """chores: more callables run every tick, each as chore(final) (gate.usage_log.Keeper)."""
        super().__init__(name="housekeeping", daemon=True)
        self.chores = tuple(chores)
        self.engine, self.identities, self.refusals = engine, identities, refusals
        self.audit_days, self.interval = audit_days, interval
        self._stopping = threading.Event()
        self._next_use = time.monotonic() + TOKEN_USE_EVERY
        self._next_prune = time.monotonic()
        self._next_sso_prune = time.monotonic()

    def stop(self) -> None:
        self._stopping.set()

    def tick(self, final: bool = False) -> None:
        now = time.monotonic()
        if not final:
            try:
                self.identities.snapshot()  # reloads only when older than its refresh time
            except Exception as exc:  # no snapshot yet and the database away: next tick
                log.warning("could not load the accounts snapshot: %s", exc)
        self.refusals.flush()
        for chore in self.chores:
            try:
                chore(final)
            except Exception:  # one chore's trouble stops no other
                log.exception("housekeeping chore failed")
        if final or now >= self._next_use:
            self._next_use = now + TOKEN_USE_EVERY
            self.identities.token_use.flush(self.engine)
        if not final and now >= self._next_prune:
            self._next_prune = now + PRUNE_EVERY
            try:
                removed = audit.prune(self.engine, self.audit_days)
                if removed:
                    log.info("audit log: %s row(s) older than %s days deleted", removed, self.audit_days)
            except Exception as exc:  # the database may be down: next hour
                log.warning("could not prune the audit log: %s", exc)

        if not final and now >= self._next_sso_prune:
            self._next_sso_prune = now + SSO_PRUNE_EVERY
            try:
                sso.prune(self.engine, utcnow())
            except Exception as exc:  # the database may be down: next minute
                log.warning("could not prune the portal's used tokens: %s", exc)

    def run(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self.tick()
            except Exception:  # keep the thread alive whatever happens
                log.exception("housekeeping error")
        try:
            self.tick(final=True)
        except Exception:
            log.exception("housekeeping error at exit")
