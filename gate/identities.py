"""From a request's token to an Identity, without a database query per request.

Token signatures and expiry are checked in memory (decoded tokens cached). What can change
after a token was issued (a person disabled, a contract ended or changed, a logout, a password
change) is read from a snapshot of the accounts that is refreshed every REFRESH seconds, so
every token already issued follows such a change within REFRESH + a few seconds (< 60 s). The
snapshot also holds the ids of revoked API tokens; the use of API tokens is noted in memory
(gate.api_tokens.Usage) and written in batches.

When the database cannot be read (a server restarting, refusing connections), the last
snapshot stays in use: nobody can change an account meanwhile, and people already logged in
keep being served. Their expired session tokens are renewed from it too (`renew`), within the
limits that keep a logout made before the snapshot in force; new logins must wait.
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

from gate import accounts, api_tokens, tokens
from gate.clock import today, utcnow
from gate.access import Identity, identity_of
from gate.db import orgs, sessions, users
from gate.storage_errors import classify, faults

REFRESH = 20
RETRY = 5  # seconds between attempts to refresh the snapshot while the database is away
# sessions ended up to this long before a snapshot are in it (see _load and _renew_from_snapshot)
ENDED_KEPT = tokens.SESSION_TTL + 120
SESSION_LIFETIME = 7 * 24 * 3600
SESSION_COOKIE = "kb_session"  # holds the session token (gate, fast path, nginx rules)


def _agrees(ident: Identity | None, claims: dict) -> bool:
    return (ident is not None and ident.tariff == claims.get("tariff")
            and ident.sections == frozenset(claims.get("sections", ())))


def session_id(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class _Snapshot:
    users: dict
    orgs: dict
    ended_sessions: set
    revoked_tokens: set
    taken_at: float   # time.monotonic() of the load
    today: object
    loaded_at: float  # time.time() of the load


class Identities:
    def __init__(self, engine, key: bytes, tariffs: dict, tz, refresh: float = REFRESH):
        self.engine, self.key, self.tariffs, self.tz, self.refresh = engine, key, tariffs, tz, refresh
        self.cache = tokens.DecodeCache(key)
        self._lock = threading.Lock()
        self._snap: _Snapshot | None = None
        self._retry_at = 0.0  # while the database is away: no new attempt before this
        self.token_use = api_tokens.Usage()

    # --- snapshot ----------------------------------------------------------------------------
    def snapshot(self, force_if_older: float | None = None,
                 read_after: float | None = None) -> _Snapshot:
        """The accounts snapshot, read again when older than the refresh time (or
        force_if_older seconds), or when read before the time.time() `read_after`."""
        limit = self.refresh if force_if_older is None else force_if_older

        def current(snap):
            now = time.monotonic()
            if snap is None:
                return False
            if now < self._retry_at:
                return True
            return now - snap.taken_at < limit and (read_after is None or snap.loaded_at > read_after)

        snap = self._snap
        if current(snap):
            return snap
        with self._lock:
            snap = self._snap
            if current(snap):
                return snap
            try:
                self._snap = snap = self._load()
            except Exception as exc:
                kind = classify(exc)
                if snap is None or kind is None:
                    raise
                faults.seen(kind, exc, "accounts snapshot refresh")
                self._retry_at = time.monotonic() + RETRY  # meanwhile the last one serves
            return snap

    def age(self) -> float | None:
        """Seconds since the snapshot was read (more than REFRESH: the database could not be
        read since); None before the first."""
        snap = self._snap
        return None if snap is None else time.time() - snap.loaded_at

    def invalidate(self):
        """The next look reloads the snapshot; this one stays as the fallback."""
        snap = self._snap
        if snap is not None:
            self._snap = dataclasses.replace(snap, taken_at=float("-inf"))
        self._retry_at = 0.0

    def _load(self) -> _Snapshot:
        loaded_at = time.time()
        recent = utcnow() - dt.timedelta(seconds=ENDED_KEPT)
        with self.engine.connect() as conn:
            us = {r.id: r for r in conn.execute(sa.select(
                users.c.id, users.c.email, users.c.org_id, users.c.is_staff, users.c.disabled,
                users.c.is_admin, users.c.tokens_valid_after))}
            os_ = {r.id: r for r in conn.execute(sa.select(
                orgs.c.id, orgs.c.name, orgs.c.tariff, orgs.c.until, orgs.c.ended_at))}
            ended = {r.id for r in conn.execute(
                sa.select(sessions.c.id).where(sessions.c.ended_at > recent))}
            revoked = api_tokens.revoked_ids(conn)
        return _Snapshot(us, os_, ended, revoked, time.monotonic(), today(self.tz), loaded_at)

    # --- tokens -> identities ----------------------------------------------------------------
    def session_claims(self, token: str) -> dict:
        """Verified claims of the session cookie's token (tokens.ExpiredToken to renew it).
        The cookie takes session tokens only: an API token belongs in the Authorization header."""
        claims = self.cache.get(token)
        if claims["typ"] != "session":
            raise tokens.TokenError("not a session token")
        return claims

    def from_claims(self, claims: dict) -> Identity | None:
        """The identity a verified token stands for now, or None when it no longer may.

        The snapshot decides, never the token. But a token issued after the snapshot was read
        whose claims disagree with it was issued (maybe by another process) from a newer state
        of the accounts: the snapshot is read again first, so a downgrade made elsewhere is not
        undone here by an older snapshot, and an upgrade is not held back."""
        snap = self.snapshot()
        ident = self._judge(claims, snap)
        issued = min(claims.get("ims", claims["iat"] * 1000) / 1000, time.time())
        if issued >= snap.loaded_at and not _agrees(ident, claims):
            fresh = self.snapshot(read_after=issued)
            if fresh is not snap:
                ident = self._judge(claims, fresh)
        return ident

    def _judge(self, claims: dict, snap: _Snapshot) -> Identity | None:
        uid = int(claims["sub"])
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
        elif "tid" in claims:  # API tokens issued before they had ids carry none
            if claims["tid"] in snap.revoked_tokens:
                return None
            self.token_use.note(claims["tid"])
        org = snap.orgs.get(user.org_id)
        if org is None:
            return None
        return identity_of(user, org, self.tariffs, snap.today, session_id=sid)

    def person(self, user_id: int) -> Identity | None:
        """The identity of a person as it stands now, without a token (a feed key's owner), or
        None when they may not be anyone (unknown, disabled)."""
        snap = self.snapshot()
        if user_id not in snap.users:
            snap = self.snapshot(force_if_older=1.0)
        user = snap.users.get(user_id)
        org = snap.orgs.get(user.org_id) if user is not None else None
        if user is None or org is None:
            return None
        return identity_of(user, org, self.tariffs, snap.today)

    # --- login sessions ----------------------------------------------------------------------
    def start_session(self, conn, user_id: int) -> str:
        """A new login session; returns its secret (only its hash is stored). The person's
        last sign-in is noted with it (the console's "last activity")."""
        secret = secrets.token_urlsafe(32)
        now = utcnow()
        conn.execute(sessions.insert().values(
            id=session_id(secret), user_id=user_id, created_at=now,
            expires_at=now + dt.timedelta(seconds=SESSION_LIFETIME)))
        conn.execute(users.update().where(users.c.id == user_id).values(last_login_at=now))
        return secret

    def session_token(self, ident: Identity, secret: str) -> str:
        return tokens.issue(self.key, sub=ident.user_id, org=ident.org, tariff=ident.tariff,
                            sections=ident.sections, typ="session", ttl=tokens.SESSION_TTL,
                            sid=secret)

    def renew(self, claims: dict) -> tuple[Identity, str] | None:
        """A fresh session token for an expired one whose login session is still valid."""
        if claims.get("typ") != "session":
            return None
        try:
            return self._renew_from_database(claims)
        except Exception as exc:
            kind = classify(exc)
            if kind is None:
                raise
            # The database cannot be read. A token issued after the oldest logout the
            # snapshot lists (a session ends after its tokens are issued, so a logout before
            # the snapshot is in it) is renewed from the snapshot, for a person and contract it
            # still allows; older ones must wait for the database (503). The login session's
            # own expiry is not known here: it may be overrun by the outage's length.
            snap = self._snap
            if snap is None or claims["iat"] < snap.loaded_at - ENDED_KEPT + 5:
                raise
            faults.seen(kind, exc, "session renewal (answered from the accounts snapshot)")
            ident = self.from_claims(claims)
            return None if ident is None else (ident, self.session_token(ident, claims["sid"]))

    def _renew_from_database(self, claims: dict) -> tuple[Identity, str] | None:
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
