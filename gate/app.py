"""The gate's application factory."""

from __future__ import annotations

import hmac
import logging
import time
from dataclasses import dataclass

from flask import Flask, g, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from gate import config as config_mod
from gate import edge_tickets, tokens
from gate.access import edition_for
from gate.build import MANIFEST, check_fresh, tariffs_digest
from gate.fastpath import FastPages
from gate.identities import SESSION_COOKIE, SESSION_LIFETIME, Identities
from gate.instance import open_database, signing_key
from gate.security import security_headers
from gate.site import load_site
from gate.editions import edition_name
from gate.tariffs import load_tariffs
from gate.throttle import Throttle

SITE_CHECK_INTERVAL = 2.0  # seconds between looks at site/manifest.json for a rebuilt site


@dataclass
class Gate:
    cfg: object
    engine: object
    key: bytes
    tariffs: dict
    manifest: dict
    editions: dict
    identities: Identities
    throttle: Throttle
    ticket_secret: str = ""  # edge mode: the secret of the edition tickets nginx checks
    site_version: int = 0
    _manifest_stamp: tuple = ()
    _next_check: float = 0.0

    def current_editions(self) -> dict:
        """The editions, reloaded when `gate build` has replaced site/ (checked every 2 s).

        A site built for other tariffs than the running gate's is not taken: the gate keeps
        serving what it has (and says so in its log) until it is restarted.
        """
        now = time.monotonic()
        if now < self._next_check:
            return self.editions
        self._next_check = now + SITE_CHECK_INTERVAL
        try:
            st = (self.cfg.site_dir / MANIFEST).stat()
        except OSError:
            return self.editions  # in the middle of the swap: keep the old editions
        stamp = (st.st_mtime_ns, st.st_ino)
        if stamp == self._manifest_stamp:
            return self.editions
        try:
            manifest, editions = load_site(self.cfg.site_dir)
        except (OSError, ValueError, KeyError):
            return self.editions
        self._manifest_stamp = stamp
        if manifest.get("tariffs_digest") != tariffs_digest(self.tariffs):
            logging.getLogger("gate").warning("site/ was rebuilt for other tariffs: restart the gate")
            return self.editions
        self.manifest, self.editions = manifest, editions
        self.site_version += 1
        return editions


def create_app(cfg=None, check_site: bool = True) -> Flask:
    """Builds the gate from a Config (default: the environment); refuses stale or missing editions."""
    cfg = cfg or config_mod.from_env()
    tariffs = load_tariffs(cfg.tariffs_path)
    if check_site:
        check_fresh(cfg.root, tariffs)
    manifest, editions = load_site(cfg.site_dir)
    engine = open_database(cfg)
    key = signing_key(cfg)

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=hmac.new(key, b"flask-session", "sha256").digest(),
        SESSION_COOKIE_NAME="kb_form",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=not cfg.local,
        WTF_CSRF_TIME_LIMIT=None,  # valid as long as the form's cookie; a form left open overnight works
        WTF_CSRF_SSL_STRICT=False,  # Origin/Referer are checked by gate.security for every form
        MAX_CONTENT_LENGTH=10 * 1024 * 1024,  # the form's 7 MB of attachments plus text
    )
    gate = Gate(cfg, engine, key, tariffs, manifest, editions,
                Identities(engine, key, tariffs, cfg.timezone), Throttle(),
                ticket_secret=edge_tickets.ticket_secret(key) if cfg.edge else "")
    gate.current_editions()  # remembers which manifest these editions came from
    app.extensions["gate"] = gate
    app.before_request(_identify)  # first: every later check knows the visitor
    app.wsgi_app = FastPages(app.wsgi_app, gate)  # plain page requests never enter Flask
    if cfg.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=cfg.trusted_proxies,
                                x_proto=cfg.trusted_proxies, x_host=cfg.trusted_proxies)

    from gate import auth, pages, search_api, support
    app.register_blueprint(auth.bp)
    app.register_blueprint(support.bp)
    app.register_blueprint(search_api.bp)  # GET /api/search: the visitor's edition only
    search_api.warm_up(editions.values())
    app.register_blueprint(pages.bp)  # last: its catch-all route serves the editions
    csrf = CSRFProtect(app)  # after the Origin check registered by auth
    csrf.exempt(auth.logout)
    app.after_request(_finish)
    app.register_error_handler(CSRFError, pages.csrf_failed)
    app.register_error_handler(413, pages.too_large)
    app.register_error_handler(404, pages.not_found)
    app.register_error_handler(405, pages.method_not_allowed)
    app.register_error_handler(500, pages.server_error)
    return app


def current_gate() -> Gate:
    from flask import current_app
    return current_app.extensions["gate"]


def _identify():
    """Sets g.identity from the Bearer token or the session cookie, renewing an expired cookie."""
    gate = current_gate()
    g.identity, g.new_token, g.clear_cookie, g.bad_bearer = None, None, False, False
    g.session_secret, g.cookie_claims = None, None
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    g.bearer = scheme.lower() == "bearer"
    if g.bearer:  # other schemes (e.g. a staging proxy's Basic) are not ours
        try:
            claims = gate.identities.cache.get(credentials.strip())
            g.identity = gate.identities.from_claims(claims)
        except tokens.TokenError:
            g.identity = None
        g.bad_bearer = g.identity is None
        return
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return
    try:
        claims = gate.identities.session_claims(token)
        g.identity = gate.identities.from_claims(claims)
    except tokens.ExpiredToken as exc:
        claims = exc.claims
        renewed = gate.identities.renew(claims)
        if renewed:
            g.identity, g.new_token = renewed
    except tokens.TokenError:
        claims = {}
    if g.identity is None:
        g.clear_cookie = True
    else:
        g.session_secret = claims.get("sid")  # to issue this browser a new token (password change)
        g.cookie_claims = claims


def cookie_flags(cfg, path: str = "/") -> dict:
    """How every cookie of the gate is set: HttpOnly, SameSite=Lax, Secure in production."""
    return dict(path=path, secure=not cfg.local, httponly=True, samesite="Lax")


def set_session_cookie(response, token: str | None):
    flags = cookie_flags(current_gate().cfg)
    if token is None:
        response.delete_cookie(SESSION_COOKIE, **flags)
    else:
        response.set_cookie(SESSION_COOKIE, token, max_age=SESSION_LIFETIME, **flags)


def _edge_ticket(gate: Gate, response):
    """Edge mode: the edition ticket follows the session token (issued, renewed and cleared
    with it, never valid longer than it); a request with a Bearer token leaves the cookies
    alone."""
    if getattr(g, "bearer", False):
        return
    have = request.cookies.get(edge_tickets.COOKIE)
    new_token = getattr(g, "new_token", None)
    if new_token:
        claims = gate.identities.cache.get(new_token)
        edition = edition_name(claims["sections"])
    elif getattr(g, "cookie_claims", None) and not getattr(g, "clear_cookie", False):
        claims = g.cookie_claims
        edition = edition_for(g.identity)  # the account as it is now, not as the token says
        if edge_tickets.edition_of(gate.ticket_secret, have, time.time()) == edition:
            return
    else:
        if have is not None or getattr(g, "clear_cookie", False):
            response.delete_cookie(edge_tickets.COOKIE, **cookie_flags(gate.cfg))
        return
    exp = min(claims["exp"], int(time.time()) + tokens.SESSION_TTL)
    response.set_cookie(edge_tickets.COOKIE, edge_tickets.issue(gate.ticket_secret, edition, exp),
                        max_age=SESSION_LIFETIME, **cookie_flags(gate.cfg))


def _finish(response):
    gate = current_gate()
    if getattr(g, "new_token", None):
        set_session_cookie(response, g.new_token)
    elif getattr(g, "clear_cookie", False):
        set_session_cookie(response, None)
    if gate.ticket_secret:
        _edge_ticket(gate, response)
    for cookie in getattr(g, "extra_cookies", ()):  # after the session's own cookies
        response.set_cookie(**cookie)
    security_headers(response.headers, production=not gate.cfg.local)
    if "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "private, no-store"
        response.vary.add("Cookie")
    return response
