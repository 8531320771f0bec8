"""What the staff console lists: organisations, people and API tokens, searched and paged, with
a fixed number of queries per page (no query per row) and indexes behind each.

Organisations are searched in `orgs.search_key` (name and external id case-folded by Python
when stored, so a search ignores case in any alphabet alike on SQLite and PostgreSQL); their
people and last sign-in are counted for the shown page only. People are searched by e-mail
(ASCII, stored in lower case).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from gate import accounts, invitations
from gate.access import contract_active
from gate.clock import today, utcnow
from gate.db import api_tokens, orgs, support_requests, users

PER_PAGE = 50
STATUSES = {"": "все", "active": "действующие", "ended": "завершённые"}
PEOPLE_STATES = {"": "все", "active": "активные", "invited": "приглашённые",
                 "disabled": "отключённые", "admin": "администраторы", "staff": "сотрудники"}


@dataclass
class Page:
    rows: list
    total: int
    page: int
    per_page: int = PER_PAGE

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _page_number(page: int, total: int, per_page: int) -> int:
    return min(max(1, page), max(1, -(-total // per_page)))


def _active(now: dt.date):
    """The SQL condition of a running contract (gate.access.contract_active)."""
    return sa.and_(orgs.c.ended_at.is_(None), sa.or_(orgs.c.until.is_(None), orgs.c.until >= now))


def orgs_page(conn, tz, q: str = "", status: str = "", page: int = 1,
              per_page: int = PER_PAGE) -> Page:
    """Client organisations by name, filtered by a part of the name or external id (any case)
    and by contract status, with people (all, invited) and last sign-in for the shown page."""
    now = today(tz)
    where = [orgs.c.is_vendor.is_(False)]
    if q.strip():
        where.append(orgs.c.search_key.contains(q.strip().casefold(), autoescape=True))
    if status == "active":
        where.append(_active(now))
    elif status == "ended":
        where.append(sa.not_(_active(now)))
    total = conn.execute(sa.select(sa.func.count()).select_from(orgs).where(*where)).scalar()
    page = _page_number(page, total, per_page)
    rows = conn.execute(
        sa.select(orgs.c.id, orgs.c.name, orgs.c.tariff, orgs.c.until, orgs.c.ended_at,
                  orgs.c.external_id).where(*where)
        .order_by(orgs.c.search_key, orgs.c.id).limit(per_page).offset((page - 1) * per_page)).all()
    stats = people_stats(conn, [r.id for r in rows])
    shown = [{**r._mapping, "active": contract_active(r.until, r.ended_at, now),
              **stats.get(r.id, {"people": 0, "invited": 0, "last_login": None})} for r in rows]
    return Page(shown, total, page, per_page)


def people_stats(conn, org_ids) -> dict:
    """org id -> {people, invited, last_login} (erased people not counted): one query."""
    if not org_ids:
        return {}
    rows = conn.execute(
        sa.select(users.c.org_id, sa.func.count().label("people"),
                  sa.func.sum(sa.case((accounts.INVITED, 1), else_=0)).label("invited"),
                  sa.func.max(users.c.last_login_at).label("last_login"))
        .where(users.c.org_id.in_(list(org_ids)), users.c.erased_at.is_(None))
        .group_by(users.c.org_id)).all()
    return {r.org_id: {"people": r.people, "invited": int(r.invited or 0),
                       "last_login": r.last_login} for r in rows}


def _people_filters(q: str, org_id: int | None, state: str) -> list:
    where = [users.c.erased_at.is_(None)]
    if q.strip():
        where.append(users.c.email.contains(q.strip().lower(), autoescape=True))
    if org_id is not None:
        where.append(users.c.org_id == org_id)
    where += {
        "active": [users.c.disabled.is_(False), sa.not_(accounts.INVITED)],
        "invited": [accounts.INVITED, users.c.disabled.is_(False)],
        "disabled": [users.c.disabled.is_(True)],
        "admin": [users.c.is_admin.is_(True)],
        "staff": [users.c.is_staff.is_(True)],
    }.get(state, [])
    return where


def people_page(conn, q: str = "", org_id: int | None = None, state: str = "", page: int = 1,
                per_page: int = PER_PAGE) -> Page:
    """People by e-mail with their organisation and, for the invited, when the link expires."""
    where = _people_filters(q, org_id, state)
    total = conn.execute(sa.select(sa.func.count()).select_from(users).where(*where)).scalar()
    page = _page_number(page, total, per_page)
    rows = conn.execute(
        sa.select(users.c.id, users.c.email, users.c.org_id, users.c.is_staff, users.c.is_admin,
                  users.c.disabled, accounts.INVITED.label("invited"),
                  users.c.last_login_at, users.c.created_at)
        .where(*where).order_by(users.c.email).limit(per_page).offset((page - 1) * per_page)).all()
    # organisations' names for the shown page only (a join would be walked for every skipped row)
    names = dict(conn.execute(sa.select(orgs.c.id, orgs.c.name).where(
        orgs.c.id.in_({r.org_id for r in rows}))).all()) if rows else {}
    links = invitations.pending_until(conn, [r.id for r in rows if r.invited])
    shown = [dict(r._mapping, org_name=names.get(r.org_id), link_until=links.get(r.id))
             for r in rows]
    return Page(shown, total, page, per_page)


def tokens_page(conn, q: str = "", user_id: int | None = None, page: int = 1,
                per_page: int = PER_PAGE) -> Page:
    """API tokens that still work, newest first, with their owner."""
    where = [api_tokens.c.revoked_at.is_(None), api_tokens.c.expires_at > utcnow()]
    if q.strip():
        where.append(users.c.email.contains(q.strip().lower(), autoescape=True))
    if user_id is not None:
        where.append(api_tokens.c.user_id == user_id)
    base = sa.select(api_tokens.c.id).join(users, api_tokens.c.user_id == users.c.id).where(*where)
    total = conn.execute(sa.select(sa.func.count()).select_from(base.subquery())).scalar()
    page = _page_number(page, total, per_page)
    rows = conn.execute(
        sa.select(api_tokens, users.c.email, orgs.c.name.label("org_name"))
        .join(users, api_tokens.c.user_id == users.c.id).join(orgs, users.c.org_id == orgs.c.id)
        .where(*where).order_by(api_tokens.c.id.desc())
        .limit(per_page).offset((page - 1) * per_page)).all()
    return Page(rows, total, page, per_page)


def overview(conn, tz) -> dict:
    """The console's first page: how many of everything (one aggregate query per table)."""
    active = _active(today(tz))
    orgs_active, orgs_all = conn.execute(sa.select(
        sa.func.sum(sa.case((active, 1), else_=0)), sa.func.count())
        .select_from(orgs).where(orgs.c.is_vendor.is_(False))).one()
    pending = accounts.INVITED
    people = conn.execute(sa.select(*[
        sa.func.sum(sa.case((sa.and_(*condition), 1), else_=0)) for condition in (
            [users.c.disabled.is_(False), sa.not_(pending)],
            [users.c.disabled.is_(False), pending],
            [users.c.disabled.is_(True)],
            [users.c.is_staff.is_(True)])])
        .where(users.c.erased_at.is_(None))).one()
    tokens_live = conn.execute(sa.select(sa.func.count()).select_from(api_tokens).where(
        api_tokens.c.revoked_at.is_(None), api_tokens.c.expires_at > utcnow())).scalar()
    week = utcnow() - dt.timedelta(days=7)
    requests = conn.execute(sa.select(
        sa.func.count(), sa.func.sum(sa.case((support_requests.c.consulted_at.is_(None), 1), else_=0)),
        sa.func.sum(sa.case((support_requests.c.created_at >= week, 1), else_=0)))
        .select_from(support_requests)).one()
    return {"orgs_active": int(orgs_active or 0), "orgs_ended": orgs_all - int(orgs_active or 0),
            "people": dict(zip(("active", "invited", "disabled", "staff"),
                               (int(n or 0) for n in people))),
            "tokens_live": tokens_live, "requests": requests[0] or 0,
            "requests_open": int(requests[1] or 0), "requests_week": int(requests[2] or 0)}
