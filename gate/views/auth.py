"""Logging in and out, the profile page, changing and resetting a password."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

import sqlalchemy as sa
from flask import Blueprint, Response, g, request, url_for

from gate import accounts, changes, contacts, outbox, totp
from gate.clock import utcnow
from gate.db import password_resets, users
from gate.security import safe_next
from gate.views import second_factor
from gate.web import signin
from gate.web.csrf import exempt
from gate.web.responses import login_required, message, render_in_site, see_other
from gate.web.runtime import current_gate as _gate
from gate.web.signin import DEVICE_COOKIE, client_address, device_mark
from gate.web.storage import NOT_CHANGED, on_storage_fault

bp = Blueprint("auth", __name__)
RESET_TTL = dt.timedelta(minutes=30)
BAD_LOGIN = "Неверный e-mail или пароль."
# a full disk or a database away (gate.web.storage answers 503 with these)
NO_LOGIN = ("Войти сейчас не получится: хранилище базы знаний недоступно (заполнен диск или не "
            "отвечает база данных). Вход не выполнен; повторите через минуту.")


# What each form answers when storage fails (gate.web.storage adds 503 and Retry-After; None:
# its general page). Also used when the fault came before the view: no visitor is assumed.
def _login_again():
    if request.method != "POST":
        return None
    return render_in_site("Вход", "login.html", next=safe_next(request.values.get("next")),
                          email=(request.form.get("email") or "").strip(), error=NO_LOGIN)


def _logout_again():
    return message("Выход не выполнен", f"{NOT_CHANGED} Вы остаётесь в базе знаний; чтобы "
                   "выйти, нажмите «Выйти» ещё раз позже.", link=("/logout", "Выйти"))


def _password_again():
    if g.get("identity") is None:
        return None
    return _account_page(error=f"Пароль не изменён. {NOT_CHANGED}", with_factor=False)


def _account_page(status: int = 200, with_factor: bool = True, **context):
    """The profile; `with_factor`: with the second factor's state (a database read)."""
    gate = _gate()
    state = None
    if with_factor:
        with gate.engine.connect() as conn:
            on = totp.enrolled(conn, g.identity.user_id)
            state = {"on": on, "left": totp.recovery_left(conn, g.identity.user_id) if on else 0}
    return render_in_site("Профиль", "account.html", status=status, opening=gate.tariffs,
                          totp_state=state, **context)


def _forgot_again():
    if request.method != "POST":
        return None
    return render_in_site("Восстановление пароля", "forgot.html",
                          error=f"Письмо не отправлено. {NOT_CHANGED}")


def _reset_again():
    if request.method != "POST":
        return None
    return render_in_site("Новый пароль", "reset.html", secret=request.view_args["secret"],
                          error=f"Пароль не изменён. {NOT_CHANGED}")


@bp.route("/login", methods=["GET", "POST"])
@on_storage_fault(_login_again)
def login():
    next_path = safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_in_site("Вход", "login.html", next=next_path, email="")
    email = (request.form.get("email") or "").strip()
    password = request.form.get("password") or ""
    gate = _gate()
    account = email.lower()
    known = hmac.compare_digest(request.cookies.get(DEVICE_COOKIE, ""), device_mark(account))
    # counted before the password is checked (given back on success): parallel guesses on
    # every gate process and host share one count (gate.throttle)
    wait = gate.throttle.attempt(client_address(), account, known_device=known)
    if wait:
        resp = render_in_site("Слишком много попыток", "login.html", status=429, next=next_path,
                              email=email, error=f"Слишком много неудачных попыток входа. "
                                                 f"Повторите через {wait} с.")
        resp.headers["Retry-After"] = str(wait)
        return resp
    step = None
    with gate.engine.begin() as conn:
        row = accounts.authenticate(conn, email, password)
        if row is not None:  # a second factor may still be asked for: no session yet then
            step = second_factor.step_after_password(conn, row)
        started = signin.start(conn, row) if row and step is None else None
    if step is not None:
        gate.throttle.succeeded(client_address(), account)  # the password was right
        return second_factor.ask(step, row.id, next_path)
    if started is None:
        gate.refusals.note("password.refused", account[:254], client_address())
        return render_in_site("Вход", "login.html", status=401, next=next_path, email=email,
                              error=BAD_LOGIN)
    gate.throttle.succeeded(client_address(), account)
    signin.finish(started)
    return see_other(next_path)


@bp.route("/logout", methods=["GET"])
def logout_page():
    """A link to /logout shows a button; logging out itself takes a POST."""
    return render_in_site("Выход", "logout.html")


@bp.route("/logout", methods=["POST"])
@exempt  # the logout form is on prebuilt pages: the Origin check alone protects it
@on_storage_fault(_logout_again)
def logout():
    if g.identity is not None and g.identity.session_id:
        _gate().identities.end_session(g.identity.session_id)
    g.new_token, g.clear_cookie = None, True
    return see_other("/")


@bp.route("/account/")
@login_required
def account():
    return _account_page()


@bp.route("/account/password", methods=["POST"])
@login_required
@on_storage_fault(_password_again)
def change_password():
    gate = _gate()
    current = request.form.get("current") or ""
    new, repeat = request.form.get("new") or "", request.form.get("repeat") or ""
    error = None
    with gate.engine.begin() as conn:
        row = conn.execute(sa.select(users).where(users.c.id == g.identity.user_id)).first()
        if not accounts.verify_password(row.password_hash, current):
            error = "Текущий пароль указан неверно."
        elif new != repeat:
            error = "Новый пароль и его повтор не совпадают."
        else:
            try:
                accounts.set_password(conn, row.id, new, keep_session=g.identity.session_id)
                changes.own_password(conn, row, client_address(), via="profile")
            except accounts.AccountError:
                error = f"Новый пароль должен содержать от {accounts.MIN_PASSWORD} до {accounts.MAX_PASSWORD} символов."
    if error:
        return _account_page(status=422, error=error)
    gate.identities.invalidate()
    if g.session_secret:  # this browser stays logged in, with a token issued after the change
        g.new_token = gate.identities.session_token(g.identity, g.session_secret)
    return _account_page(done="Пароль изменён. Другие сеансы входа завершены.")


def _reset_id(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def reset_link_base() -> str | None:
    """Where reset links point: GATE_BASE_URL; the request's host only in local mode.

    In production the Host header is the sender's to choose, and a link built from it would
    carry the secret to the attacker's site, so without GATE_BASE_URL no link is mailed.
    """
    cfg = _gate().cfg
    return cfg.base_url or (request.host_url.rstrip("/") if cfg.local else None)


@bp.route("/password/forgot", methods=["GET", "POST"])
@on_storage_fault(_forgot_again)
def forgot():
    if reset_link_base() is None:
        return message("Восстановление пароля", "Восстановление пароля по почте на этом сервере "
                       f"не настроено. Напишите в поддержку: {contacts.EMAIL} — вам выдадут новый "
                       "пароль.")
    if request.method == "GET":
        return render_in_site("Восстановление пароля", "forgot.html")
    gate = _gate()
    email = (request.form.get("email") or "").strip()
    # counted apart from logins, so asking for resets never blocks logging in
    address, account = "reset:" + client_address(), "reset:" + email.lower()
    wait = gate.throttle.attempt(address, account)  # every request counts
    if wait:
        return render_in_site("Восстановление пароля", "forgot.html", status=429,
                              error=f"Слишком много запросов. Повторите через {wait} с.")
    with gate.engine.begin() as conn:
        row = accounts.find_user(conn, email)
        if row is not None and not row.disabled:
            secret = secrets.token_urlsafe(32)
            conn.execute(password_resets.insert().values(
                id=_reset_id(secret), user_id=row.id,
                expires_at=utcnow() + RESET_TTL))
            link = reset_link_base() + url_for("auth.reset", secret=secret)
            outbox.enqueue(conn, gate.cfg, to=row.email,
                           subject="Восстановление пароля в базе знаний SET Retail 10",
                           text=(f"Здравствуйте!\n\nЧтобы задать новый пароль, откройте ссылку "
                                 f"(действует 30 минут, один раз):\n{link}\n\n"
                                 f"Если вы не запрашивали смену пароля, просто удалите это письмо.\n"),
                           message_id=f"reset-{_reset_id(secret)[:24]}")
    return message("Проверьте почту", "Если этот адрес зарегистрирован, мы отправили на него "
                   "ссылку для смены пароля. Ссылка действует 30 минут.",
                   title="Восстановление пароля")


@bp.route("/password/reset/<secret>", methods=["GET", "POST"])
@on_storage_fault(_reset_again)
def reset(secret):
    gate = _gate()
    with gate.engine.begin() as conn:
        row = conn.execute(sa.select(password_resets).where(
            password_resets.c.id == _reset_id(secret[:200]))).first()
        valid = row is not None and row.used_at is None and row.expires_at > utcnow()
        if not valid:
            return message("Ссылка недействительна", "Ссылка устарела или уже использована. "
                           "Запросите новую на странице восстановления пароля.", status=404)
        if request.method == "GET":
            return render_in_site("Новый пароль", "reset.html", secret=secret)
        new, repeat = request.form.get("new") or "", request.form.get("repeat") or ""
        error = None
        if new != repeat:
            error = "Пароль и его повтор не совпадают."
        else:
            try:
                accounts.set_password(conn, row.user_id, new)
                who = conn.execute(sa.select(users).where(users.c.id == row.user_id)).first()
                changes.own_password(conn, who, client_address(), via="reset")
            except accounts.AccountError:
                error = f"Пароль должен содержать от {accounts.MIN_PASSWORD} до {accounts.MAX_PASSWORD} символов."
        if error:
            return render_in_site("Новый пароль", "reset.html", status=422, secret=secret, error=error)
        conn.execute(password_resets.update().where(password_resets.c.id == row.id)
                     .values(used_at=utcnow()))
    gate.identities.invalidate()
    return message("Пароль изменён", "Теперь войдите с новым паролем.", link=("/login", "Войти"))


