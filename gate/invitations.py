"""Invitations instead of printed passwords: a one-time link, mailed through the outbox.

`invite` creates the person without a password (or refreshes a pending invitation), voids
their older links and queues the mail, all in the caller's transaction. The link is
<base>/invite/<secret>, valid TTL; only the sha256 of the secret is stored and compared in
constant time. `accept` sets the password and uses the link up; a used, expired, replaced or
unknown link, a disabled person or an ended contract makes the link dead (`lookup` -> None).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from gate import accounts, outbox
from gate.access import contract_active
from gate.accounts import AccountError
from gate.clock import today, utcnow
from gate.db import invitations, orgs, users

TTL = dt.timedelta(hours=72)
MAX_SECRET = 200  # longer path segments are no secret of ours (no hashing of megabytes)


@dataclass
class Invited:
    user_id: int
    org_id: int
    email: str
    created: bool   # a new person (else a pending invitation was refreshed)
    link: str


def link_id(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _org_for(conn, tz, org: str | None, staff: bool):
    if staff:
        return conn.execute(sa.select(orgs).where(orgs.c.id == accounts.vendor_org_id(conn))).first()
    row = accounts.org_by_name(conn, org)
    if not contract_active(row.until, row.ended_at, today(tz)):
        raise AccountError(f"the contract of '{row.name}' has ended",
                           ru=f"Договор организации «{row.name}» завершён: приглашать в неё нельзя.")
    return row


def invite(conn, cfg, base_url: str, email: str, org: str | None = None, staff: bool = False,
           admin: bool = False) -> Invited:
    """Creates (or refreshes) the invitation and queues its mail, in the caller's transaction."""
    email = accounts.normalize_email(email)
    if admin and staff:
        raise AccountError("--admin is for a client organisation's people, not staff",
                           ru="Администратор бывает только у организации клиента.")
    org_row = _org_for(conn, cfg.timezone, org, staff)
    row = conn.execute(sa.select(users).where(users.c.email == email)).first()
    if row is not None:
        if row.disabled:
            raise AccountError(f"user '{email}' is disabled: enable them first",
                               ru=f"Пользователь {email} отключён: сначала включите его.")
        if not accounts.pending(row):
            raise AccountError(f"user '{email}' already has a password",
                               ru=f"Пользователь {email} уже зарегистрирован и задал пароль.")
        if row.org_id != org_row.id:
            raise AccountError(f"user '{email}' belongs to another organisation",
                               ru=f"Пользователь {email} относится к другой организации.")
        user_id = row.id
    else:
        user_id = accounts.add_user(conn, email, None, org=org, staff=staff)
    if admin:
        conn.execute(users.update().where(users.c.id == user_id).values(is_admin=True))
    void(conn, user_id)
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    conn.execute(invitations.insert().values(id=link_id(secret), user_id=user_id, created_at=now,
                                             expires_at=now + TTL))
    link = f"{base_url.rstrip('/')}/invite/{secret}"
    where = "как сотрудника поддержки" if staff else f"от организации «{org_row.name}»"
    outbox.enqueue(conn, cfg, to=email, subject="Приглашение в базу знаний SET Retail 10",
                   message_id=f"invite-{link_id(secret)[:24]}",
                   text=(f"Здравствуйте!\n\nВас пригласили в базу знаний SET Retail 10 {where}.\n"
                         f"Чтобы задать пароль и войти, откройте ссылку (она действует 72 часа "
                         f"и только один раз):\n{link}\n\nВаш логин — этот адрес: {email}.\n"
                         f"Если вы не ждали приглашения, просто удалите это письмо.\n"))
    return Invited(user_id, org_row.id, email, row is None, link)


def void(conn, user_id: int) -> None:
    """Every link of the person not used yet stops working."""
    conn.execute(invitations.update().where(
        invitations.c.user_id == user_id, invitations.c.used_at.is_(None),
        invitations.c.voided_at.is_(None)).values(voided_at=utcnow()))


def lookup(conn, secret: str, tz):
    """The person a live link belongs to (their users row, with org_name), or None."""
    if not secret or len(secret) > MAX_SECRET:
        return None
    wanted = link_id(secret)
    found = conn.execute(
        sa.select(invitations.c.id.label("link"), invitations.c.used_at, invitations.c.voided_at,
                  invitations.c.expires_at, users, orgs.c.name.label("org_name"),
                  orgs.c.until, orgs.c.ended_at)
        .join(users, invitations.c.user_id == users.c.id).join(orgs, users.c.org_id == orgs.c.id)
        .where(invitations.c.id == wanted)).first()
    if found is None or not hmac.compare_digest(found.link, wanted):
        return None
    if found.used_at or found.voided_at or found.expires_at <= utcnow():
        return None
    if found.disabled or found.erased_at or not accounts.pending(found):
        return None
    if not found.is_staff and not contract_active(found.until, found.ended_at, today(tz)):
        return None
    return found


def accept(conn, secret: str, password: str, tz):
    """Sets the person's password and uses the link up: their row, or None for a dead link.
    AccountError for a password that is too short or too long (the link stays valid)."""
    found = lookup(conn, secret, tz)
    if found is None:
        return None
    accounts.check_password_strength(password)
    used = conn.execute(invitations.update().where(
        invitations.c.id == found.link, invitations.c.used_at.is_(None),
        invitations.c.voided_at.is_(None)).values(used_at=utcnow())).rowcount
    if used != 1:  # taken by a request that came at the same moment
        return None
    accounts.set_password(conn, found.id, password)
    return found


def pending_until(conn, user_ids) -> dict[int, dt.datetime]:
    """user id -> when their live invitation expires (for those that have one)."""
    if not user_ids:
        return {}
    rows = conn.execute(sa.select(invitations.c.user_id, sa.func.max(invitations.c.expires_at))
                        .where(invitations.c.user_id.in_(list(user_ids)),
                               invitations.c.used_at.is_(None), invitations.c.voided_at.is_(None))
                        .group_by(invitations.c.user_id)).all()
    return {uid: until for uid, until in rows}
