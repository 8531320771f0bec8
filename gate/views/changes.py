"""What changed, for readers: GET /feed.xml, the feed key and digest settings in /account/, and
the digest's unsubscribe link.

/feed.xml is the Atom feed `gate build` wrote into each edition (gate.change_notes): the visitor's
own edition, decided as for pages (gate.access.edition_for), by the session cookie or a Bearer
token, or by `?key=` a personal feed key for feed readers, which stands for its owner as their
account is now (revoked, disabled or unknown: 404). Anonymous visitors get the public edition's.
The unsubscribe link is signed and works without logging in: GET shows a button, POST
(also RFC 8058 one-click from a mail client, which has no CSRF token) unsubscribes.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, request, send_file

from gate import change_notes, digest
from gate.access import edition_for
from gate.limits import Windows
from gate.web.csrf import exempt
from gate.web.responses import ask_to_log_in, login_required, message, private, render_in_site, \
    see_other
from gate.web.runtime import current_gate

bp = Blueprint("changes", __name__)
ATOM = "application/atom+xml"
# (events, seconds) of feed-key look-ups per client address, and per key owner
ADDRESS_LIMIT = (60, 600)
OWNER_LIMIT = (120, 600)


def feed_secret() -> bytes:
    return change_notes.feed_secret(current_gate().key)


def digest_secret() -> bytes:
    return digest.secret(current_gate().key)


def _limits() -> Windows:
    return current_app.extensions.setdefault(
        "kb_feed_limits", Windows(horizon=max(ADDRESS_LIMIT[1], OWNER_LIMIT[1])))


def _too_many(key, limit) -> Response | None:
    wait = _limits().hit(key, *limit)
    if not wait:
        return None
    resp = private(Response(f"Слишком много запросов ленты. Повторите через {wait} с.\n",
                            status=429, mimetype="text/plain"))
    resp.headers["Retry-After"] = str(wait)
    return resp


def _no_feed() -> Response:
    return private(Response("Лента не найдена: ссылка неверна или отозвана. Новую ссылку можно "
                            "получить в профиле базы знаний.\n", status=404, mimetype="text/plain"))


@bp.route("/feed.xml", methods=["GET", "HEAD"])
def feed():
    if g.get("bad_bearer"):
        return ask_to_log_in()
    gate = current_gate()
    identity = g.get("identity")
    key = request.args.get("key")
    if key is not None:
        refused = _too_many(("addr", request.remote_addr or ""), ADDRESS_LIMIT)
        if refused:
            return refused
        owner = change_notes.key_owner(gate.engine, feed_secret(), key[:100])
        if owner is None:
            return _no_feed()
        refused = _too_many(("owner", owner), OWNER_LIMIT)
        if refused:
            return refused
        identity = gate.identities.person(owner)
        if identity is None:
            return _no_feed()
    edition = gate.current_editions()[edition_for(identity)]
    file = edition.files.get(change_notes.FEED)
    if file is None:
        return _no_feed()
    resp = send_file(file, mimetype=ATOM, conditional=True, max_age=None)
    resp.headers["Content-Type"] = ATOM + "; charset=utf-8"
    resp.headers["Cache-Control"] = "private, no-cache"
    resp.vary.add("Cookie")
    return resp


# --- /account/: the feed key and the digest -----------------------------------------------------

@bp.app_context_processor
def _account_settings():
    return {"reader_settings": reader_settings}


def reader_settings() -> dict:
    """For the profile page: the personal feed address (or None) and the digest's state."""
    identity = g.get("identity")
    if identity is None:
        return {}
    gate = current_gate()
    base = gate.cfg.base_url or request.host_url.rstrip("/")
    with gate.engine.connect() as conn:
        key = change_notes.active_key(conn, feed_secret(), identity.user_id)
        on = digest.subscribed(conn, identity.user_id)
    return {"feed_url": f"{base}/feed.xml?key={key}" if key else None, "digest": on,
            "digest_at": gate.cfg.digest_at}


@bp.route("/account/feed-key", methods=["POST"])
@login_required
def feed_key():
    action = request.form.get("action")
    if action not in ("new", "revoke"):
        return message("Неизвестное действие", "Обновите страницу профиля и попробуйте ещё раз.",
                       status=400, link=("/account/", "Профиль"))
    gate = current_gate()
    with gate.engine.begin() as conn:
        if action == "new":
            change_notes.new_key(conn, feed_secret(), g.identity.user_id)
        else:
            change_notes.revoke_keys(conn, g.identity.user_id)
    return see_other("/account/#changes")


@bp.route("/account/digest", methods=["POST"])
@login_required
def digest_setting():
    on = request.form.get("digest") == "on"
    with current_gate().engine.begin() as conn:
        digest.subscribe(conn, g.identity.user_id, on)
    return see_other("/account/#changes")


@bp.route("/account/unsubscribe/<token>", methods=["GET", "POST"])
@exempt  # one-click from a mail client (RFC 8058): the signed token is the proof
def unsubscribe(token):
    user_id = digest.token_user(digest_secret(), token[:100])
    if user_id is None:
        return message("Ссылка недействительна", "Эта ссылка для отписки неверна. Отписаться "
                       "можно и в профиле базы знаний.", status=404, link=("/account/", "Профиль"))
    if request.method == "GET":
        return render_in_site("Отписка от рассылки", "unsubscribe.html", token=token)
    with current_gate().engine.begin() as conn:
        digest.subscribe(conn, user_id, False)
    return message("Вы отписаны", "Еженедельная рассылка об изменениях больше не будет приходить. "
                   "Включить её снова можно в профиле.", link=("/account/", "Профиль"))
