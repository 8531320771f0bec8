"""Staff sign-in through the company's identity provider (gate.oidc holds the protocol and the
rule of who gets in).

`/login/oidc` sends the browser to the provider with a fresh state, nonce and PKCE verifier,
kept in `kb_oidc`: a signed cookie sent only to /login/oidc, 10 minutes. `/login/oidc/callback`
takes it back once (the cookie is cleared whatever the outcome) and signs the person in as a
password does (gate.web.signin), including the second factor: a provider's word replaces the
password, never our own second factor (a staff member with one, or under GATE_STAFF_2FA, is
asked for the code or taken to enrolment, exactly as after a right password)."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, g, request

from gate import accounts, oidc
from gate.security import safe_next
from gate.shared_limits import SharedWindows
from gate.views import second_factor
from gate.web import signin
from gate.web.responses import message, see_other
from gate.web.runtime import current_gate
from gate.web.signin import client_address
from gate.web.visitor import cookie_flags

bp = Blueprint("oidc", __name__)
log = logging.getLogger("gate")
PENDING_COOKIE = "kb_oidc"
COOKIE_PATH = "/login/oidc"
TRIES = (30, 600)  # starts and callbacks an address may make in 10 minutes
REFUSED = ("Вход через {name} доступен только сотрудникам, чей адрес электронной почты "
           "зарегистрирован в базе знаний и подтверждён. Войдите с паролем или обратитесь к "
           "администратору базы знаний.")
AGAIN = "Вход не выполнен: время на вход истекло или он начат в другом окне. Начните вход заново."
UNCHECKED = ("Ответ службы входа не прошёл проверку, вход не выполнен. Начните вход заново; если "
             "это повторится, обратитесь к администратору базы знаний.")


def provider() -> oidc.Provider | None:
    """The configured identity provider (gate.factory makes it), or None."""
    return current_app.extensions.get("oidc")


@bp.app_context_processor
def _button():
    """The login page's «Войти через …» and the logout page's note, when configured."""
    p = provider()
    return {"oidc_name": p.name if p else None}


def _redirect_uri() -> str:
    """GATE_BASE_URL's callback; the request's host only in local mode (config.py requires
    GATE_BASE_URL in production, since the provider redirects only to a registered URI)."""
    base = current_gate().cfg.base_url or request.host_url.rstrip("/")
    return base + oidc.CALLBACK


def _page(heading: str, text: str, status: int):
    return message(heading, text, status=status, link=("/login", "Вход"), title="Вход")


def _unavailable(p: oidc.Provider, exc: Exception):
    log.warning("oidc: the identity provider is unavailable: %s", exc)
    resp = _page(f"Вход через {p.name} временно недоступен",
                 "Не удалось связаться со службой входа организации. Повторите через несколько "
                 "минут или войдите с паролем.", 503)
    resp.headers["Retry-After"] = "60"
    return resp


def _throttled():
    """429 after TRIES starts and callbacks from one address, counted across every process
    and host (gate.shared_limits) when the gate has shared counters."""
    gate = current_gate()
    windows = (SharedWindows(gate.counters, horizon=TRIES[1]) if gate.counters is not None
               else gate.limits)
    wait = windows.hit(("oidc", client_address()), *TRIES)
    if not wait:
        return None
    resp = _page("Слишком много попыток", f"Слишком много попыток входа. Повторите через "
                 f"{wait} с.", 429)
    resp.headers["Retry-After"] = str(wait)
    return resp


def _forget_pending():
    """The pending state is used once: cleared by every answer of the callback."""
    cookies = g.get("extra_cookies") or []
    cookies.append(dict(key=PENDING_COOKIE, value="", max_age=0,
                        **cookie_flags(current_gate().cfg, path=COOKIE_PATH)))
    g.extra_cookies = cookies


def _refuse(reason: str, text: str, target: str = "?", row=None, status: int = 403):
    """A refused sign-in: the page, and an oidc.refused audit row (counted, as password.refused)."""
    current_gate().refusals.note("oidc.refused", target[:254], client_address(),
                                 org_id=row.org_id if row else None,
                                 user_id=row.id if row else None, details={"reason": reason})
    return _page("Вход не выполнен", text, status)


def _refused_early():
    """404 when no provider is configured, 429 when this address tried too often, else None;
    the same for the start and the callback."""
    if provider() is None:
        return _page("Вход", "Вход через службу входа организации не настроен.", 404)
    return _throttled()


@bp.route("/login/oidc")
def start():
    early = _refused_early()
    if early is not None:
        return early
    p = provider()
    try:
        url, pending = p.begin(_redirect_uri(), safe_next(request.args.get("next")))
    except oidc.Unavailable as exc:
        return _unavailable(p, exc)
    except Exception as exc:  # whatever else the provider's answers cause: a page, never a 500
        log.exception("oidc: starting a sign-in failed")
        return _unavailable(p, exc)
    g.extra_cookies = [dict(key=PENDING_COOKIE, value=oidc.seal(current_gate().key, pending),
                            max_age=oidc.STATE_TTL,
                            **cookie_flags(current_gate().cfg, path=COOKIE_PATH))]
    return see_other(url)


@bp.route("/login/oidc/callback")
def callback():
    early = _refused_early()
    if early is not None:
        return early
    p = provider()
    gate = current_gate()
    pending = oidc.unseal(gate.key, request.cookies.get(PENDING_COOKIE))
    _forget_pending()
    if pending is None:
        return _page("Вход не выполнен", AGAIN, 400)
    if not oidc.state_matches(pending, request.args.get("state")):
        return _refuse("state", AGAIN, status=400)
    error = request.args.get("error")
    if error:  # e.g. access_denied: the person or the provider said no
        return _refuse(f"provider:{error}"[:60], f"Служба входа отказала во входе через {p.name}. "
                       "Войдите с паролем или обратитесь к администратору.")
    code = request.args.get("code") or ""
    if not code or len(code) > 2048:
        return _page("Вход не выполнен", AGAIN, 400)
    try:
        claims = p.finish(code, _redirect_uri(), pending)
    except oidc.Unavailable as exc:
        return _unavailable(p, exc)
    except oidc.Refused as exc:
        return _refuse(exc.reason, UNCHECKED)
    except Exception as exc:  # whatever else the provider's answers cause: a page, never a 500
        log.exception("oidc: a callback failed")
        return _unavailable(p, exc)
    email = claims.get("email") if isinstance(claims.get("email"), str) else ""
    with gate.engine.begin() as conn:
        row = accounts.find_user(conn, email)
        reason = oidc.refusal(claims, row)
        step = started = None
        if reason is None:
            step = second_factor.step_after_password(conn, row)
            if step is None:
                started = signin.start(conn, row, action="oidc.login")
    if reason is None and step is None and started is None:
        reason = "may_not_sign_in"  # accounts.identity refuses it (as signin.start does)
    if reason:
        return _refuse(reason, REFUSED.format(name=p.name), email or "?", row)
    if step is not None:
        resp = second_factor.ask(step, row.id, pending.next, via="oidc")
        _forget_pending()
        return resp
    signin.finish(started)
    _forget_pending()
    return see_other(pending.next)
