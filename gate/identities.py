"""From a request's token to an Identity, without a database query per request.

Token signatures and expiry are checked in memory (decoded tokens cached). What can change
after a token was issued (a person disabled, a contract ended or changed, a logout, a password
change) is read from a snapshot of the accounts that is refreshed every REFRESH seconds, so
every token already issued follows such a change within REFRESH + a few seconds (< 60 s).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa

from gate import accounts, tokens
from gate.clock import today, utcnow
from gate.access import Identity, identity_of
from gate.db import orgs, sessions, users

REFRESH = 20
SESSION_LIFETIME = 7 * 24 * 3600
SESSION_COOKIE = "kb_session"  # holds the session token (gate, fast path, nginx rules)


def session_id(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class _Snapshot:
    users: dict
    orgs: dict
    ended_sessions: set
    taken_at: float
    today: object


class Identities:
    def __init__(self, engine, key: bytes, tariffs: dict, tz, refresh: float = REFRESH):
        self.engine, self.key, self.tariffs, self.tz, self.refresh = engine, key, tariffs, tz, refresh
        self.cache = tokens.DecodeCache(key)
        self._lock = threading.Lock()
        self._snap: _Snapshot | None = None

    # --- snapshot ----------------------------------------------------------------------------
    def snapshot(self, force_if_older: float | None = None) -> _Snapshot:
        snap = self._snap
        limit = self.refresh if force_if_older is None else force_if_older
        if snap is not None and time.monotonic() - snap.taken_at < limit:
            return snap
        with self._lock:
            snap = self._snap
            if snap is not None and time.monotonic() - snap.taken_at < limit:
                return snap
            self._snap = snap = self._load()
            return snap

    def invalidate(self):
        self._snap = None

    def _load(self) -> _Snapshot:
        recent = utcnow() - dt.timedelta(seconds=tokens.SESSION_TTL + 120)
        with self.engine.connect() as conn:
            us = {r.id: r for r in conn.execute(sa.select(
                users.c.id, users.c.email, users.c.org_id, users.c.is_staff, users.c.disabled,
                users.c.tokens_valid_after))}
            os_ = {r.id: r for r in conn.execute(sa.select(
                orgs.c.id, orgs.c.name, orgs.c.tariff, orgs.c.until, orgs.c.ended_at))}
            ended = {r.id for r in conn.execute(
                sa.select(sessions.c.id).where(sessions.c.ended_at > recent))}
        return _Snapshot(us, os_, ended, time.monotonic(), today(self.tz))

    # --- tokens -> identities ----------------------------------------------------------------
    def session_claims(self, token: str) -> dict:
        """Verified claims of the session cookie's token (tokens.ExpiredToken to renew it).
        The cookie takes session tokens only: an API token belongs in the Authorization header."""
        claims = self.cache.get(token)
        if claims["typ"] != "session":
            raise tokens.TokenError("not a session token")
        return claims

    def from_claims(self, claims: dict) -> Identity | None:
        """The identity a verified token stands for now, or None when it no longer may."""
        uid = int(claims["sub"])
        snap = self.snapshot()
        if uid not in snap.users:
            snap = self.snapshot(force_if_older=1.0)  # a person created since the last refresh
        user = snap.users.get(uid)
        if user is None or user.disabled or claims["iat"] < user.tokens_valid_after:
            return None
        sid = None
        if claims["typ"] == "session":
            sid = session_id(claims["sid"])
            if sid in snap.ended_sessions:
                return None
        org = snap.orgs.get(user.org_id)
        if org is None:
            return None
        return identity_of(user, org, self.tariffs, snap.today, session_id=sid)

    # --- login sessions ----------------------------------------------------------------------
    def start_session(self, conn, user_id: int) -> str:
        """A new login session; returns its secret (only its hash is stored)."""
        secret = secrets.token_urlsafe(32)
        now = utcnow()
        conn.execute(sessions.insert().values(
            id=session_id(secret), user_id=user_id, created_at=now,
            expires_at=now + dt.timedelta(seconds=SESSION_LIFETIME)))
        return secret

    def session_token(self, ident: Identity, secret: str) -> str:
        return tokens.issue(self.key, sub=ident.user_id, org=ident.org, tariff=ident.tariff,
                            sections=ident.sections, typ="session", ttl=tokens.SESSION_TTL,
                            sid=secret)

    def renew(self, claims: dict) -> tuple[Identity, str] | None:
        """A fresh session token for an expired one whose login session is still valid."""
        if claims.get("typ") != "session":
            return None
        sid = session_id(claims["sid"])
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(sessions).where(sessions.c.id == sid)).first()
            if (row is None or row.ended_at is not None or row.expires_at <= utcnow()
                    or str(row.user_id) != claims["sub"]):
                return None
            user = conn.execute(sa.select(users.c.tokens_valid_after).where(
                users.c.id == row.user_id)).first()
            if user is None or claims["iat"] < user.tokens_valid_after:
                return None
            ident = accounts.identity(conn, row.user_id, self.tariffs, self.tz)
        if ident is None:
            return None
        ident = dataclasses.replace(ident, session_id=sid)
        return ident, self.session_token(ident, claims["sid"])

    def end_session(self, sid_hash: str):
        with self.engine.begin() as conn:
            conn.execute(sessions.update().where(sessions.c.id == sid_hash,
                                                 sessions.c.ended_at.is_(None))
                         .values(ended_at=utcnow()))
        self.invalidate()
