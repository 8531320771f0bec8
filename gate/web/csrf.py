"""Forms that change something: every one is checked against Origin (or Referer) and carries a
Flask-WTF `csrf_token`. Requests from prebuilt static pages (the logout form) cannot carry a
per-person token: their views are `exempt` and the Origin check alone protects them. The
portal's sign-in (`POST /sso/jwt`) comes from the portal's own site: `signed_elsewhere` exempts
it from both, its signed single-use token is its proof."""

from __future__ import annotations

from flask import current_app, request
from flask_wtf.csrf import CSRFError, CSRFProtect

from gate.security import same_origin
from gate.web.responses import message
from gate.web.runtime import current_gate

csrf = CSRFProtect()
exempt = csrf.exempt
_FOREIGN_ORIGIN_ALLOWED: set = set()  # view functions proven by a signed token instead


def signed_elsewhere(view):
    """A view whose requests come from another site and prove themselves by a signed token."""
    _FOREIGN_ORIGIN_ALLOWED.add(view)
    return csrf.exempt(view)


def expected_origins() -> set[str]:
    # Behind a TLS proxy that is not trusted to say so, the browser's Origin is https.
    origins = {f"http://{request.host}", f"https://{request.host}"}
    base_url = current_gate().cfg.base_url
    if base_url:
        origins.add(base_url)
    return origins


def _check_origin():
    """Every state-changing request must come from our own pages (CSRF, with the token)."""
    if current_app.view_functions.get(request.endpoint) in _FOREIGN_ORIGIN_ALLOWED:
        return None
    if request.method in ("POST", "PUT", "PATCH", "DELETE") and not same_origin(
            request.headers.get("Origin"), request.headers.get("Referer"), expected_origins()):
        return message("Запрос отклонён", "Форма отправлена с другого сайта. Откройте страницу "
                       "базы знаний и отправьте форму оттуда.", status=403)


def _token_failed(_error):
    return message("Форма устарела", "Страница с формой была открыта слишком давно или cookie "
                   "отключены. Обновите страницу и отправьте форму ещё раз.", status=400)


def init_app(app) -> None:
    """After gate.web.visitor: the refusal pages show the visitor's navigation."""
    app.before_request(_check_origin)
    csrf.init_app(app)
    app.register_error_handler(CSRFError, _token_failed)
