"""One decision per fact, asked by every path: the fast path and the Flask application answer a
request alike (who the visitor is, whether the edge ticket is current, which file with which
headers), and every route of the application is an address the fast path and nginx leave to
the gate (gate.routes)."""

import re
import time

import pytest

from gate import edge_config, edge_tickets, routes, tokens
from gate.access import edition_for
from gate.routes import owned_by_gate
from gate.web.visitor import identify, ticket_current
from tests.helpers.http import login
from tests.helpers.project import marker

BASIC = {"Authorization": "Basic dXNlcjpwYXNz"}  # not ours: Flask answers, the cookie decides


def test_every_route_of_the_application_is_an_address_of_the_gate(app):
    rules = [r for r in app.url_map.iter_rules() if r.endpoint not in ("pages.page", "static")]
    assert len(rules) >= 10
    for rule in rules:
        path = re.sub(r"<[^>]+>", "1", rule.rule)
        assert owned_by_gate(path), f"{rule.rule} is not in gate.routes"


def test_nginx_sends_every_gate_address_to_the_gate():
    text = edge_config.gate_locations()
    for path in (*routes.EXACT, *routes.INTERNAL_EXACT):
        assert f"location = {path} {{ proxy_pass http://kb_gate; }}" in text
    for path in (*routes.PREFIXES, *routes.INTERNAL_PREFIXES):
        assert f"location ^~ {path} {{ proxy_pass http://kb_gate; }}" in text


@pytest.mark.parametrize("path, owned", [
    ("/login", True), ("/logout", True), ("/healthz", True), ("/account/", True),
    ("/support/new", True), ("/support/12/", True), ("/api/search", True),
    ("/password/reset/x", True), ("/403.html", True), ("/manifest.json", True),
    ("/editions/all/index.html", True),
    ("/", False), ("/launches/", False), ("/loginx", False), ("/assets/kb.css", False),
    ("/support", False),  # no such route: an edition's 404 (or Flask's redirect to /support/)
])
def test_gate_addresses(path, owned):
    assert owned_by_gate(path) is owned


@pytest.mark.parametrize("url", [
    "/functionality/{slug}/", "/", "/sitemap.xml", "/sitemap.xml.gz",
    "/search/kb_index.json", "/assets/kb.css",
])
def test_the_fast_path_and_flask_send_the_same_file_with_the_same_headers(app, client, url):
    login(client, "start@client.example")
    url = url.format(slug=marker("functionality", "slug"))
    fast, slow = client.get(url), client.get(url, headers=BASIC)
    assert fast.status_code == slow.status_code == 200
    assert fast.get_data() == slow.get_data()
    for name in ("Content-Type", "Content-Length", "ETag", "Last-Modified", "Cache-Control",
                 "Vary", "X-Content-Type-Options", "X-Frame-Options", "Content-Security-Policy",
                 "Referrer-Policy"):
        assert fast.headers.get(name) == slow.headers.get(name), name
    assert client.get(url, headers={"If-None-Match": fast.headers["ETag"]}).status_code == 304
    assert client.get(url, headers={**BASIC, "If-None-Match": fast.headers["ETag"]}).status_code == 304


def _session(app, email):
    """A valid session cookie value for a person (as after a login)."""
    c = app.test_client()
    login(c, email)
    return c.get_cookie("kb_session").value


@pytest.mark.parametrize("case, expected", [
    ("none", "public"), ("session", "all"), ("expired", "renew"), ("garbage", "refused"),
    ("api-token-in-cookie", "refused"), ("disabled", "refused"),
])
def test_who_the_visitor_is(app, case, expected):
    gate = app.extensions["gate"]
    cookies = {}
    if case == "session":
        cookies["kb_session"] = _session(app, "staff@vendor.example")
    elif case == "expired":
        claims = gate.identities.cache.get(_session(app, "staff@vendor.example"))
        cookies["kb_session"] = tokens.issue(gate.key, sub=int(claims["sub"]), org=claims["org"],
                                             tariff=claims["tariff"], sections=claims["sections"],
                                             typ="session", ttl=1, sid=claims["sid"],
                                             now=time.time() - 100)
    elif case == "garbage":
        cookies["kb_session"] = "a.b.c"
    elif case == "api-token-in-cookie":
        cookies["kb_session"] = tokens.issue(gate.key, sub=1, org="x", tariff="start",
                                             sections=[], typ="api", ttl=600)
    elif case == "disabled":
        cookies["kb_session"] = tokens.issue(gate.key, sub=999_999, org="x", tariff="start",
                                             sections=[], typ="session", ttl=600, sid="s")
    visit = identify(gate.identities, "", cookies)
    got = ("renew" if visit.expired else "refused" if visit.refused
           else edition_for(visit.identity))
    assert got == expected
    # the application and the fast path act on it alike
    client = app.test_client()
    for name, value in cookies.items():
        client.set_cookie(name, value)
    page = f"/launches/{marker('launches', 'slug')}/"
    r = client.get(page, headers={"Accept": "text/html"})
    assert r.status_code == {"public": 303, "all": 200, "renew": 200, "refused": 303}[expected]
    if expected in ("renew", "refused"):
        assert "kb_session=" in r.headers.get("Set-Cookie", "")  # renewed or cleared


def test_edge_ticket_is_current_only_for_the_visitors_edition_now(app):
    gate = app.extensions["gate"]
    secret = "ab" * 32
    ident = gate.identities.from_claims(gate.identities.cache.get(
        _session(app, "func@client.example")))
    now = time.time()
    good = edge_tickets.issue(secret, "functionality", int(now) + 30, ident.org_id)
    assert ticket_current(secret, good, ident, now)
    # another organisation's ticket (nginx would count the pages for it): replaced
    assert not ticket_current(secret, edge_tickets.issue(secret, "functionality", int(now) + 30,
                                                         ident.org_id + 1), ident, now)
    assert not ticket_current(secret, edge_tickets.issue(secret, "all", int(now) + 30), ident, now)
    assert not ticket_current(secret, good, ident, now + 31)
    assert not ticket_current(secret, None, ident, now)
    assert ticket_current(secret, None, None, now)       # anonymous: none needed
    assert not ticket_current(secret, good, None, now)   # anonymous with a ticket: clear it
