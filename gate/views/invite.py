"""Accepting an invitation: /invite/<secret> shows a form to set a password; the POST sets it,
uses the link up and signs the person in (gate.web.signin, as after /login; staff under
GATE_STAFF_2FA go on to enrol a second factor first, gate.views.second_factor). A dead link
(used, expired, replaced, unknown, a disabled person, an ended contract) is one 404 page.
Rate-limited per address and per link."""

from __future__ import annotations

from flask import Blueprint, request
from flask_wtf import FlaskForm
from wtforms import PasswordField

from gate import accounts, changes, invitations
from gate.views import second_factor
from gate.web import rates, signin
from gate.web.responses import message, render_in_site, see_other
from gate.web.runtime import current_gate
from gate.web.signin import client_address

bp = Blueprint("invite", __name__)
PER_ADDRESS = (30, 600)  # requests to invitation links from one address in 10 minutes
PER_LINK = (10, 600)     # requests to one link in 10 minutes


class PasswordForm(FlaskForm):
    new = PasswordField(f"Пароль (не короче {accounts.MIN_PASSWORD} символов)")
    repeat = PasswordField("Повтор пароля")


def _dead():
    current_gate().refusals.note("invite.refused", "-", client_address())
    return message("Ссылка недействительна", "Ссылка-приглашение устарела, уже использована или "
                   "заменена более новой. Попросите прислать новое приглашение того, кто вас "
                   "пригласил, или напишите в поддержку: sd@crystals.ru.", status=404)


def _form(found, form, secret, status=200, error=None):
    return render_in_site("Приглашение в базу знаний", "invite.html", status=status, form=form,
                          secret=secret, person=found, error=error)


@bp.route("/invite/<secret>", methods=["GET", "POST"])
def accept(secret):
    limited = rates.check((("invite-address", client_address()), *PER_ADDRESS),
                          (("invite-link", invitations.link_id(secret[:invitations.MAX_SECRET])),
                           *PER_LINK))
    if limited:
        return limited
    gate = current_gate()
    tz = gate.cfg.timezone
    form = PasswordForm()
    if request.method == "GET":
        with gate.engine.connect() as conn:
            found = invitations.lookup(conn, secret, tz)
        return _dead() if found is None else _form(found, form, secret)
    new, repeat = form.new.data or "", form.repeat.data or ""
    error, started, step = None, None, None
    try:
        with gate.engine.begin() as conn:
            found = invitations.lookup(conn, secret, tz)
            if found is not None and new == repeat:
                found = invitations.accept(conn, secret, new, tz)
                if found is not None:
                    changes.own_password(conn, found, client_address(), via="invitation")
                    step = second_factor.step_after_password(conn, found)
                    if step is None:
                        started = signin.start(conn, found, action=None)
    except accounts.AccountError as exc:
        error = exc.ru
    if found is None:
        return _dead()
    if step is not None and not error:  # the password is set; the session waits for the factor
        return second_factor.ask(step, found.id, "/", via="invitation")
    if error or new != repeat or started is None:
        return _form(found, form, secret, status=422,
                     error=error or "Пароль и его повтор не совпадают.")
    signin.finish(started)
    return see_other("/")
