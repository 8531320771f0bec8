"""How each organisation uses the knowledge base: aggregate counters per organisation and day,
never a person's browsing history.

What is kept is one row per (organisation, day, kind, section) with a count (`usage_daily`):
page views per section, hits on locked sections (a page of a section the tariff lacks),
searches, support requests. No user id, e-mail, address or path is stored. Days are dates in
GATE_TIMEZONE. Rows older than GATE_USAGE_DAYS are pruned.

Counting stays off the request path: a request adds one to an in-memory `Counter` (a dict
under a lock); the housekeeping thread of every gate process `flush`es it to the database
every tick, adding to what is there (an upsert), so several processes and hosts sum. When the
database cannot be written (disk full, server away) the counts stay in memory, bounded
(MAX_KEYS: the oldest days are dropped first, with a warning), and are tried again next tick:
a page is served whatever happens to its count. In edge mode nginx serves most pages itself;
its access log is read by gate.usage_log into the same counter.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import Counter as _Counts

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from gate.clock import today
from gate.db import orgs, usage_daily, users
from gate.sections import section_of_url

log = logging.getLogger("gate.usage")
VIEW, LOCKED, SEARCH, REQUEST = "view", "locked", "search", "request"
KINDS = (VIEW, LOCKED, SEARCH, REQUEST)
PUBLIC = "public"   # the section name under which pages outside every section are counted
MAX_KEYS = 50_000   # (org, day, kind, section) keys kept in memory while the database is away


def is_page(path: str) -> bool:
    """A page view is an article or a section's page, not its assets or search index."""
    return path.endswith("/") or path.endswith(".html")


class Counter:
    """Counts in memory, keyed (org id, day, kind, section); `flush` writes them."""

    def __init__(self, tz, enabled: bool = True, max_keys: int = MAX_KEYS):
        self.tz, self.enabled, self.max_keys = tz, enabled, max_keys
        self._lock = threading.Lock()
        self._counts: _Counts = _Counts()
        self._day, self._day_until = None, 0.0
        self.dropped = 0  # counts lost to the bound while the database was away

    def day(self) -> dt.date:
        """Today in GATE_TIMEZONE, worked out again at most once a minute."""
        now = time.time()
        if now >= self._day_until:
            self._day, self._day_until = today(self.tz), now + 60 - now % 60
        return self._day

    def add(self, org_id: int | None, kind: str, section: str = "", n: int = 1,
            day: dt.date | None = None) -> None:
        if not self.enabled or not org_id:
            return
        key = (org_id, day or self.day(), kind, section)
        with self._lock:
            self._counts[key] += n
            if len(self._counts) > self.max_keys:
                self._drop_oldest()

    def page(self, org_id: int | None, path: str) -> None:
        """A page served (the fast path, the Flask view, nginx's log)."""
        if self.enabled and org_id and is_page(path):
            self.add(org_id, VIEW, section_of_url(path) or PUBLIC)

    def locked(self, org_id: int | None, section: str) -> None:
        self.add(org_id, LOCKED, section)

    def pending(self) -> dict:
        with self._lock:
            return dict(self._counts)

    def _drop_oldest(self) -> None:
        oldest = min(day for _, day, _, _ in self._counts)
        gone = [k for k in self._counts if k[1] == oldest]
        lost = sum(self._counts.pop(k) for k in gone)
        self.dropped += lost
        log.warning("usage: %s count(s) of %s dropped: the database has not been written for "
                    "too long", lost, oldest)

    def flush(self, engine) -> int:
        """Adds what was counted to the database in one transaction; on failure keeps it for
        the next try (bounded). Returns the number of rows written (0 on failure)."""
        with self._lock:
            taken, self._counts = self._counts, _Counts()
        if not taken:
            return 0
        try:
            with engine.begin() as conn:
                add_counts(conn, taken)
        except Exception as exc:  # noqa: BLE001 - storage away: counted again next tick
            log.warning("usage: %s count(s) kept in memory, not written: %s", len(taken), exc)
            with self._lock:
                taken.update(self._counts)
                self._counts = taken
                while len(self._counts) > self.max_keys:
                    self._drop_oldest()
            return 0
        return len(taken)


def _insert(conn):
    dialects = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
    return dialects[conn.dialect.name]


def add_counts(conn, counts: dict) -> None:
    """Adds {(org id, day, kind, section): n} to usage_daily (upsert: processes sum)."""
    rows = [{"org_id": o, "day": d, "kind": k, "section": s, "n": n}
            for (o, d, k, s), n in sorted(counts.items()) if n]
    known = {r[0] for r in conn.execute(sa.select(orgs.c.id).where(
        orgs.c.id.in_({r["org_id"] for r in rows})))}
    rows = [r for r in rows if r["org_id"] in known]  # an erased organisation or a forged id
    if not rows:
        return
    stmt = _insert(conn)(usage_daily)
    c = usage_daily.c
    conn.execute(stmt.on_conflict_do_update(
        index_elements=[c.day, c.org_id, c.kind, c.section],
        set_={"n": c.n + stmt.excluded.n}), rows)


def prune(engine, tz, days: int) -> int:
    """Deletes the days older than `days`; returns how many rows went."""
    with engine.begin() as conn:
        return conn.execute(usage_daily.delete().where(
            usage_daily.c.day < today(tz) - dt.timedelta(days=days))).rowcount or 0


# --- reading -------------------------------------------------------------------------------

# the keys of `gate usage --json`, exactly as the contract has them
CONTRACT_KEYS = ("org", "people", "active_people", "last_login", "views", "locked_hits",
                 "searches", "requests")


def report(conn, tz, org: str | None = None, days: int = 30, org_id: int | None = None) -> list:
    """One dict per client organisation (the contract's shape of `gate usage --json`): people,
    active people (signed in within `days`), last login, views and locked hits per section,
    searches and requests over the last `days` days (today included)."""
    since = today(tz) - dt.timedelta(days=days - 1)
    where = [orgs.c.is_vendor.is_(False)]
    if org is not None:
        where.append(orgs.c.name == org)
    if org_id is not None:
        where.append(orgs.c.id == org_id)
    found = conn.execute(sa.select(orgs.c.id, orgs.c.name).where(*where).order_by(orgs.c.name)).all()
    ids = [r.id for r in found]
    if not ids:
        return []
    active_since = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(days=days)
    u = users.c
    people = {r.org_id: r for r in conn.execute(
        sa.select(u.org_id, sa.func.count().label("people"),
                  sa.func.sum(sa.case((u.last_login_at >= active_since, 1), else_=0)).label("active"),
                  sa.func.max(u.last_login_at).label("last"))
        .where(u.org_id.in_(ids), u.erased_at.is_(None), u.disabled.is_(False))
        .group_by(u.org_id))}
    c = usage_daily.c
    counts: dict = {}
    for r in conn.execute(sa.select(c.org_id, c.kind, c.section, sa.func.sum(c.n))
                          .where(c.org_id.in_(ids), c.day >= since)
                          .group_by(c.org_id, c.kind, c.section)):
        counts.setdefault(r[0], {}).setdefault(r[1], {})[r[2]] = int(r[3])
    out = []
    for o in found:
        p, k = people.get(o.id), counts.get(o.id, {})
        last = p.last if p is not None else None
        out.append({
            "org": o.name,
            "people": p.people if p is not None else 0,
            "active_people": int(p.active or 0) if p is not None else 0,
            "last_login": last.replace(tzinfo=dt.timezone.utc).astimezone(tz).isoformat(
                timespec="seconds") if last else None,
            # sections only (the contract's shape); pages outside every section apart
            "views": dict(sorted((s, n) for s, n in k.get(VIEW, {}).items() if s != PUBLIC)),
            "public_views": k.get(VIEW, {}).get(PUBLIC, 0),
            "locked_hits": dict(sorted(k.get(LOCKED, {}).items())),
            "searches": sum(k.get(SEARCH, {}).values()),
            "requests": sum(k.get(REQUEST, {}).values()),
        })
    return out


def daily_views(conn, tz, org_id: int, days: int = 30) -> tuple[list, dict]:
    """(the days, {section: [views per day]}) of one organisation, for the console's chart."""
    first = today(tz) - dt.timedelta(days=days - 1)
    span = [first + dt.timedelta(days=i) for i in range(days)]
    c = usage_daily.c
    series: dict = {}
    for day, section, n in conn.execute(
            sa.select(c.day, c.section, c.n).where(c.org_id == org_id, c.kind == VIEW,
                                                        c.day >= first)):
        series.setdefault(section, [0] * days)[(day - first).days] += int(n)
    return span, dict(sorted(series.items()))
