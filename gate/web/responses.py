"""The answers views share: a page in the site's look, a message page, the login answer, a
redirect, and the decorators a view states its needs with (`@login_required`,
`@staff_required`)."""

from __future__ import annotations

from functools import wraps
from urllib.parse import quote

from flask import Response, g, jsonify, render_template, request

from gate.security import security_headers
from gate.web.runtime import current_edition, current_gate


def private(resp: Response) -> Response:
    """Answers that depend on the visitor are never cached by others."""
    resp.headers["Cache-Control"] = "private, no-store"
    resp.vary.add("Cookie")
    return resp


def wants_html() -> bool:
    return "text/html" in request.headers.get("Accept", "").lower()


def render_in_site(title: str, template: str, status: int = 200, **context) -> Response:
    """A gate page (login, locked page, forms) in the site's look, with the visitor's navigation."""
    body = render_template(template, identity=g.get("identity"), **context)
    return private(Response(current_edition().render(title, body), status=status,
                            mimetype="text/html"))


def message(heading: str, text: str, status: int = 200, link: tuple[str, str] | None = None,
            title: str | None = None) -> Response:
    """A page that says one thing (a refusal, a confirmation), with a link onwards."""
    return render_in_site(title or heading, "message.html", status=status, heading=heading,
                          message=text, link=link)


def see_other(location: str) -> Response:
    resp = Response(status=303)
    resp.headers["Location"] = location
    return resp


def ask_to_log_in() -> Response:
    """303 to the login page for a browser, 401 for a script or fetch (or a bad Bearer token)."""
    if wants_html() and not g.get("bad_bearer"):
        target = request.full_path if request.query_string else request.path
        resp = see_other("/login?next=" + quote(target, safe=""))
    else:
        resp = jsonify(error="login required", login="/login")
        resp.status_code = 401
        resp.headers["WWW-Authenticate"] = 'Bearer realm="kb"'
    return private(resp)


def staff_only() -> Response:
    return message("Недоступно", "Эта страница — для сотрудников поддержки.", status=403)


def login_required(view):
    """The view runs for a logged-in visitor; others are asked to log in."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        if g.get("identity") is None:
            return ask_to_log_in()
        return view(*args, **kwargs)
    return wrapped


def staff_required(view):
    """The view runs for staff; anonymous visitors are asked to log in, others get 403."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        identity = g.get("identity")
        if identity is None:
            return ask_to_log_in()
        if not identity.staff:
            return staff_only()
        return view(*args, **kwargs)
    return wrapped


SERVER = "kb-gate"  # the Server header of every answer the gate makes (edge mode tells by it)


def _finish(response: Response) -> Response:
    response.headers["Server"] = SERVER
    security_headers(response.headers, production=not current_gate().cfg.local)
    if "Cache-Control" not in response.headers:
        private(response)
    return response


def init_app(app) -> None:
    app.after_request(_finish)
