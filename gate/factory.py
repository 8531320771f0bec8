"""The gate's application factory: it only wires the parts together."""

from __future__ import annotations

import hmac

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from gate import config as config_mod
from gate import audit, edge_tickets, oidc, usage, workdays
from gate.build import check_fresh
from gate.health import StorageProbe
from gate.identities import Identities
from gate.instance import open_counters, open_database, signing_key
from gate.shared_limits import SharedWindows
from gate.site import load_site
from gate.tariffs import load_tariffs
from gate.throttle import ADDRESS_WINDOW, Throttle
from gate.views import (auth, changes, feedback, invite, org_people, pages, search,
                        second_factor, sso, staff, support)
from gate.views import oidc as oidc_views
from gate.web import csrf, responses, storage, visitor
from gate.web.fastpath import FastPages
from gate.web.runtime import Gate


def create_app(cfg=None, check_site: bool = True) -> Flask:
    """Builds the gate from a Config (default: the environment); refuses stale or missing editions."""
    cfg = cfg or config_mod.from_env()
    tariffs = load_tariffs(cfg.tariffs_path)
    if check_site:
        check_fresh(cfg.root, tariffs)
    manifest, editions = load_site(cfg.site_dir)
    engine = open_database(cfg)
    counters = open_counters(cfg)  # limits shared by every process and host on this database
    key = signing_key(cfg)

    app = Flask("gate")
    app.config.update(
        SECRET_KEY=hmac.new(key, b"flask-session", "sha256").digest(),
        SESSION_COOKIE_NAME="kb_form",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=not cfg.local,
        WTF_CSRF_TIME_LIMIT=None,  # valid as long as the form's cookie; a form left open overnight works
        WTF_CSRF_SSL_STRICT=False,  # Origin/Referer are checked by gate.web.csrf for every form
        MAX_CONTENT_LENGTH=10 * 1024 * 1024,  # the form's 7 MB of attachments plus text
    )
    gate = Gate(cfg, engine, key, tariffs, manifest, editions,
                Identities(engine, key, tariffs, cfg.timezone),
                Throttle(SharedWindows(counters, horizon=ADDRESS_WINDOW)),
                ticket_secret=edge_tickets.ticket_secret(key) if cfg.edge else "",
                counters=counters,
                storage_probe=StorageProbe(engine, cfg.database_url),
                calendar=workdays.load(cfg.root / workdays.FILE),
                refusals=audit.Refusals(engine),
                usage=usage.Counter(cfg.timezone, enabled=cfg.usage))
    gate.current_editions()  # remembers which manifest these editions came from
    app.extensions["gate"] = gate
    app.extensions["oidc"] = oidc.Provider.from_config(cfg)  # staff sign-in, or None

    visitor.init_app(app)    # first: every later check knows the visitor
    app.before_request(staff.guard)  # /staff/: one answer for all but staff, before CSRF and 404
    csrf.init_app(app)       # the Origin check and CSRF tokens of every form
    responses.init_app(app)  # security and cache headers on every answer
    storage.init_app(app)    # a full disk or a database away: 503, never 500
    sso.init_app(app, gate)  # the client portal's keys (none: /sso/jwt answers 404)
    for blueprint in (auth.bp, org_people.bp, second_factor.bp, support.bp, search.bp,
                      feedback.bp, changes.bp, staff.bp, invite.bp, sso.bp, oidc_views.bp,
                      pages.bp):  # pages last: its catch-all
        app.register_blueprint(blueprint)
    search.warm_up(editions.values())

    app.wsgi_app = FastPages(app.wsgi_app, gate)  # plain page requests never enter Flask
    if cfg.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=cfg.trusted_proxies,
                                x_proto=cfg.trusted_proxies, x_host=cfg.trusted_proxies)
    return app
