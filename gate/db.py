"""The database: tables (SQLAlchemy Core, portable to PostgreSQL) and numbered migrations.

SQLite in the instance folder by default; GATE_DATABASE_URL for another database, e.g.
PostgreSQL (postgresql+psycopg://user:password@host/db, tested in tests/test_postgres.py). The
schema is created or upgraded on first use: each migration runs once, recorded in
schema_version. Times are naive UTC in every database.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import event

metadata = sa.MetaData()
# BIGINT on PostgreSQL; plain INTEGER on SQLite, where the v1 schema stays exactly as it was
BigEpoch = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

orgs = sa.Table(
    "orgs", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("tariff", sa.String(40), nullable=False),
    sa.Column("until", sa.Date, nullable=True),          # valid through the end of this day
    sa.Column("ended_at", sa.DateTime, nullable=True),    # `gate org end`
    sa.Column("is_vendor", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

users = sa.Table(
    "users", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(254), nullable=False, unique=True),
    sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id"), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("is_staff", sa.Boolean, nullable=False, default=False),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    # tokens issued before this moment (seconds since 1970) are void (password change, disable);
    # 64 bits: a 32-bit INTEGER (PostgreSQL's) overflows in 2038. SQLite's INTEGER has 64 bits.
    sa.Column("tokens_valid_after", BigEpoch, nullable=False, default=0),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

sessions = sa.Table(
    "sessions", metadata,
    sa.Column("id", sa.String(64), primary_key=True),      # sha256 of the session secret
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False),
    sa.Column("ended_at", sa.DateTime, nullable=True),
)

password_resets = sa.Table(
    "password_resets", metadata,
    sa.Column("id", sa.String(64), primary_key=True),      # sha256 of the link's secret
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False),
    sa.Column("used_at", sa.DateTime, nullable=True),
)

outbox = sa.Table(
    "outbox", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("message_id", sa.String(200), nullable=False, unique=True),
    sa.Column("recipient", sa.String(254), nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),      # the complete RFC 5322 message
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.DateTime, nullable=False),
    sa.Column("claimed_until", sa.DateTime, nullable=True),  # a worker's lease
    sa.Column("claimed_by", sa.String(200), nullable=True),  # host|pid namespace|pid of it (v3)
    sa.Column("sent_at", sa.DateTime, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("request_id", sa.Integer, nullable=True, index=True),
)

support_requests = sa.Table(
    "support_requests", metadata,
    sa.Column("id", sa.Integer, primary_key=True),         # the request number
    sa.Column("org_id", sa.Integer, sa.ForeignKey("orgs.id"), nullable=False, index=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("tariff", sa.String(40), nullable=False),
    sa.Column("category", sa.String(40), nullable=False),
    sa.Column("criticality", sa.String(40), nullable=False),
    sa.Column("phone", sa.String(40), nullable=False),
    sa.Column("store", sa.String(200), nullable=False),
    sa.Column("registers_affected", sa.Integer, nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("from_page", sa.String(500), nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("register_by", sa.DateTime, nullable=True),
    sa.Column("consult_by", sa.DateTime, nullable=True),
    sa.Column("workaround_by", sa.DateTime, nullable=True),
    sa.Column("registered_at", sa.DateTime, nullable=True),
    sa.Column("consulted_at", sa.DateTime, nullable=True),
)

attachments = sa.Table(
    "attachments", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("request_id", sa.Integer, sa.ForeignKey("support_requests.id"), nullable=False, index=True),
    sa.Column("filename", sa.String(200), nullable=False),
    sa.Column("content_type", sa.String(100), nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

search_misses = sa.Table(
    "search_misses", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("query", sa.String(200), nullable=False),
    sa.Column("edition", sa.String(100), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),     # no_results / then_request
    sa.Column("at", sa.DateTime, nullable=False),
)

schema_version = sa.Table(
    "schema_version", metadata,
    sa.Column("version", sa.Integer, primary_key=True),
)


def _v1(conn):
    metadata.create_all(conn, tables=[orgs, users, sessions, password_resets, outbox,
                                      support_requests, attachments, search_misses])


def _v2(conn):
    """users.tokens_valid_after as a 64-bit integer (databases made by v1 on PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ALTER TABLE users ALTER COLUMN tokens_valid_after TYPE BIGINT")


def _v3(conn):
    """outbox.claimed_by: which process holds a lease, so a dead one's lease can be released."""
    columns = {c["name"] for c in sa.inspect(conn).get_columns("outbox")}
    if "claimed_by" not in columns:  # v1 of this code already creates it
        conn.exec_driver_sql("ALTER TABLE outbox ADD COLUMN claimed_by VARCHAR(200)")


# Append new steps; never edit one that has shipped.
MIGRATIONS = [_v1, _v2, _v3]
# a constant key, held while migrating, so gates starting together on PostgreSQL migrate in turn
_MIGRATION_LOCK = 0x67617465  # "gate"


def migrate(engine: sa.Engine) -> int:
    """Brings the schema to the newest version; returns it."""
    with engine.begin() as conn:
        # One process migrates, the others wait for its commit, then find the schema current.
        if conn.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
        elif conn.dialect.name == "sqlite":  # the write lock, taken before anything is read
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        schema_version.create(conn, checkfirst=True)
        current = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0
        for number, step in enumerate(MIGRATIONS[current:], start=current + 1):
            step(conn)
            conn.execute(schema_version.insert().values(version=number))
    return len(MIGRATIONS)


CONNECT_TIMEOUT = 5  # seconds, PostgreSQL


def make_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")  # an acknowledged request survives a crash
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
            cur.close()
            dbapi_conn.commit()  # the pool rolls back on return: keep the setting
    return engine
