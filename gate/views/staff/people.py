"""People in the console: the searchable list, inviting, one person's page, and the changes
(disable, enable, resend the invitation, make or unmake an organisation's admin, reset a
second factor, erase)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import request

from gate import accounts, changes, console, invitations, totp
from gate.accounts import AccountError, Unknown
from gate.db import orgs
from gate.views.staff.common import (ID, actor, bp, done, int_arg, invitation_base, page,
                                     page_arg, refused)
from gate.views.staff.forms import InviteForm
from gate.web.responses import message
from gate.web.runtime import current_gate


def _list(form, status=200, error=None):
    gate = current_gate()
    q, state = request.args.get("find", "")[:254], request.args.get("state", "")
    state = state if state in console.PEOPLE_STATES else ""
    org_id = int_arg("org")
    with gate.engine.connect() as conn:
        found = console.people_page(conn, q, org_id, state, page_arg())
        org_name = conn.execute(sa.select(orgs.c.name).where(orgs.c.id == org_id)).scalar() \
            if org_id is not None else None
    return page("Люди", "staff_people.html", status=status, p=found, q=q, state=state,
                states=console.PEOPLE_STATES, org_id=org_id, org_name=org_name, form=form,
                error=error)


@bp.route("/people/")
def people():
    return _list(InviteForm(formdata=None))


@bp.route("/people/invite", methods=["POST"])
def invite():
    gate = current_gate()
    form = InviteForm()
    staff = bool(form.staff.data)
    org = (form.org.data or "").strip()
    try:
        if staff == bool(org):
            raise AccountError("give either an organisation or staff",
                               ru="Укажите организацию или отметьте «Сотрудник поддержки» — "
                                  "что-то одно.")
        with gate.engine.begin() as conn:
            sent = changes.user_invite(conn, actor(), gate.cfg, invitation_base(),
                                       form.email.data or "", org=org or None, staff=staff,
                                       admin=bool(form.admin.data))
    except AccountError as exc:
        back = request.form.get("next") or ""
        if back.startswith("/staff/orgs/"):  # the form on an organisation's page
            return refused(exc.ru, back)
        return _list(form, status=422, error=exc.ru)
    gate.poke_outbox()
    gate.identities.invalidate()
    return done(f"Приглашение отправлено на {sent.email}: ссылка действует 72 часа.",
                f"/staff/people/{sent.user_id}/")


def _person(conn, user_id: int):
    """The users row of `user_id`, or None when there is no such person."""
    try:
        return accounts.user_by_id(conn, user_id)
    except AccountError:
        return None


def _no_such_person():
    return message("Не найдено", "Такого пользователя нет.", status=404,
                   link=("/staff/people/", "Все люди"))


@bp.route(f"/people/<{ID}:user_id>/")
def person(user_id):
    gate = current_gate()
    with gate.engine.connect() as conn:
        row = _person(conn, user_id)
        if row is None:
            return _no_such_person()
        org = conn.execute(sa.select(orgs).where(orgs.c.id == row.org_id)).first()
        tokens = console.tokens_page(conn, user_id=user_id)
        links = invitations.pending_until(conn, [user_id])
        factor = totp.factor(conn, user_id)
    return page(row.email, "staff_person.html", person=row, org=org, tokens=tokens,
                link_until=links.get(user_id), factor=factor,
                # no password and never signed in (one who signed in from the portal has none)
                invited=accounts.pending(row) and row.last_login_at is None)


def _change(user_id, do, note: str):
    """One change of a person (one transaction), then back to where the button was."""
    gate = current_gate()
    back = f"/staff/people/{user_id}/"
    try:
        with gate.engine.begin() as conn:
            row = accounts.user_by_id(conn, user_id)
            do(conn, row)
    except AccountError as exc:
        return refused(exc.ru, back, status=404 if isinstance(exc, Unknown) else 422)
    gate.identities.invalidate()
    gate.poke_outbox()
    return done(note, back)


@bp.route(f"/people/<{ID}:user_id>/disable", methods=["POST"])
def disable(user_id):
    return _change(user_id, lambda conn, row: changes.user_disable(conn, actor(), row.email, True),
                   "Пользователь отключён: его сеансы и токены перестанут действовать в течение минуты.")


@bp.route(f"/people/<{ID}:user_id>/enable", methods=["POST"])
def enable(user_id):
    return _change(user_id, lambda conn, row: changes.user_disable(conn, actor(), row.email, False),
                   "Пользователь снова может входить.")


@bp.route(f"/people/<{ID}:user_id>/resend", methods=["POST"])
def resend(user_id):
    base = invitation_base  # refused in production without GATE_BASE_URL, inside the change
    return _change(user_id, lambda conn, row: changes.user_resend(conn, actor(), current_gate().cfg,
                                                                  base(), row.id),
                   "Новое приглашение отправлено; прежние ссылки больше не действуют.")


@bp.route(f"/people/<{ID}:user_id>/admin", methods=["POST"])
def admin(user_id):
    on = request.form.get("on") == "1"
    return _change(user_id, lambda conn, row: changes.user_admin(conn, actor(), row.email, on),
                   "Теперь администратор организации." if on else "Больше не администратор организации.")


@bp.route(f"/people/<{ID}:user_id>/totp-reset", methods=["POST"])
def totp_reset(user_id):
    return _change(user_id, lambda conn, row: changes.totp_reset(conn, actor(), row.email),
                   "Второй фактор сброшен: пользователь войдёт по паролю и сможет подключить "
                   "его заново.")


@bp.route(f"/people/<{ID}:user_id>/forget")
def forget_confirm(user_id):
    gate = current_gate()
    with gate.engine.connect() as conn:
        row = _person(conn, user_id)
    if row is None:
        return _no_such_person()
    return page("Удалить данные пользователя", "staff_forget.html", person=row)


@bp.route(f"/people/<{ID}:user_id>/forget", methods=["POST"])
def forget(user_id):
    gate = current_gate()
    try:
        with gate.engine.begin() as conn:
            row = accounts.user_by_id(conn, user_id)
            name = changes.user_forget(conn, actor(), row.email)
    except AccountError as exc:
        return refused(exc.ru, f"/staff/people/{user_id}/",
                       status=404 if isinstance(exc, Unknown) else 422)
    gate.identities.invalidate()
    return done(f"Данные пользователя удалены; в журнале он теперь {name}.", "/staff/people/")
