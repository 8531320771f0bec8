"""API tokens for scripts, with integer ids: issued, listed, revoked.

A token is a JWT (gate.tokens, typ "api") whose `tid` claim names its row in api_tokens. A
revoked token is refused by every gate process within the accounts snapshot's refresh
(gate.identities: `revoked_ids` is part of the snapshot). When a token was last used is kept
in memory (`Usage`) and written in one batch about once a minute (gate.housekeeping), so a
request with a token never waits for a database write; a lost batch only makes "last used"
older than it was.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

import sqlalchemy as sa

from gate import tokens
from gate.accounts import Unknown
from gate.clock import utcnow
from gate.db import api_tokens, users

log = logging.getLogger("gate.api_tokens")


def issue(conn, key: bytes, ident, ttl: int) -> tuple[int, str]:
    """A new token for an identity (a row in the caller's transaction): (id, token)."""
    now = utcnow()
    tid = conn.execute(api_tokens.insert().values(
        user_id=ident.user_id, created_at=now,
        expires_at=now + dt.timedelta(seconds=ttl))).inserted_primary_key[0]
    token = tokens.issue(key, sub=ident.user_id, org=ident.org, tariff=ident.tariff,
                         sections=ident.sections, typ="api", ttl=ttl, tid=tid)
    return tid, token


def live(conn, user_id: int):
    """The person's tokens that still work (neither revoked nor expired), oldest first."""
    return conn.execute(sa.select(api_tokens).where(
        api_tokens.c.user_id == user_id, api_tokens.c.revoked_at.is_(None),
        api_tokens.c.expires_at > utcnow()).order_by(api_tokens.c.id)).all()


def get(conn, tid: int):
    """The token's row with its owner's e-mail and organisation, or AccountError."""
    row = conn.execute(sa.select(api_tokens, users.c.email, users.c.org_id)
                       .join(users, api_tokens.c.user_id == users.c.id)
                       .where(api_tokens.c.id == tid)).first()
    if row is None:
        raise Unknown(f"unknown token {tid}", ru="Такого токена нет.")
    return row


def revoke(conn, tid: int) -> tuple[object, bool]:
    """Revokes a token: (its row, whether it was revoked now rather than before)."""
    row = get(conn, tid)
    if row.revoked_at is not None:
        return row, False
    conn.execute(api_tokens.update().where(api_tokens.c.id == tid, api_tokens.c.revoked_at.is_(None))
                 .values(revoked_at=utcnow()))
    return row, True


def revoked_ids(conn) -> set[int]:
    """Ids of revoked tokens that have not expired yet (expired ones are refused anyway)."""
    return set(conn.execute(sa.select(api_tokens.c.id).where(
        api_tokens.c.revoked_at.is_not(None), api_tokens.c.expires_at > utcnow())).scalars())


class Usage:
    """When each token was last used, in memory until `flush` writes it (one batch)."""
    MAX = 100_000

    def __init__(self):
        self._lock = threading.Lock()
        self._seen: dict[int, dt.datetime] = {}

    def note(self, tid: int) -> None:
        if len(self._seen) < self.MAX or tid in self._seen:
            self._seen[tid] = utcnow()  # one dict store: no lock needed on the request path

    def flush(self, engine) -> int:
        """Writes the batch; returns how many tokens it covered. Never raises."""
        with self._lock:
            batch, self._seen = self._seen, {}
        if not batch:
            return 0
        stmt = (api_tokens.update()
                .where(api_tokens.c.id == sa.bindparam("tid"),
                       sa.or_(api_tokens.c.last_used_at.is_(None),
                              api_tokens.c.last_used_at < sa.bindparam("used")))
                .values(last_used_at=sa.bindparam("used")))
        try:
            with engine.begin() as conn:
                conn.execute(stmt, [{"tid": t, "used": at} for t, at in batch.items()])
        except Exception as exc:  # fail-soft: keep the batch for the next try
            log.warning("could not record the last use of %s token(s): %s", len(batch), exc)
            with self._lock:
                for tid, at in batch.items():
                    if tid not in self._seen and len(self._seen) < self.MAX:
                        self._seen[tid] = at
            return 0
        return len(batch)
