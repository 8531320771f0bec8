"""The limiter of gate.limits in the database, so every limit holds across all gate processes
and hosts that share it (one SQLite file on one host, PostgreSQL across hosts).

One row per counted event (key, time in milliseconds), written for all of a request's keys in
one INSERT; a window is one indexed count. The number of rows a key can have within its window
is bounded by its limit, because refused events are not counted. The windows are exact, as in
memory: a wait never lasts longer than the window (the contract's "at most 60 s"). Keys are
stored as SHA-256 hashes: no address or e-mail in the table. Rows carry the time they may go
(`keep_until`) and are pruned in the background, at most once a minute per process. Hosts
must keep their clocks in step (NTP), as they must for token expiry anyway.

`take` checks and counts in one transaction. On PostgreSQL it first takes a transaction-scoped
advisory lock per checked key (in a fixed order, so two transactions never deadlock), so
concurrent requests on any host see each other's counts; on SQLite the insert comes first and
takes the database's one write lock before anything is counted, which orders them the same
way. The counters are worth little after a crash, so the engine given here may commit
without waiting for the disk (gate.instance.open_counters).

Errors of the database are SQLAlchemy's and propagate: the caller decides (a login cannot go
ahead unlimited; a search falls back to a per-process limit).
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from gate.db import limit_events, limit_marks

log = logging.getLogger("gate.limits")
PRUNE_EVERY = 60                  # seconds between prunes in one process
REMEMBER = 31 * 24 * 3600         # how long touched keys are kept (gate.throttle.KNOWN_FOR + a day)


def key_id(key) -> str:
    """A key (a tuple) as stored: a hash, so no address or e-mail is written down."""
    text = "\x1f".join(str(part) for part in (key if isinstance(key, tuple) else (key,)))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _ms(seconds: float) -> int:
    return int(math.floor(seconds * 1000))


def _lock_number(kid: str) -> int:
    return int(kid[:15], 16)  # 60 bits: a positive BIGINT for pg_advisory_xact_lock


class _Refused(Exception):
    """Rolls back a `take` whose limits were reached."""


class SharedWindows:
    def __init__(self, engine: sa.Engine, clock=time.time, horizon: float = 3600,
                 remember: float = REMEMBER):
        """horizon: the longest window asked about; remember: how long `touch` is kept."""
        self.engine, self.clock, self.horizon, self.remember = engine, clock, horizon, remember
        self._next_prune = 0.0
        self._prune_lock = threading.Lock()

    # --- reading -----------------------------------------------------------------------------
    def count(self, key, window: float) -> int:
        kid = key_id(key)
        with self.engine.connect() as conn:
            return self._counts(conn, [(kid, window)], self.clock()).get(kid, 0)

    def wait(self, key, limit: int, window: float) -> int:
        """Seconds until `key` is below `limit` events in `window` (0: it is now)."""
        now, c = self.clock(), limit_events.c
        with self.engine.connect() as conn:
            # the limit-th newest event within the window: when it leaves, a try is allowed
            at = conn.execute(sa.select(c.at).where(c.key == key_id(key), c.at > _ms(now - window))
                              .order_by(c.at.desc()).offset(limit - 1).limit(1)).scalar()
        return 0 if at is None else max(1, math.ceil(at / 1000 + window - now))

    def touched(self, key, within: float) -> bool:
        with self.engine.connect() as conn:
            at = conn.execute(sa.select(limit_marks.c.at).where(
                limit_marks.c.key == key_id(key))).scalar()
        return at is not None and self.clock() - at / 1000 < within

    # --- counting ----------------------------------------------------------------------------
    def add(self, *keys) -> None:
        now = self.clock()
        with self.engine.begin() as conn:
            self._insert_events(conn, [key_id(k) for k in keys], now)
        self._maybe_prune(now)

    def take(self, keys, limits) -> int:
        """Counts one event for each of `keys` when every (key, limit, window) of `limits` is
        below its limit (0); else the seconds to wait, nothing counted."""
        now = self.clock()
        ids = [key_id(k) for k in keys]
        checks = [(key_id(k), limit, window) for k, limit, window in limits]
        try:
            with self.engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    for number in sorted({_lock_number(kid) for kid, _, _ in checks}):
                        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(number)))
                self._insert_events(conn, ids, now)  # SQLite: takes the write lock first
                counts = self._counts(conn, [(kid, window) for kid, _, window in checks], now)
                if any(counts.get(kid, 0) - ids.count(kid) >= limit for kid, limit, _ in checks):
                    raise _Refused
        except _Refused:
            return max(self.wait(k, limit, window) for k, limit, window in limits)
        finally:
            self._maybe_prune(now)
        return 0

    def hit(self, key, limit: int, window: float) -> int:
        return self.take((key,), ((key, limit, window),))

    def give_back(self, key) -> None:
        kid, c = key_id(key), limit_events.c
        latest = sa.select(sa.func.max(c.id)).where(c.key == kid).scalar_subquery()
        with self.engine.begin() as conn:
            conn.execute(limit_events.delete().where(c.id == latest))

    def forget(self, key) -> None:
        with self.engine.begin() as conn:
            conn.execute(limit_events.delete().where(limit_events.c.key == key_id(key)))

    def touch(self, key) -> None:
        now = self.clock()
        row = {"key": key_id(key), "at": _ms(now), "keep_until": _ms(now + self.remember)}
        with self.engine.begin() as conn:
            stmt = _insert(conn)(limit_marks).values(row)
            conn.execute(stmt.on_conflict_do_update(
                index_elements=[limit_marks.c.key],
                set_={"at": stmt.excluded.at, "keep_until": stmt.excluded.keep_until}))

    # --- inside ------------------------------------------------------------------------------
    def _insert_events(self, conn, ids, now: float) -> None:
        if ids:
            at, keep = _ms(now), _ms(now + self.horizon)
            conn.execute(limit_events.insert(), [{"key": kid, "at": at, "keep_until": keep}
                                                 for kid in sorted(ids)])

    @staticmethod
    def _counts(conn, wanted, now: float) -> dict:
        """key id -> events within its window, for [(key id, window)], in one query."""
        c = limit_events.c
        where = sa.or_(*[sa.and_(c.key == kid, c.at > _ms(now - window)) for kid, window in wanted])
        return dict(conn.execute(sa.select(c.key, sa.func.count()).where(where)
                                 .group_by(c.key)).all())

    def _maybe_prune(self, now: float) -> None:
        if now < self._next_prune or not self._prune_lock.acquire(blocking=False):
            return
        self._next_prune = now + PRUNE_EVERY
        threading.Thread(target=self._prune, args=(now,), name="limits-prune", daemon=True).start()

    def _prune(self, now: float) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(limit_events.delete().where(limit_events.c.keep_until < _ms(now)))
                conn.execute(limit_marks.delete().where(limit_marks.c.keep_until < _ms(now)))
        except sa.exc.SQLAlchemyError as exc:  # the next prune tries again
            log.warning("limits: pruning failed: %s", exc)
        finally:
            self._prune_lock.release()


def _insert(conn):
    """INSERT with ON CONFLICT, for the databases the gate supports."""
    dialects = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
    if conn.dialect.name not in dialects:
        raise NotImplementedError(f"shared limits need SQLite or PostgreSQL, not {conn.dialect.name}")
    return dialects[conn.dialect.name]
