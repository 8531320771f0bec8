"""Serving the editions: every page request is mapped to the visitor's edition and section."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, render_template, request, send_file
from urllib.parse import quote

from gate.access import LOGIN, SERVE, edition_for, page_decision
from gate.sections import SECTIONS, section_of_url
from gate.security import cache_headers
from gate.site import content_type, normalize_path
from gate.tariffs import tariffs_opening
from gate.app import current_gate as _gate

bp = Blueprint("pages", __name__)


def wants_html() -> bool:
    return "text/html" in request.headers.get("Accept", "").lower()


def edition():
    return _gate().current_editions()[edition_for(g.get("identity"))]


def render_in_site(title: str, template: str, status: int = 200, **context) -> Response:
    """A gate page (login, locked page, forms) in the site's look, with the visitor's navigation."""
    body = render_template(template, identity=g.get("identity"), **context)
    resp = Response(edition().render(title, body), status=status, mimetype="text/html")
    resp.headers["Cache-Control"] = "private, no-store"
    resp.vary.add("Cookie")
    return resp


def login_required() -> Response:
    """303 to the login page for a browser, 401 for a script or fetch."""
    if wants_html() and not g.get("bad_bearer"):
        target = request.full_path if request.query_string else request.path
        resp = Response(status=303)
        resp.headers["Location"] = "/login?next=" + quote(target, safe="")
    else:
        resp = jsonify(error="login required", login="/login")
        resp.status_code = 401
        resp.headers["WWW-Authenticate"] = 'Bearer realm="kb"'
    resp.headers["Cache-Control"] = "private, no-store"
    resp.vary.add("Cookie")
    return resp


def locked(section: str) -> Response:
    opening = tariffs_opening(_gate().tariffs, section)
    return render_in_site("Раздел недоступен", "locked.html", status=403,
                          section_key=section, section_title=SECTIONS[section],
                          opening=opening, from_path=request.path)


@bp.route("/healthz")
def healthz():
    import sqlalchemy as sa
    try:
        with _gate().engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception:  # the answer is the point: the gate cannot serve
        return jsonify(status="database unavailable"), 503
    return jsonify(status="ok", editions=len(_gate().editions))


@bp.route("/", defaults={"path": ""}, methods=["GET", "HEAD"])
@bp.route("/<path:path>", methods=["GET", "HEAD"])
def page(path):
    if g.get("bad_bearer"):
        return login_required()
    norm = normalize_path("/" + path)
    section = section_of_url(norm or "/" + path)
    decision = page_decision(g.identity, section)
    if decision != SERVE:
        return login_required() if decision == LOGIN else locked(section)
    if norm is None:
        return not_found()
    file, redirect_to = edition().lookup(norm)
    if redirect_to:
        resp = Response(status=301)
        resp.headers["Location"] = redirect_to + (f"?{request.query_string.decode('latin-1')}"
                                                  if request.query_string else "")
        return resp
    if file is None:
        return not_found()
    resp = send_file(file, mimetype=content_type(file),
                     conditional=True, etag=True, max_age=None)
    cache_headers(resp.headers, norm)
    return resp


def not_found(_error=None) -> Response:
    ed = edition()
    page404 = ed.files.get("404.html")
    resp = Response(page404.read_bytes() if page404 else b"Not found", status=404,
                    mimetype="text/html")
    cache_headers(resp.headers, "/404.html")
    return resp


def csrf_failed(_error):
    return render_in_site("Форма устарела", "message.html", status=400,
                          heading="Форма устарела",
                          message="Страница с формой была открыта слишком давно или cookie отключены. "
                                  "Обновите страницу и отправьте форму ещё раз.")


def too_large(_error):
    return render_in_site("Слишком большой запрос", "message.html", status=413,
                          heading="Слишком большой запрос",
                          message="Размер отправленных данных превышает допустимый. "
                                  "Уменьшите вложения и попробуйте ещё раз.")


def method_not_allowed(error):
    resp = error.get_response()
    resp.set_data("Метод не поддерживается для этого адреса.".encode())
    resp.mimetype = "text/plain"
    return resp


def server_error(_error):
    return Response("Внутренняя ошибка. Попробуйте позже или напишите в поддержку: sd@crystals.ru",
                    status=500, mimetype="text/plain")
