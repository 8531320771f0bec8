"""POST /api/feedback (the "was this helpful" of every article) and the authors' report.

Votes come from prebuilt pages (overrides/assets/javascripts/kb-feedback.js), which cannot
carry a per-person CSRF token: the Origin check of gate.web.csrf alone protects them. A vote is
taken only for an article of the visitor's own edition; any other page, locked or missing,
gets the same 404. One vote per voter and page, the last one counts: a logged-in person votes
as themselves; an anonymous visitor (public pages only, since nothing else is theirs to see)
votes as their browser, by a random `kb_voter` cookie set with the first vote (no tracking: it
is sent nowhere else and says nothing but "the same browser"). Rate-limited per address and
per voter (429 with Retry-After).
"""

from __future__ import annotations

import secrets

from flask import Blueprint, Response, current_app, g, jsonify, request

from gate import feedback as store
from gate.access import SERVE, edition_for, page_decision
from gate.limits import Windows
from gate.sections import section_of_url
from gate.site import normalize_path
from gate.web.csrf import exempt
from gate.web.responses import ask_to_log_in, private, render_in_site, staff_required
from gate.web.runtime import current_edition, current_gate
from gate.web.visitor import cookie_flags

bp = Blueprint("feedback", __name__)
VOTER_COOKIE = "kb_voter"
VOTER_LIFETIME = 365 * 24 * 3600
# (events, seconds): per client address, and per voter (person or browser)
ADDRESS_LIMIT = (60, 600)
VOTER_LIMIT = (30, 600)
NOT_FOUND = "Статья не найдена."


def _limits() -> Windows:
    limits = current_app.extensions.get("kb_feedback_limits")
    if limits is None:
        limits = current_app.extensions.setdefault(
            "kb_feedback_limits", Windows(horizon=max(ADDRESS_LIMIT[1], VOTER_LIMIT[1])))
    return limits


def _error(status: int, text: str) -> Response:
    resp = jsonify(error=text)
    resp.status_code = status
    return private(resp)


def article_visible(page: str) -> bool:
    """Whether `page` is an article of the visitor's own edition (its canonical address)."""
    norm = normalize_path(page)
    if norm != page or not norm.endswith("/"):
        return False
    if page_decision(g.get("identity"), section_of_url(norm)) != SERVE:
        return False
    file, redirect = current_edition().lookup(norm)
    return file is not None and redirect is None


def voters() -> list[str]:
    """Who the visitor votes as: the person, else the browser's cookie (if it has one)."""
    identity = g.get("identity")
    found = [store.person_voter(identity.user_id)] if identity else []
    cookie = request.cookies.get(VOTER_COOKIE)
    if cookie and len(cookie) <= 64:
        found.append(store.browser_voter(cookie))
    return found


@bp.route("/api/feedback", methods=["POST"])
@exempt  # from prebuilt pages: the Origin check alone (gate.web.csrf)
def vote():
    if g.get("bad_bearer"):
        return ask_to_log_in()
    identity = g.get("identity")
    cookie = request.cookies.get(VOTER_COOKIE)
    if not cookie or len(cookie) > 64:
        cookie = None
    voter = (store.person_voter(identity.user_id) if identity
             else store.browser_voter(cookie) if cookie else None)
    keys = [(("addr", request.remote_addr or ""), ADDRESS_LIMIT)]
    if voter:
        keys.append((("voter", voter), VOTER_LIMIT))
    limits = _limits()
    with limits.lock:
        wait = max(limits.wait(key, *limit) for key, limit in keys)
        if not wait:
            limits.add(*(key for key, _ in keys))
    if wait:
        resp = _error(429, f"Слишком много отзывов подряд. Повторите через {wait} с.")
        resp.headers["Retry-After"] = str(wait)
        return resp
    try:
        data = store.read_body(request.content_type, request.get_data(cache=False))
        vote = store.check(data)
    except store.BadFeedback as exc:
        return _error(400, str(exc))
    if not article_visible(vote.page):
        return _error(404, NOT_FOUND)
    new_cookie = None
    if voter is None:
        new_cookie = secrets.token_urlsafe(24)
        voter = store.browser_voter(new_cookie)
    store.store(current_gate().engine, vote, voter, identity.user_id if identity else None,
                edition_for(identity))
    if new_cookie:
        g.extra_cookies = [dict(key=VOTER_COOKIE, value=new_cookie, max_age=VOTER_LIFETIME,
                                **cookie_flags(current_gate().cfg))]
    return private(Response(status=204))


@bp.route("/api/feedback/report")
@staff_required
def report_page():
    gate = current_gate()
    return render_in_site("Отзывы о статьях", "feedback_report.html", **store.report_pages(
        gate.engine, gate.cfg.site_dir, store.report_days(request.args.get("days", 30))))
