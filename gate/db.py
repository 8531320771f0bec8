"""The database: tables (SQLAlchemy Core, portable to PostgreSQL) and numbered migrations.

SQLite in the instance folder by default; GATE_DATABASE_URL for another database, e.g.
PostgreSQL (postgresql+psycopg://user:password@host/db, tested in tests/test_postgres.py). The
schema is created or upgraded on first use: each migration runs once, recorded in
schema_version. Times are naive UTC in every database.
"""

from __future__ import annotations

import sqlalchemy as sa

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
    sa.Column("external_id", sa.String(200), nullable=True),  # the client portal's id (v4)
    # v4: name and external id case-folded in Python (gate.accounts.search_key), so that the
    # console's search ignores case in any alphabet alike on SQLite and PostgreSQL
    sa.Column("search_key", sa.String(402), nullable=True),
    sa.Index("ix_orgs_external_id", "external_id", unique=True),
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
    # v4: an organisation's admin (manages its people); the last sign-in; erased (152-FZ): the
    # row stays as a tombstone "user#<id>" so the organisation's requests keep their author
    sa.Column("is_admin", sa.Boolean, nullable=False, default=False),
    sa.Column("last_login_at", sa.DateTime, nullable=True),
    sa.Column("erased_at", sa.DateTime, nullable=True),
    sa.Index("ix_users_org_id", "org_id"),
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

# v4: invitation links (only the sha256 of the secret is stored), API tokens with ids, the audit log
invitations = sa.Table(
    "invitations", metadata,
    sa.Column("id", sa.String(64), primary_key=True),      # sha256 of the link's secret
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False),
    sa.Column("used_at", sa.DateTime, nullable=True),
    sa.Column("voided_at", sa.DateTime, nullable=True),    # replaced by a newer one, or disabled
)

api_tokens = sa.Table(
    "api_tokens", metadata,
    sa.Column("id", sa.Integer, primary_key=True),         # the token's `tid` claim
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False, index=True),
    sa.Column("last_used_at", sa.DateTime, nullable=True),  # written in batches (gate.api_tokens)
    sa.Column("revoked_at", sa.DateTime, nullable=True),
)

audit = sa.Table(
    "audit", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", sa.DateTime, nullable=False, index=True),
    sa.Column("actor", sa.String(254), nullable=False),    # "cli", an e-mail or "user#<id>"
    sa.Column("address", sa.String(64), nullable=True),    # the client's IP address (web)
    sa.Column("action", sa.String(40), nullable=False, index=True),
    sa.Column("target", sa.String(300), nullable=False),
    sa.Column("org_id", sa.Integer, nullable=True, index=True),  # whose organisation it concerns
    sa.Column("user_id", sa.Integer, nullable=True, index=True),  # the person it concerns
    sa.Column("details", sa.Text, nullable=True),          # a JSON object
)

# Shared limits (gate.shared_limits): one row per counted event, and when a key was last seen.
# Keys are SHA-256 hashes; times are Unix time in milliseconds; rows go after keep_until.
limit_events = sa.Table(
    "limit_events", metadata,
    sa.Column("id", BigEpoch, primary_key=True),  # 64 bits: many events over the years
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("at", BigEpoch, nullable=False),
    sa.Column("keep_until", BigEpoch, nullable=False, index=True),
    sa.Index("ix_limit_events_key_at", "key", "at"),
)

limit_marks = sa.Table(
    "limit_marks", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("at", BigEpoch, nullable=False),
    sa.Column("keep_until", BigEpoch, nullable=False, index=True),
)

# Readers' feedback (issue 19): one vote per voter and page, the last one counts. `voter` is
# "u<user id>" for a person, "b<hash of the browser's kb_voter cookie>" for an anonymous visitor
# on a public page.
feedback = sa.Table(
    "feedback", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("page", sa.String(500), nullable=False),
    sa.Column("voter", sa.String(80), nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True, index=True),
    sa.Column("vote", sa.String(10), nullable=False),          # yes / no
    sa.Column("reason", sa.String(20), nullable=True),          # gate.feedback.REASONS
    sa.Column("comment", sa.Text, nullable=True),
    sa.Column("edition", sa.String(100), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False, index=True),
    sa.UniqueConstraint("voter", "page", name="uq_feedback_voter_page"),
)

# Support requests filed from the "no" of a feedback form: which article they came from.
feedback_requests = sa.Table(
    "feedback_requests", metadata,
    sa.Column("request_id", sa.Integer, sa.ForeignKey("support_requests.id"), primary_key=True),
    sa.Column("page", sa.String(500), nullable=False, index=True),
    sa.Column("feedback_id", sa.Integer, sa.ForeignKey("feedback.id"), nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

# Personal feed keys (/feed.xml?key=...): the key is derived from the row (gate.change_notes), so
# nothing secret is stored; revoking sets revoked_at.
feed_keys = sa.Table(
    "feed_keys", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("nonce", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("revoked_at", sa.DateTime, nullable=True),
)

# People who opted into the weekly digest (off by default).
digest_subscriptions = sa.Table(
    "digest_subscriptions", metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

# One row per weekly digest: the slot's key is the primary key, so across every process and host
# exactly one claims it. `known` lists the changes the site had then (JSON), so the next digest
# announces only what is new since.
digest_runs = sa.Table(
    "digest_runs", metadata,
    sa.Column("slot", sa.String(20), primary_key=True),      # ISO week, e.g. 2026-W49
    sa.Column("claimed_by", sa.String(200), nullable=False),
    sa.Column("claimed_at", sa.DateTime, nullable=False),
    sa.Column("known", sa.Text, nullable=False),
    sa.Column("mails", sa.Integer, nullable=False),
)

# The second factor (issue 18): a person's TOTP secret (RFC 6238) and the last time step a code
# was accepted for (a code is accepted once), and their recovery codes (sha256 only, each once).
totp_factors = sa.Table(
    "totp_factors", metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("secret", sa.String(64), nullable=False),
    sa.Column("enrolled_at", sa.DateTime, nullable=False),
    sa.Column("last_step", BigEpoch, nullable=False, default=0),
)

totp_recovery = sa.Table(
    "totp_recovery", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("code_hash", sa.String(64), nullable=False),
    sa.Column("used_at", sa.DateTime, nullable=True),
)

# Sign-in from the client portal (issue 16): the `jti` of every accepted token until it expires,
# so a token is used once across every gate process and host (sha256 of issuer and jti only).
sso_tokens = sa.Table(
    "sso_tokens", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("expires_at", sa.DateTime, nullable=False, index=True),
)

# gate.usage: counts per organisation, day, kind and section; no person, address or page
usage_daily = sa.Table(
    "usage_daily", metadata,
    sa.Column("org_id", sa.Integer, nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("section", sa.String(64), nullable=False),
    sa.Column("n", sa.BigInteger, nullable=False),
    sa.PrimaryKeyConstraint("day", "org_id", "kind", "section"),  # by day: reports, pruning
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


def search_key(name: str, external_id: str | None) -> str:
    """What the console's search of organisations looks in: both names, case-folded."""
    return f"{name}\n{external_id or ''}".casefold()


def _v4(conn):
    """The staff console: organisations' external ids, admins, last sign-in and erasure of
    people, invitations, API token ids and the audit log. Idempotent where v1 (which creates
    the tables from the current metadata) already made the part."""
    def add(table, column):
        if column.name not in {c["name"] for c in sa.inspect(conn).get_columns(table.name)}:
            kind = column.type.compile(dialect=conn.dialect)
            default = ""
            if column.default is not None:
                default = " DEFAULT " + ("false" if conn.dialect.name == "postgresql" else "0")
            null = " NOT NULL" if not column.nullable else ""
            conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}{default}{null}")
    add(orgs, orgs.c.external_id)
    add(orgs, orgs.c.search_key)
    for row in conn.execute(sa.select(orgs.c.id, orgs.c.name, orgs.c.external_id)
                            .where(orgs.c.search_key.is_(None))).all():
        conn.execute(orgs.update().where(orgs.c.id == row.id)
                     .values(search_key=search_key(row.name, row.external_id)))
    for column in (users.c.is_admin, users.c.last_login_at, users.c.erased_at):
        add(users, column)
    for table in (orgs, users):
        for index in table.indexes:
            index.create(conn, checkfirst=True)
    metadata.create_all(conn, tables=[invitations, api_tokens, audit], checkfirst=True)


def _limits(conn):
    """limit_events and limit_marks: login and search limits shared by every gate process."""
    metadata.create_all(conn, tables=[limit_events, limit_marks])


def _readers(conn):
    """Readers' feedback, feed keys and the weekly digest (issue 19)."""
    metadata.create_all(conn, tables=[feedback, feedback_requests, feed_keys,
                                      digest_subscriptions, digest_runs])


def _totp(conn):
    """The second factor: TOTP secrets and recovery codes (issue 18)."""
    metadata.create_all(conn, tables=[totp_factors, totp_recovery])


def _sso(conn):
    """The used `jti`s of the client portal's tokens (issue 16)."""
    metadata.create_all(conn, tables=[sso_tokens])


def _usage(conn):  # usage per organisation and day (issue 17)
    metadata.create_all(conn, tables=[usage_daily])


# Append new steps; never edit one that has shipped.
MIGRATIONS = [_v1, _v2, _v3, _v4, _limits, _readers, _totp, _sso, _usage]
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
