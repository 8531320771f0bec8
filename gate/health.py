"""What /healthz reports: can the gate serve pages, and can it write.

Serving needs the built site (every edition's home page readable) and nothing from the
database: people already logged in are served from the accounts snapshot in memory. So the
answer is 503 only when the site's files are gone or unreadable; a full disk or a database that
is away is reported in the body (`writes`, `reads`, `fault`) and the answer stays 200, so that a
load balancer keeps a gate that still serves pages.

Writes are checked with a real write: one committed transaction that updates the schema's
version row to itself (no schema change, works in every database; a full disk, a read-only
database or standby and a dead connection all fail it), with short lock timeouts so a health
check never waits long. At most one probe every PROBE_EVERY seconds per process, and one at
once after any storage fault a request or the outbox worker met.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from gate.db import schema_version
from gate.storage_errors import classify, faults

log = logging.getLogger("gate.storage")
PROBE_EVERY = 5.0
LOCK_WAIT_MS = 2000  # how long the probe waits for another writer's lock


def site_readable(editions: dict) -> bool:
    """Every edition's home page can be read from disk."""
    if not editions:
        return False
    for edition in editions.values():
        page = edition.files.get("index.html")
        try:
            with open(page, "rb") as f:
                f.read(1)
        except (OSError, TypeError):
            return False
    return True


def disk_free(database_url: str) -> int | None:
    """Bytes free for the SQLite database's folder (None for other databases)."""
    url = sa.make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    try:
        st = os.statvfs(Path(url.database).resolve().parent)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def _short_waits(conn) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA busy_timeout = {LOCK_WAIT_MS}")
    elif conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = {LOCK_WAIT_MS}")
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {2 * LOCK_WAIT_MS}")


def _restore_waits(conn) -> None:
    if conn.dialect.name == "sqlite":  # the pool's connections wait 30 s (gate.engine.make_engine)
        conn.exec_driver_sql("PRAGMA busy_timeout = 30000")


class StorageProbe:
    def __init__(self, engine, database_url: str, every: float = PROBE_EVERY, clock=time.monotonic):
        self.engine, self.database_url, self.every, self.clock = engine, database_url, every, clock
        self._lock = threading.Lock()
        self._state: dict | None = None
        self._at = 0.0

    def state(self) -> dict:
        """{"reads": bool, "writes": bool, "fault": kind or None, "disk_free": bytes or None}"""
        with self._lock:  # concurrent health checks share one probe
            if (self._state is None or self.clock() - self._at >= self.every
                    or faults.last_seen > self._at):  # a fault since: look again now
                self._state, self._at = self._probe(), self.clock()
            return self._state

    def _probe(self) -> dict:
        reads = writes = False
        fault = None
        try:
            with self.engine.connect() as conn:
                try:
                    with conn.begin():
                        _short_waits(conn)
                        conn.execute(schema_version.update().where(
                            schema_version.c.version == sa.select(sa.func.max(
                                schema_version.c.version)).scalar_subquery())
                            .values(version=schema_version.c.version))
                    writes = reads = True
                except Exception as exc:  # noqa: BLE001 - the answer is the point
                    fault = _noted(exc)
                    conn.rollback()
                    conn.execute(sa.select(sa.func.max(schema_version.c.version)))
                    reads = True
                finally:
                    _restore_waits(conn)
        except Exception as exc:  # noqa: BLE001
            fault = fault or _noted(exc)
        if writes:
            faults.recovered()
        return {"reads": reads, "writes": writes, "fault": fault,
                "disk_free": disk_free(self.database_url)}


def _noted(exc: BaseException) -> str:
    kind = classify(exc)
    if kind is None:  # not a storage fault: a bug or damage, logged with its traceback
        log.error("health check failed", exc_info=exc)
        return "error"
    faults.seen(kind, exc, "health check")
    return kind
