"""The second factor on the web: the step of the login after a right password (a code, or for
staff under GATE_STAFF_2FA without a factor, enrolment), and enrolling or removing one's own
authenticator in /account/ (gate.totp holds the rules).

Between the password and the code nobody is signed in: the login sets `kb_2fa`, a cookie sent
only to /login/ holding gate.totp's signed pending state (5 minutes). Wrong codes are counted
like wrong passwords (gate.throttle, the account's key prefixed "totp:")."""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, g, request

from gate import accounts, changes, totp
from gate.accounts import AccountError
from gate.security import safe_next
from gate.web import signin
from gate.web.responses import login_required, message, render_in_site, see_other
from gate.web.runtime import current_gate
from gate.web.signin import client_address
from gate.web.visitor import cookie_flags

bp = Blueprint("second_factor", __name__)
PENDING_COOKIE = "kb_2fa"
BAD_CODE = "Неверный или уже использованный код. Введите новый код из приложения-аутентификатора."
STALE = "Время на ввод кода истекло. Войдите ещё раз."


def step_after_password(conn, row) -> str | None:
    """What a person who gave the right password must still do: "code" (they have a factor),
    "enrol" (staff without one under GATE_STAFF_2FA), or None (sign in now)."""
    gate = current_gate()
    if accounts.identity(conn, row.id, gate.tariffs, gate.cfg.timezone) is None:
        return None  # may not sign in at all: signin.start refuses, as without a factor
    if totp.enrolled(conn, row.id):
        return "code"
    if row.is_staff and gate.cfg.staff_2fa:
        return "enrol"
    return None


def ask(purpose: str, user_id: int, next_path: str, via: str = "password"):
    """The login's answer after the first factor (`via`: totp.FIRST_FACTORS) when a step
    remains: 303 to that step."""
    gate = current_gate()
    state = totp.pending(gate.key, purpose, user_id, via=via)
    g.extra_cookies = [dict(key=PENDING_COOKIE, value=state,
                            max_age=totp.PENDING_TTL, **cookie_flags(gate.cfg, path="/login/"))]
    where = "/login/code" if purpose == "code" else "/login/enrol"
    return see_other(f"{where}?next={quote(next_path, safe='/')}" if next_path != "/" else where)


def _pending(purpose: str):
    """The users row the pending state names, or None (no state, expired, tampered, gone);
    g.signin_action: the audit action of the sign-in that completes it."""
    gate = current_gate()
    state = totp.read_pending_state(gate.key, request.cookies.get(PENDING_COOKIE, ""), purpose)
    if state is None:
        return None
    g.signin_action = totp.FIRST_FACTORS[state[1]]
    with gate.engine.connect() as conn:
        try:
            return accounts.user_by_id(conn, state[0])
        except AccountError:
            return None


def _done(started, then):
    """Signs the person in (after the commit) and forgets the pending state."""
    signin.finish(started)
    g.extra_cookies.append(dict(key=PENDING_COOKIE, value="", max_age=0,
                                **cookie_flags(current_gate().cfg, path="/login/")))
    return then


def _throttled(account: str):
    """A 429 page when this account's codes (or this address) have failed too often, else None;
    the try is counted now, as a password's is."""
    wait = current_gate().throttle.attempt(client_address(), "totp:" + account)
    if not wait:
        return None
    resp = message("Слишком много попыток", f"Слишком много неверных кодов. Повторите через "
                   f"{wait} с.", status=429, link=("/login", "Вход"))
    resp.headers["Retry-After"] = str(wait)
    return resp


def _step(purpose: str, form):
    """The prologue of a login step: (the pending person, next path, None), or an answer that
    ends the request: a lost or stale state, the step's form (`form(row, next_path)`) for a
    GET, or 429 when this account's codes failed too often (a POST's try is counted)."""
    next_path = safe_next(request.values.get("next"))
    row = _pending(purpose)
    if row is None:
        return None, next_path, message("Вход", STALE, link=("/login", "Войти"),
                                        status=401 if request.method == "POST" else 200)
    if request.method == "GET":
        return row, next_path, form(row, next_path)
    return row, next_path, _throttled(row.email)


@bp.route("/login/code", methods=["GET", "POST"])
def code():
    row, next_path, answer = _step("code", lambda row, next_path: render_in_site(
        "Код подтверждения", "totp_code.html", next=next_path))
    if answer is not None:
        return answer
    gate = current_gate()
    with gate.engine.begin() as conn:
        kind = totp.verify(conn, row.id, request.form.get("code") or "")
        started = signin.start(conn, row, action=g.signin_action) if kind else None
    if started is None:
        gate.refusals.note("totp.refused", row.email, client_address(), org_id=row.org_id,
                           user_id=row.id)
        return render_in_site("Код подтверждения", "totp_code.html", status=401,
                              next=next_path, error=BAD_CODE)
    gate.throttle.succeeded(client_address(), "totp:" + row.email)
    if kind == "recovery":
        return _done(started, message(
            "Вход выполнен", "Вы вошли по резервному коду; он больше не действует. Если "
            "приложение-аутентификатор утеряно, отключите второй фактор и подключите его "
            "заново в профиле.", link=(next_path, "Продолжить")))
    return _done(started, see_other(next_path))


def _enrol_form(action: str, next_path: str, email: str, secret: str | None = None,
                status: int = 200, error: str | None = None):
    secret = secret if secret and totp.valid_secret(secret) else totp.new_secret()
    return render_in_site("Второй фактор", "totp_enrol.html", status=status, action=action,
                          next=next_path, secret=secret, error=error,
                          qr=totp.qr_data_uri(totp.provisioning_uri(secret, email)))


def _codes_page(codes, next_path: str):
    return render_in_site("Резервные коды", "totp_codes.html", codes=codes, next=next_path)


@bp.route("/login/enrol", methods=["GET", "POST"])
def enrol_at_login():
    """Staff under GATE_STAFF_2FA without a factor: nothing but this until it is set up."""
    row, next_path, answer = _step("enrol", lambda row, next_path: _enrol_form(
        "/login/enrol", next_path, row.email))
    if answer is not None:
        return answer
    gate = current_gate()
    secret = request.form.get("secret") or ""
    with gate.engine.begin() as conn:
        codes = changes.totp_enrol(conn, row, client_address(), secret,
                                   request.form.get("code") or "")
        started = signin.start(conn, row, action=g.signin_action) if codes else None
    if started is None:
        return _enrol_form("/login/enrol", next_path, row.email, secret, status=422,
                           error=BAD_CODE)
    gate.throttle.succeeded(client_address(), "totp:" + row.email)
    return _done(started, _codes_page(codes, next_path))


@bp.route("/account/totp", methods=["GET", "POST"])
@login_required
def enrol():
    gate = current_gate()
    with gate.engine.connect() as conn:
        row = accounts.user_by_id(conn, g.identity.user_id)
        if totp.enrolled(conn, row.id):
            return see_other("/account/")
    if request.method == "GET":
        return _enrol_form("/account/totp", "/account/", row.email)
    secret = request.form.get("secret") or ""
    with gate.engine.begin() as conn:
        codes = changes.totp_enrol(conn, row, client_address(), secret,
                                   request.form.get("code") or "")
    if codes is None:
        return _enrol_form("/account/totp", "/account/", row.email, secret, status=422,
                           error=BAD_CODE)
    return _codes_page(codes, "/account/")


@bp.route("/account/totp/remove", methods=["POST"])
@login_required
def remove():
    """Removing one's own factor takes a current code (or a recovery code)."""
    gate = current_gate()
    limited = _throttled(g.identity.email)
    if limited:
        return limited
    with gate.engine.begin() as conn:
        row = accounts.user_by_id(conn, g.identity.user_id)
        ok = totp.verify(conn, row.id, request.form.get("code") or "")
        if ok:
            who = changes.Actor(row.email, client_address(), row.id)
            changes.totp_reset(conn, who, row.email, via="profile")
    if not ok:
        return message("Второй фактор не отключён", BAD_CODE, status=422,
                       link=("/account/", "Профиль"))
    gate.throttle.succeeded(client_address(), "totp:" + g.identity.email)
    return message("Второй фактор отключён", "Теперь для входа нужен только пароль.",
                   link=("/account/", "Профиль"))
