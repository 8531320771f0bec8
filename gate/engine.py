"""Connections to the database: SQLite (durable writes, WAL) or PostgreSQL (UTC sessions,
a connect timeout), one engine per process. The schema is gate.db's."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import event

CONNECT_TIMEOUT = 5  # seconds, PostgreSQL


def make_engine(url: str, durable: bool = True) -> sa.Engine:
    """durable=False: commits do not wait for the disk (SQLite synchronous=NORMAL, PostgreSQL
    synchronous_commit off); a crash may lose the last moments, never corrupts. For counters
    only (gate.shared_limits)."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # FULL: an acknowledged request survives a crash
            cur.execute("PRAGMA synchronous=FULL" if durable else "PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    args = {}
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        # a server that does not answer at all (a host gone, packets dropped) fails a request
        # in seconds (503, gate.web.storage) instead of holding it for the system's TCP timeout
        args["connect_timeout"] = CONNECT_TIMEOUT
    engine = sa.create_engine(url, pool_pre_ping=True, connect_args=args)
    if engine.dialect.name == "postgresql":
        @event.listens_for(engine, "connect")
        def _utc_session(dbapi_conn, _record):
            # Times are stored as naive UTC (TIMESTAMP WITHOUT TIME ZONE); the session speaks
            # UTC too, so nothing depends on the server's TimeZone setting.
            cur = dbapi_conn.cursor()
            cur.execute("SET TIME ZONE 'UTC'")
            if not durable:
                cur.execute("SET synchronous_commit TO off")
            cur.close()
            dbapi_conn.commit()  # the pool rolls back on return: keep the setting
    return engine
