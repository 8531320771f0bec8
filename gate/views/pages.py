"""Serving the editions: every page request is mapped to the visitor's edition and section;
the answers for errors (404, 405, 413, 500) and the health check."""

from __future__ import annotations

import os

from flask import Blueprint, Response, g, jsonify, request, send_file

from gate import contacts
from gate.access import LOGIN, SERVE, page_decision
from gate.health import site_readable
from gate.sections import SECTIONS, section_of_url
from gate.security import cache_headers
from gate.site import etag, file_headers, normalize_path
from gate.tariffs import tariffs_opening
from gate.web.responses import ask_to_log_in, render_in_site
from gate.web.runtime import current_edition, current_gate

bp = Blueprint("pages", __name__)


def locked(section: str) -> Response:
    identity = g.get("identity")
    if identity is not None:  # a hit on a section the tariff lacks, per organisation
        current_gate().usage.locked(identity.org_id, section)
    opening = tariffs_opening(current_gate().tariffs, section)
    return render_in_site("Раздел недоступен", "locked.html", status=403,
                          section_key=section, section_title=SECTIONS[section],
                          opening=opening, from_path=request.path)


@bp.route("/healthz")
def healthz():
    """200 while pages can be served, also when storage cannot be written (the body says so:
    a load balancer must not take out a gate that serves pages); 503 only when the site is
    gone. See gate.health."""
    gate = current_gate()
    editions = gate.current_editions()
    serving = site_readable(editions)
    age = gate.identities.age()
    body = {"status": "ok" if serving else "cannot serve", "serving": serving,
            **gate.storage_probe.state(), "editions": len(editions),
            "accounts_age": None if age is None else round(age)}
    return jsonify(body), 200 if serving else 503


@bp.route("/", defaults={"path": ""}, methods=["GET", "HEAD"])
@bp.route("/<path:path>", methods=["GET", "HEAD"])
def page(path):
    if g.get("bad_bearer"):
        return ask_to_log_in()
    norm = normalize_path("/" + path)
    section = section_of_url(norm or "/" + path)
    decision = page_decision(g.identity, section)
    if decision != SERVE:
        return ask_to_log_in() if decision == LOGIN else locked(section)
    if norm is None:
        return not_found()
    file, redirect_to = current_edition().lookup(norm)
    if redirect_to:
        resp = Response(status=301)
        resp.headers["Location"] = redirect_to + (f"?{request.query_string.decode('latin-1')}"
                                                  if request.query_string else "")
        return resp
    if file is None:
        return not_found()
    st = os.stat(file)
    if g.identity is not None:
        current_gate().usage.page(g.identity.org_id, norm)
    resp = send_file(file, conditional=True, etag=etag(st).strip('"'), max_age=None)
    for name, value in file_headers(file, st, norm, production=not current_gate().cfg.local):
        if name not in ("Content-Length", "ETag", "Last-Modified"):  # send_file's own (ranges)
            resp.headers[name] = value
    return resp


@bp.app_errorhandler(404)
def not_found(_error=None) -> Response:
    page404 = current_edition().files.get("404.html")
    resp = Response(page404.read_bytes() if page404 else b"Not found", status=404,
                    mimetype="text/html")
    cache_headers(resp.headers, "/404.html")
    return resp


@bp.app_errorhandler(413)
def too_large(_error):
    return render_in_site("Слишком большой запрос", "message.html", status=413,
                          heading="Слишком большой запрос",
                          message="Размер отправленных данных превышает допустимый. "
                                  "Уменьшите вложения и попробуйте ещё раз.")


@bp.app_errorhandler(405)
def method_not_allowed(error):
    resp = error.get_response()
    resp.set_data("Метод не поддерживается для этого адреса.".encode())
    resp.mimetype = "text/plain"
    return resp


@bp.app_errorhandler(500)
def server_error(_error):
    return Response(f"Внутренняя ошибка. Попробуйте позже или обратитесь в поддержку: "
                    f"{contacts.IN_ONE_LINE}", status=500, mimetype="text/plain")
