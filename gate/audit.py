"""The audit log: every change of organisations, people and tokens, and every sign-in decision.

One append-only table (gate.db.audit). A change writes its row in the same transaction as the
change itself (`record`), so the log never claims what did not happen and never misses what
did. Actors are "cli" (the `gate` command) or the e-mail of the person at the browser; a
forgotten person (`gate user forget`) becomes "user#<id>" in every row (`forget`), the only
edit rows ever see. Rows older than GATE_AUDIT_DAYS are deleted (`prune`).

Refused attempts (a wrong password, a dead invitation link, a portal sign-in refused) are not
changes and may come in floods: `Refusals` writes the first of each (action, target, address)
in a minute at once and the rest of that minute as one row with their count, so the table
grows by a bounded number of rows a minute whatever an attacker sends.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time

import sqlalchemy as sa

from gate.clock import utcnow
from gate.db import audit

log = logging.getLogger("gate.audit")
CLI = "cli"
ANONYMOUS = "-"  # the actor of a refused attempt: nobody was signed in (the target says who was claimed)
# The contract's names (more may be added; issues 16-18 add sso.*, oidc.*, totp.*).
ACTIONS = (
    "org.add", "org.set", "org.end",
    "user.add", "user.invite", "user.disable", "user.enable", "user.admin", "user.forget",
    "user.password", "invite.accept", "invite.refused", "password.login", "password.refused",
    "token.issue", "token.revoke",
    "totp.enrol", "totp.reset", "totp.refused", "sso.login", "sso.refused", "oidc.login", "oidc.refused",
)


def pseudonym(user_id: int) -> str:
    """What a forgotten person is called in the log."""
    return f"user#{user_id}"


def _details(details: dict | None) -> str | None:
    return json.dumps(details, ensure_ascii=False, sort_keys=True, default=str) if details else None


def record(conn, actor: str, action: str, target: str, *, address: str | None = None,
           org_id: int | None = None, user_id: int | None = None, details: dict | None = None,
           at: dt.datetime | None = None) -> None:
    """Appends one row in the caller's transaction."""
    conn.execute(audit.insert().values(
        at=at or utcnow(), actor=str(actor)[:254], address=(address or None) and address[:64],
        action=action, target=str(target)[:300], org_id=org_id, user_id=user_id,
        details=_details(details)))


def query(conn, *, org_id: int | None = None, days: int | None = None, action: str | None = None,
          actor: str | None = None, target: str | None = None, newest_first: bool = False,
          limit: int | None = None, offset: int = 0):
    """(rows, total) of the log, filtered; `actor` and `target` match a part, any case."""
    where = []
    if org_id is not None:
        where.append(audit.c.org_id == org_id)
    if days is not None:
        where.append(audit.c.at >= utcnow() - dt.timedelta(days=days))
    if action:
        where.append(audit.c.action.startswith(action, autoescape=True))
    if actor:
        where.append(sa.func.lower(audit.c.actor).contains(actor.lower(), autoescape=True))
    if target:
        where.append(sa.func.lower(audit.c.target).contains(target.lower(), autoescape=True))
    total = conn.execute(sa.select(sa.func.count()).select_from(audit).where(*where)).scalar()
    order = audit.c.id.desc() if newest_first else audit.c.id
    q = sa.select(audit).where(*where).order_by(order).offset(offset)
    if limit is not None:
        q = q.limit(limit)
    return conn.execute(q).all(), total


def latest(conn, limit: int):
    """The newest rows."""
    return conn.execute(sa.select(audit).order_by(audit.c.id.desc()).limit(limit)).all()


def as_dict(row, tz) -> dict:
    """A row as `gate audit --json` prints it: time in GATE_TIMEZONE, details an object."""
    return {"time": row.at.replace(tzinfo=dt.timezone.utc).astimezone(tz).isoformat(timespec="seconds"),
            "actor": row.actor, "address": row.address, "action": row.action,
            "target": row.target, "details": json.loads(row.details) if row.details else {}}


def prune(engine, days: int) -> int:
    """Deletes rows older than `days` days; returns how many."""
    with engine.begin() as conn:
        return conn.execute(audit.delete().where(
            audit.c.at < utcnow() - dt.timedelta(days=days))).rowcount


def forget(conn, user_id: int, email: str) -> None:
    """Erasure: the person's e-mail leaves every row (actor, target, details) for a pseudonym;
    the addresses they acted from go too. The actions stay."""
    name = pseudonym(user_id)
    conn.execute(audit.update().where(audit.c.actor == email).values(actor=name, address=None))
    conn.execute(audit.update().where(sa.or_(audit.c.target == email, audit.c.user_id == user_id))
                 .values(target=name))
    conn.execute(audit.update().where(audit.c.details.contains(email, autoescape=True))
                 .values(details=sa.func.replace(audit.c.details, email, name)))


class Refusals:
    """Refused attempts, audited with bounded growth (per process):

    - the first refusal of each (action, target, address) in a minute is written at once
      (details "count": 1), at most IMMEDIATE of them a minute;
    - the others are counted and written as one row per key when the minute is over (by the
      next refusal or `flush`, which `gate serve` calls every few seconds), "count": n;
    - beyond MAX_KEYS keys in a minute, further keys are counted in one row with target "*".
    Writing never fails the caller: a database that cannot take the rows is logged and the
    rows kept (up to MAX_PENDING) for the next try.
    """
    IMMEDIATE = 60
    MAX_KEYS = 1000
    MAX_PENDING = 10_000

    def __init__(self, engine, clock=time.time):
        self.engine, self.clock = engine, clock
        self._lock = threading.Lock()
        self._minute: int | None = None
        self._counts: dict = {}  # key -> [count not yet written, org_id, user_id, details]
        self._immediate = 0
        self._due: list[dict] = []

    def note(self, action: str, target: str, address: str | None = None, *,
             org_id: int | None = None, user_id: int | None = None,
             details: dict | None = None) -> None:
        now = self.clock()
        with self._lock:
            self._roll(now)
            target = "".join(c if c.isprintable() else "?" for c in str(target)[:300])
            key = (action, target, address)
            entry = self._counts.get(key)
            if entry is not None:
                entry[0] += 1
            elif self._immediate < self.IMMEDIATE:
                self._immediate += 1
                self._counts[key] = [0, org_id, user_id, details]
                self._due.append(self._row(key, 1, org_id, user_id, details, now))
            elif len(self._counts) < self.MAX_KEYS:
                self._counts[key] = [1, org_id, user_id, details]
            else:
                overflow = self._counts.setdefault((action, "*", None), [0, None, None, None])
                overflow[0] += 1
        self._write()

    def flush(self) -> None:
        """Writes what is due: the counts of minutes that are over."""
        with self._lock:
            self._roll(self.clock())
        self._write()

    @staticmethod
    def _row(key, count, org_id, user_id, details, at) -> dict:
        action, target, address = key
        return dict(at=dt.datetime.fromtimestamp(at, dt.timezone.utc).replace(tzinfo=None),
                    actor=ANONYMOUS, address=address, action=action,
                    target=target, org_id=org_id, user_id=user_id,
                    details=_details({**(details or {}), "count": count}))

    def _roll(self, now: float) -> None:
        minute = int(now // 60)
        if minute == self._minute:
            return
        end = min(now, (self._minute + 1) * 60) if self._minute is not None else now
        for key, (count, org_id, user_id, details) in self._counts.items():
            if count:
                self._due.append(self._row(key, count, org_id, user_id, details, end))
        self._minute, self._counts, self._immediate = minute, {}, 0

    def _write(self) -> None:
        with self._lock:
            rows, self._due = self._due, []
        if not rows:
            return
        try:
            with self.engine.begin() as conn:
                conn.execute(audit.insert(), rows)
        except Exception as exc:  # fail-soft: a refusal's answer never depends on the log
            log.warning("could not write %s audit row(s) of refusals: %s", len(rows), exc)
            with self._lock:
                self._due = (rows + self._due)[-self.MAX_PENDING:]
