"""Storage faults, recognised in one place: a full disk, a database that is away, read-only or
locked. They pass (the space is freed, the server comes back), so the gate answers them with
503 and Retry-After instead of 500, and logs one line per fault instead of a traceback per
request (`FaultLog`).

`classify` is pure: it looks at an exception (SQLAlchemy's wrapper, the DBAPI driver's own, or
an OSError) and names its kind, or returns None for everything else (a bug, a damaged file),
which stays a 500 with its traceback.
"""

from __future__ import annotations

import errno
import logging
import threading
import time

FULL = "full"                # no space left: SQLITE_FULL, PostgreSQL disk_full, ENOSPC
IO = "io"                    # the disk failed a read or write: SQLITE_IOERR, EIO
READONLY = "readonly"        # read-only file or file system, a standby after failover
BUSY = "busy"                # locked longer than the timeout, too many connections
UNAVAILABLE = "unavailable"  # no connection: refused, terminated, cannot open the file

DESCRIPTIONS = {
    FULL: "the disk is full",
    IO: "the disk reports input/output errors",
    READONLY: "the database or its disk is read-only",
    BUSY: "the database is locked or busy",
    UNAVAILABLE: "the database cannot be reached",
}

# SQLite's primary result codes (sqlite3.Error.sqlite_errorcode & 0xff)
_SQLITE_CODES = {13: FULL, 10: IO, 8: READONLY, 5: BUSY, 6: BUSY, 14: UNAVAILABLE}
# PostgreSQL SQLSTATEs: exact codes first, then their class (the first two characters)
_PG_STATES = {"53100": FULL, "58030": IO, "25006": READONLY, "55P03": BUSY, "57014": BUSY,
              "53300": BUSY, "57P01": UNAVAILABLE, "57P02": UNAVAILABLE, "57P03": UNAVAILABLE,
              "57P04": UNAVAILABLE, "57P05": UNAVAILABLE}
_PG_CLASSES = {"08": UNAVAILABLE, "53": BUSY}
_ERRNOS = {errno.ENOSPC: FULL, errno.EDQUOT: FULL, errno.EIO: IO, errno.EROFS: READONLY}
# when a driver gives no code: its message (lower case) -> kind, first match wins
_MESSAGES = (
    ("database or disk is full", FULL), ("no space left on device", FULL),
    ("could not extend file", FULL), ("disk i/o error", IO),
    ("readonly database", READONLY), ("read-only transaction", READONLY),
    ("read-only file system", READONLY),
    ("database is locked", BUSY), ("database table is locked", BUSY),
    ("lock timeout", BUSY), ("too many clients", BUSY),
    ("unable to open database file", UNAVAILABLE), ("connection refused", UNAVAILABLE),
    ("could not connect", UNAVAILABLE), ("connection failed", UNAVAILABLE),
    ("server closed the connection", UNAVAILABLE), ("terminating connection", UNAVAILABLE),
    ("connection is closed", UNAVAILABLE), ("connection is lost", UNAVAILABLE),
    ("the database system is starting up", UNAVAILABLE),
    ("the database system is shutting down", UNAVAILABLE),
    ("the database system is in recovery mode", UNAVAILABLE),
    ("consuming input failed", UNAVAILABLE), ("sending query failed", UNAVAILABLE),
)


def _driver_error(exc: BaseException) -> BaseException:
    """The DBAPI driver's exception inside SQLAlchemy's wrapper (`.orig`), else `exc` itself."""
    orig = getattr(exc, "orig", None)
    return orig if isinstance(orig, BaseException) else exc


def _module(exc: BaseException) -> str:
    return type(exc).__module__.split(".")[0]


def classify(exc: BaseException) -> str | None:
    """The kind of storage fault `exc` is (FULL, IO, READONLY, BUSY, UNAVAILABLE), or None."""
    outer = type(exc)
    if outer.__module__.startswith("sqlalchemy") and outer.__name__ == "TimeoutError":
        return BUSY  # no connection free in the pool in time: the database is slow or stuck
    inner = _driver_error(exc)
    if isinstance(inner, OSError):
        return _ERRNOS.get(inner.errno)
    code = getattr(inner, "sqlite_errorcode", None)
    if _module(inner) == "sqlite3" and isinstance(code, int) and code & 0xFF in _SQLITE_CODES:
        return _SQLITE_CODES[code & 0xFF]
    state = getattr(inner, "sqlstate", None) or getattr(inner, "pgcode", None)
    if isinstance(state, str) and len(state) == 5:
        return _PG_STATES.get(state) or _PG_CLASSES.get(state[:2])
    if _module(inner) not in ("sqlite3", "psycopg", "psycopg2"):
        return None  # only database drivers and the operating system report storage faults
    text = str(inner).lower()
    for needle, kind in _MESSAGES:
        if needle in text:
            return kind
    if getattr(exc, "connection_invalidated", False):  # SQLAlchemy saw the connection drop
        return UNAVAILABLE
    if _module(inner) == "psycopg" and type(inner).__name__ in ("OperationalError",
                                                               "InterfaceError"):
        return UNAVAILABLE  # psycopg's connection failures carry no SQLSTATE
    return None


def summary(exc: BaseException) -> str:
    """The driver's message in one line, for the log."""
    inner = _driver_error(exc)
    text = " ".join(str(inner).split()) or type(inner).__name__
    return text[:300]


class FaultLog:
    """One log line per fault: the first occurrence of a kind, then at most one line every
    `every` seconds with how many more there were; `recovered` says when writes work again."""

    def __init__(self, logger: logging.Logger, every: float = 60.0, clock=time.monotonic):
        self.logger, self.every, self.clock = logger, every, clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}   # kind -> when it was last logged
        self._quiet: dict[str, int] = {}    # kind -> occurrences not logged since
        self.active_since: float | None = None
        self.last_kind: str | None = None
        self.last_seen = float("-inf")  # clock() of the latest fault, logged or not

    def seen(self, kind: str, exc: BaseException, where: str) -> bool:
        """Notes a fault; returns whether it was logged now."""
        now = self.clock()
        with self._lock:
            if self.active_since is None:
                self.active_since = now
            self.last_kind, self.last_seen = kind, now
            last = self._last.get(kind)
            if last is not None and now - last < self.every:
                self._quiet[kind] = self._quiet.get(kind, 0) + 1
                return False
            more = self._quiet.pop(kind, 0)
            self._last[kind] = now
        self.logger.error("storage fault (%s: %s) at %s: %s%s", kind, DESCRIPTIONS[kind], where,
                          summary(exc), f"; {more} more since the last line" if more else "")
        return True

    def recovered(self, what: str = "writes work") -> None:
        with self._lock:
            if self.active_since is None:
                return
            lasted = self.clock() - self.active_since
            quiet = sum(self._quiet.values())
            self.active_since, self.last_kind = None, None
            self._last.clear()
            self._quiet.clear()
        self.logger.warning("storage recovered: %s again (faults began %.0f s ago; %s not "
                            "logged)", what, lasted, quiet)


faults = FaultLog(logging.getLogger("gate.storage"))
