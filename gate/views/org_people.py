"""/account/people/: an organisation's admin looks after their own organisation's people —
the list with pending invitations, invite, invite again, disable, enable.

Only ever their own organisation: a person of another organisation, a staff member, an erased
or unknown id is "not found" (404, the same answer for all, so nothing is learnt about other
organisations); acting on oneself is refused (403: no self-lockout). Admins never grant admin:
only staff do (the console, `gate user admin`). Everybody else gets 403 (staff: /staff/), an
anonymous visitor is asked to log in. Every change runs through gate.changes in one
transaction with its audit row (actor: the admin's e-mail). Invitations, which send mail
through our outbox, are limited per admin and per organisation across every gate process.
"""

from __future__ import annotations

import datetime as dt
from functools import wraps

import sqlalchemy as sa
from flask import Blueprint, flash, g, request

from gate import accounts, changes, console
from gate.accounts import AccountError
from gate.db import orgs, users
from gate.security import safe_next
from gate.views.staff.common import invitation_base
from gate.web import rates
from gate.web.responses import ask_to_log_in, message, render_in_site, see_other
from gate.web.runtime import current_gate
from gate.web.signin import client_address

bp = Blueprint("org_people", __name__, url_prefix="/account/people")
HOME = "/account/people/"
ID = "int(max=2147483647)"
PER_ADMIN = (20, 3600)   # invitations (new or again) per admin an hour
PER_ORG = (50, 3600)     # invitations per organisation an hour, whoever sends them
NOT_FOUND = "Такого пользователя в вашей организации нет."
ENDED = ("Договор вашей организации завершён: приглашать новых людей нельзя. Отключать и "
         "включать учётные записи по-прежнему можно. По вопросам договора обратитесь к "
         "вашему менеджеру.")


class _Refused(Exception):
    def __init__(self, status: int, text: str):
        super().__init__(text)
        self.status, self.text = status, text


def admin_required(view):
    """Anonymous: log in; staff and people who are not their organisation's admin: 403."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        identity = g.get("identity")
        if identity is None:
            return ask_to_log_in()
        if identity.staff:
            return message("Недоступно", "Сотрудники поддержки управляют людьми в консоли.",
                           status=403, link=("/staff/people/", "Консоль: люди"))
        if not identity.admin:
            return message("Недоступно", "Эта страница — для администраторов организации. "
                           "Если вам нужно пригласить коллегу, обратитесь к администратору "
                           "вашей организации.", status=403)
        return view(*args, **kwargs)
    return wrapped


def _actor() -> changes.Actor:
    return changes.Actor(g.identity.email, client_address(), g.identity.user_id)


def _admin_row(conn):
    """The acting admin as the database has them now (the session's snapshot may be up to a
    minute old): still an enabled admin of a client organisation, or 403."""
    row = conn.execute(sa.select(users).where(users.c.id == g.identity.user_id,
                                              users.c.erased_at.is_(None))).first()
    if row is None or row.disabled or row.is_staff or not row.is_admin:
        raise _Refused(403, "Вы больше не администратор организации.")
    return row


def _target(conn, admin, user_id: int):
    """A person of the admin's own organisation, never staff, never the admin; else refused."""
    try:
        row = accounts.user_by_id(conn, user_id)
    except AccountError:
        raise _Refused(404, NOT_FOUND) from None
    if row.org_id != admin.org_id or row.is_staff:
        raise _Refused(404, NOT_FOUND)
    if row.id == admin.id:
        raise _Refused(403, "Это действие нельзя применить к своей учётной записи.")
    return row


def _org_name(conn, org_id: int) -> str:
    return conn.execute(sa.select(orgs.c.name).where(orgs.c.id == org_id)).scalar()


def _limited():
    """Counts an invitation against the admin's and the organisation's limits (429 when over)."""
    return rates.check_shared((("org-invite-admin", g.identity.user_id), *PER_ADMIN),
                              (("org-invite-org", g.identity.org), *PER_ORG))


def _refused(text: str, status: int):
    return message("Не выполнено", text + " Ничего не изменено.", status=status,
                   link=(HOME, "Вернуться к списку"))


def _done(text: str):
    flash(text)
    return see_other(safe_next(request.form.get("next"), default=HOME))


@bp.route("/")
@admin_required
def people():
    gate = current_gate()
    with gate.engine.connect() as conn:
        found = console.people_page(conn, org_id=_own_org_id(conn), page=_page_arg(),
                                    per_page=100)
    return render_in_site("Люди организации", "org_people.html", p=found,
                          self_id=g.identity.user_id, ended=not g.identity.contract_active,
                          when=_when)


def _own_org_id(conn) -> int:
    return conn.execute(sa.select(users.c.org_id).where(users.c.id == g.identity.user_id)).scalar()


def _page_arg() -> int:
    value = request.args.get("page", "1")
    return int(value) if value.isascii() and value.isdigit() and len(value) < 7 else 1


def _when(value):
    if value is None:
        return "—"
    tz = current_gate().cfg.timezone
    return value.replace(tzinfo=dt.timezone.utc).astimezone(tz).strftime("%d.%m.%Y %H:%M")


@bp.route("/invite", methods=["POST"])
@admin_required
def invite():
    if not g.identity.contract_active:
        return _refused(ENDED, 403)
    email = (request.form.get("email") or "").strip()
    gate = current_gate()
    try:
        with gate.engine.begin() as conn:
            admin = _admin_row(conn)
            wait = _limited()  # first: probing addresses costs a try like inviting does
            if wait is not None:
                return wait
            _not_elsewhere(conn, admin, email)
            sent = changes.user_invite(conn, _actor(), gate.cfg, _base_url(), email,
                                       org=_org_name(conn, admin.org_id))
    except _Refused as exc:
        return _refused(exc.text, exc.status)
    except AccountError as exc:
        return _refused(exc.ru, 422)
    gate.poke_outbox()
    gate.identities.invalidate()
    return _done(f"Приглашение отправлено на {sent.email}: ссылка действует 72 часа.")


def _not_elsewhere(conn, admin, email: str) -> None:
    """An address of another organisation or of staff: one answer that tells nothing about it."""
    try:
        email = accounts.normalize_email(email)
    except AccountError:
        return  # user_invite says what is wrong with it
    row = conn.execute(sa.select(users.c.org_id, users.c.is_staff, users.c.erased_at)
                       .where(users.c.email == email)).first()
    if row is not None and (row.org_id != admin.org_id or row.is_staff or row.erased_at):
        raise _Refused(404, "Этот адрес нельзя пригласить в вашу организацию. Если человек "
                            "перешёл к вам из другой организации, обратитесь в поддержку.")


def _base_url() -> str:
    """Where invitation links point, as the console's (an admin cannot set it: they are told
    to ask support)."""
    return invitation_base("Приглашения сейчас не отправляются: адрес базы знаний не настроен. "
                           "Сообщите об этом в поддержку.")


def _change(user_id: int, do, note: str, invites: bool = False):
    """One change of a person of the admin's organisation (one transaction with its audit row)."""
    gate = current_gate()
    if invites and not g.identity.contract_active:
        return _refused(ENDED, 403)
    try:
        with gate.engine.begin() as conn:
            admin = _admin_row(conn)
            row = _target(conn, admin, user_id)
            if invites:
                wait = _limited()
                if wait is not None:
                    return wait
            do(conn, row)
    except _Refused as exc:
        return _refused(exc.text, exc.status)
    except AccountError as exc:
        return _refused(exc.ru, 422)
    gate.identities.invalidate()
    gate.poke_outbox()
    return _done(note)


@bp.route(f"/<{ID}:user_id>/disable", methods=["POST"])
@admin_required
def disable(user_id):
    return _change(user_id, lambda conn, row: changes.user_disable(conn, _actor(), row.email, True),
                   "Пользователь отключён: его сеансы перестанут действовать в течение минуты.")


@bp.route(f"/<{ID}:user_id>/enable", methods=["POST"])
@admin_required
def enable(user_id):
    return _change(user_id, lambda conn, row: changes.user_disable(conn, _actor(), row.email, False),
                   "Пользователь снова может входить.")


@bp.route(f"/<{ID}:user_id>/resend", methods=["POST"])
@admin_required
def resend(user_id):
    def again(conn, row):
        if not accounts.pending(row):
            raise AccountError("has a password", ru="Пользователь уже задал пароль.")
        changes.user_resend(conn, _actor(), current_gate().cfg, _base_url(), row.id)
    return _change(user_id, again, "Новое приглашение отправлено; прежние ссылки больше не "
                   "действуют.", invites=True)
