"""Edge mode with a real nginx (deploy/edge.sh) in front of a real gate: the contract's answers.

nginx checks the edition ticket the gate issues with every session token (gate/edge_tickets.py)
with its built-in secure_link module and serves the editions' files; whatever it cannot decide
goes to the gate. A response made by the gate carries its `Server: kb-gate`
header (nginx passes it through), a file nginx served does not.
"""

from __future__ import annotations

import http.client
import re
import time
from html.parser import HTMLParser
from urllib.parse import quote, urljoin, urlsplit

import jwt
import pytest

from gate import edge_tickets, tokens
from gate.sections import SECTIONS
from gate.security import CONTENT_SECURITY_POLICY
from tests.helpers.http import HTML, request
from tests.helpers.processes import NGINX_MISSING
from tests.helpers.project import forbidden_markers, marker, page_url, without_echoes

pytestmark = pytest.mark.skipif(NGINX_MISSING is not None, reason=NGINX_MISSING or "")


# --- the contract's answers --------------------------------------------------------------------

def test_anonymous_at_a_gated_page_is_sent_to_login_or_gets_401(edge):
    for path in (page_url("launches"), "/launches/", "/claim-desk/no-such-page/"):
        browser = edge.get(path, headers=HTML)
        assert browser.status == 303 and browser.by_gate
        assert browser.headers["Location"] == "/login?next=" + quote(path, safe="")
        script = edge.get(path, headers={"Accept": "application/json"})
        assert script.status == 401 and script.by_gate
        assert marker("launches", "body") not in browser.text + script.text


def test_public_page_is_served_by_nginx_with_the_gates_headers(edge):
    r = edge.get("/", headers=HTML)
    assert r.status == 200 and not r.by_gate
    assert "Публичнаястраница" in r.text and 'href="/login"' in r.text
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert r.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert r.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" in r.headers  # production mode by default
    for text in forbidden_markers(()):
        assert text not in r.text
    health = edge.get("/healthz")
    assert health.status == 200 and health.by_gate


def test_start_user_reads_a_section_page_served_by_nginx(edge):
    cookies = edge.login("start@client.example")
    for section in SECTIONS:
        r = edge.get(page_url(section), headers=HTML, cookies=cookies)
        assert r.status == 200 and not r.by_gate, (section, r)
        assert marker(section, "body") in r.text
        assert 'action="/logout"' in r.text
    account = edge.get("/account/", headers=HTML, cookies=cookies)
    assert account.status == 200 and account.by_gate and "start@client.example" in account.text


def test_solo_func_user_gets_the_locked_page_for_other_sections(edge):
    cookies = edge.login("func@client.example")
    own = edge.get(page_url("functionality"), headers=HTML, cookies=cookies)
    assert own.status == 200 and not own.by_gate
    for path in ("/launches/x/", page_url("launches"), "/launches/", "/maintenance/",
                 page_url("claim-desk")):
        r = edge.get(path, headers=HTML, cookies=cookies)
        assert r.status == 403 and r.by_gate, (path, r)
        section = path.split("/")[1]
        assert f"Раздел «{SECTIONS[section]}» недоступен" in r.text
        assert "/support/new?from=" in r.text
        for text in forbidden_markers(["functionality"]):
            assert text not in without_echoes(r.text)


def test_folder_without_slash_and_missing_pages_go_to_the_gate(edge):
    cookies = edge.login("func@client.example")
    path = page_url("functionality").rstrip("/")
    r = edge.get(path, headers=HTML, cookies=cookies)
    assert r.status == 301 and r.by_gate and r.headers["Location"] == path + "/"
    missing = edge.get("/functionality/no-such-page/", headers=HTML, cookies=cookies)
    assert missing.status == 404 and missing.by_gate
    assert "private" in missing.headers["Cache-Control"]
    for text in forbidden_markers(["functionality"]):
        assert text not in missing.text


def test_expired_session_token_is_renewed_by_the_gate_with_a_new_ticket(edge):
    cookies = edge.login("start@client.example")
    token = cookies["kb_session"]
    claims = jwt.decode(token, edge.key, algorithms=["HS256"], issuer=tokens.ISSUER)
    assert claims["exp"] - claims["iat"] <= 45  # edge mode relies on short-lived tokens
    ticket_exp = int(cookies["kb_edge"].split(".")[0])
    assert ticket_exp == claims["exp"]  # a ticket never outlives its session token
    expired = edge.session_token(token, ttl=10, now=time.time() - 30)
    old_ticket = edge.ticket("all", int(time.time()) - 20)
    for accept in (HTML, {"Accept": "*/*"}):  # a page and a fetch
        for sent in ({"kb_session": expired}, {"kb_session": expired, "kb_edge": old_ticket}):
            r = edge.get(page_url("launches"), headers=accept, cookies=sent)
            assert r.status == 200 and r.by_gate, r
            assert marker("launches", "body") in r.text
            fresh = {name: r.cookie(name) for name in ("kb_session", "kb_edge")}
            assert fresh["kb_session"] and fresh["kb_session"] != expired
            assert jwt.decode(fresh["kb_session"], edge.key, algorithms=["HS256"])["exp"] > time.time()
            assert fresh["kb_edge"] and fresh["kb_edge"].split(".")[1] == "all"
    again = edge.get(page_url("launches"), headers=HTML, cookies=fresh)
    assert again.status == 200 and not again.by_gate


def test_a_session_without_its_ticket_gets_one_from_the_gate(edge):
    cookies = edge.login("func@client.example")
    r = edge.get(page_url("functionality"), headers=HTML,
                 cookies={"kb_session": cookies["kb_session"]})
    assert r.status == 200 and r.by_gate
    ticket = r.cookie("kb_edge")
    assert ticket and ticket.split(".")[1] == "functionality"
    served = edge.get(page_url("functionality"), headers=HTML,
                      cookies={"kb_session": cookies["kb_session"], "kb_edge": ticket})
    assert served.status == 200 and not served.by_gate


def test_forged_or_foreign_tickets_go_to_the_gate(edge):
    cookies = edge.login("func@client.example")
    exp, edition, org, mac = cookies["kb_edge"].split(".")
    mac_changed = ("A" if mac[0] != "A" else "B") + mac[1:]
    other_key = edge_tickets.issue(edge_tickets.ticket_secret(b"k" * 32), "all", int(exp))
    for bad in (f"{exp}.all.{org}.{mac}",                 # another edition, same mac
                f"{int(exp) + 3600}.{edition}.{org}.{mac}",  # a later expiry, same mac
                f"{exp}.{edition}.{org}.{mac_changed}",   # a changed mac
                f"{exp}.all.{int(org) + 1}.{mac}",        # another organisation, same mac
                f"{exp}.all.{mac}",                       # the three parts of before
                other_key,                                # signed with another secret
                f"{exp}.../launches.{org}.{mac}", "garbage", cookies["kb_edge"] + "x", ""):
        sent = {"kb_session": cookies["kb_session"], "kb_edge": bad}
        r = edge.get(page_url("launches"), headers=HTML, cookies=sent)
        assert r.status == 403 and r.by_gate, (bad, r)
        assert marker("launches", "body") not in r.text
        ticket = r.cookie("kb_edge")  # the gate hands out the right one
        assert ticket and ticket.split(".")[1] == "functionality", bad
        alone = edge.get(page_url("launches"), headers=HTML, cookies={"kb_edge": bad})
        assert alone.status == 303 and alone.by_gate, (bad, alone)
        assert alone.cookie("kb_edge") == ""  # cleared: no session goes with it


def test_invalid_tokens_go_to_the_gate(edge):
    token = edge.login("start@client.example")["kb_session"]
    head, payload, sig = token.split(".")
    forged = tokens.issue(b"k" * 32, sub=1, org="x", tariff="start", sections=list(SECTIONS),
                          typ="session", ttl=60, sid="x")
    for bad in (f"{head}.{payload}.{sig[:-2]}AA", forged, "garbage", token + "x"):
        r = edge.get(page_url("launches"), headers=HTML, cookies={"kb_session": bad})
        assert r.status == 303 and r.by_gate, r
        assert marker("launches", "body") not in r.text
        assert not r.cookie("kb_edge")


def test_a_disabled_person_is_locked_out_once_the_ticket_expires(edge):
    cookies = edge.login("revoke@client.example")
    short = edge.session_token(cookies["kb_session"], ttl=2)
    exp = jwt.decode(short, options={"verify_signature": False})["exp"]
    sent = {"kb_session": short, "kb_edge": edge.ticket("all", exp)}
    r = edge.get(page_url("launches"), headers=HTML, cookies=sent)
    assert r.status == 200 and not r.by_gate
    edge.cli("user", "disable", "revoke@client.example")
    time.sleep(max(0.0, exp + 1 - time.time()) + 0.3)  # nginx: valid through second `exp`
    r = edge.get(page_url("launches"), headers=HTML, cookies=sent)
    assert r.status == 303 and r.by_gate, r
    assert r.headers["Location"].startswith("/login?next=")
    assert r.cookie("kb_session") == "" and r.cookie("kb_edge") == ""  # the gate clears both
    assert marker("launches", "body") not in r.text
    fetch = edge.get(page_url("launches"), cookies=sent)
    assert fetch.status == 401


def test_bearer_tokens_are_checked_by_the_gate(edge):
    api = edge.cli("token", "start@client.example", "--ttl", "600").strip().splitlines()[-1]
    r = edge.get(page_url("maintenance"), headers={"Authorization": f"Bearer {api}"})
    assert r.status == 200 and r.by_gate and marker("maintenance", "body") in r.text
    bad = edge.get("/", headers={"Authorization": "Bearer nonsense"})
    assert bad.status == 401 and bad.by_gate
    asset = _fingerprinted_asset(edge)
    assert edge.get(asset, headers={"Authorization": "Bearer nonsense"}).by_gate


PATH_TRICKS = [
    "/launches/../launches/x/",
    "/%2e%2e/launches/",
    "/LAUNCHES/x/",
    "/launches%2Fx/",
    "/editions/all/launches/",
    "/403.html",
    "/manifest.json",
    "/../site/manifest.json",
    "/LAUNCHES/marker-launches-page/",
    "/Launches/marker-launches-page/index.html",
    "/launches%2Fmarker-launches-page/",
    "/launches%2fmarker-launches-page%2findex.html",
    "/functionality/../launches/marker-launches-page/",
    "/functionality/..%2Flaunches/marker-launches-page/",
    "/functionality/%2e%2e/launches/marker-launches-page/",
    "/%6caunches/marker-launches-page/",
    "//launches/marker-launches-page/",
    "/./launches/marker-launches-page/",
    "/assets/../launches/marker-launches-page/",
    "/launches\\marker-launches-page/",
    "/functionality\\..\\launches/marker-launches-page/",
    "/editions/all/launches/marker-launches-page/",
    "/%2e%2e/editions/all/launches/marker-launches-page/",
    "/editions%2Fall%2Flaunches/marker-launches-page/",
    "/%34%303.html",
    "/functionality/../403.html",
    "/launches/marker-launches-page/index.html",
    "/claim-desk/marker-claim-desk-page/",
    "/CLAIM-DESK/marker-claim-desk-page/",
    "/search/search_index.json",
    "/sitemap.xml",
    "/404.html",
]


@pytest.mark.parametrize("who", ["anonymous", "func@client.example"])
def test_path_tricks_never_reach_a_locked_section_or_internal_file(edge, who):
    cookies = None if who == "anonymous" else edge.login(who)
    allowed = [] if who == "anonymous" else ["functionality"]
    for path in PATH_TRICKS:
        for accept in (HTML, {"Accept": "*/*"}):
            r = edge.get(path, headers=accept, cookies=cookies)
            assert r.status < 500, (path, r)
            text = without_echoes(r.text)
            for m in forbidden_markers(allowed):
                assert m not in text, (who, path, r.status, m)
            assert "@@GATE_CONTENT@@" not in r.text, path  # the internal shell
            assert "source_digest" not in r.text, path  # the internal manifest
            if r.status == 200 and path.lower().lstrip("/").startswith(("launches", "claim-desk")):
                pytest.fail(f"{who} got 200 for {path}")


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.links.append(value)


def crawl(edge, cookies, limit=800):
    """Every local address reachable from / (links, scripts, styles, search index, sitemap),
    and the address of every file of the staff edition (a superset of every other edition)."""
    seen, pages = set(), []
    queue = ["/", "/search/search_index.json", "/sitemap.xml", "/404.html", "/no-such-page/"]
    staff = edge.root / "site/editions/all"
    for f in sorted(staff.rglob("*")):
        if f.is_file():
            rel = f.relative_to(staff).as_posix()
            queue.append("/" + rel)
            if rel.endswith("index.html"):
                queue.append("/" + rel[:-len("index.html")])
    while queue and len(seen) < limit:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        r = edge.get(path, headers=HTML, cookies=cookies)
        pages.append((path, r))
        ctype = r.headers.get("Content-Type", "")
        if "html" in ctype or "xml" in ctype:
            found = []
            if "html" in ctype:
                parser = _Links()
                parser.feed(r.text)
                found = parser.links
            found += re.findall(r"<loc>([^<]+)</loc>", r.text)
            for link in found:
                url = urljoin(f"{edge.origin}{path}", link)
                parts = urlsplit(url)
                if parts.scheme not in ("http", "https"):
                    continue
                if parts.netloc not in (f"127.0.0.1:{edge.port}", "127.0.0.1:8000"):
                    continue  # other sites; sitemap addresses use the build's site_url
                target = parts.path + (f"?{parts.query}" if parts.query else "")
                if target not in seen:
                    queue.append(target)
    return pages


@pytest.mark.parametrize("who", ["anonymous", "func@client.example"])
def test_no_leaks_in_anything_reachable(edge, who):
    cookies = None if who == "anonymous" else edge.login(who)
    allowed = [] if who == "anonymous" else ["functionality"]
    pages = crawl(edge, cookies)
    assert len(pages) > 40
    served_by_nginx = 0
    for path, r in pages:
        assert r.status < 500, (path, r)
        text = without_echoes(r.text)
        for m in forbidden_markers(allowed):
            assert m not in text, (who, path, m)
        served_by_nginx += not r.by_gate
    assert served_by_nginx > len(pages) // 2
    if allowed:  # the crawl reached the person's own section
        assert any(marker("functionality", "body") in r.text for _, r in pages)


def _fingerprinted_asset(edge) -> str:
    html = edge.get("/").text
    m = re.search(r'(?:href|src)="([^"]*assets/stylesheets/main\.[0-9a-f]{8,}\.min\.css)"', html)
    assert m, "the page links Material's fingerprinted stylesheet"
    return urljoin("/", m.group(1))


def test_caching_headers(edge):
    start = edge.login("start@client.example")
    for cookies in (None, start):
        page = edge.get("/", headers=HTML, cookies=cookies)
        assert page.status == 200 and not page.by_gate
        assert page.headers["Cache-Control"] == "private, no-cache"
        assert "cookie" in ", ".join(page.headers.get_all("Vary")).lower()
        index = edge.get("/search/search_index.json", cookies=cookies)
        assert index.headers["Cache-Control"] == "private, no-cache"
        asset = edge.get(_fingerprinted_asset(edge), cookies=cookies)
        assert asset.status == 200 and not asset.by_gate
        assert asset.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert asset.headers["X-Content-Type-Options"] == "nosniff"
    section = edge.get(page_url("launches"), headers=HTML, cookies=start)
    assert section.headers["Cache-Control"] == "private, no-cache"
    assert "cookie" in ", ".join(section.headers.get_all("Vary")).lower()
    gz = edge.get("/", headers={**HTML, "Accept-Encoding": "gzip"})
    assert gz.headers.get("Content-Encoding") == "gzip"


def test_logout_goes_to_the_gate_and_clears_the_cookie(edge):
    cookies = edge.login("start@client.example")
    r = edge.get("/logout", method="POST", body="", cookies=cookies,
                 headers={"Origin": edge.origin, "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 303 and r.by_gate
    assert r.cookie("kb_session") == "" and r.cookie("kb_edge") == ""


@pytest.mark.parametrize("method, path, headers, body", [
    ("POST", "/support/new", {"Content-Length": str(40 * 1024 * 1024)}, b"x"),  # 413 by nginx
    ("GET", "/" + "a" * 20000, {}, None),                                       # 414
    ("TRACE", "/", {}, None),
    ("GET", "/login", {}, None),                                               # the gate's answer
])
def test_security_headers_on_nginxs_own_answers_too(edge, method, path, headers, body):
    try:
        r = request(edge.port, path, method=method, headers=headers, body=body)
    except (ConnectionError, http.client.HTTPException):
        pytest.skip("nginx closed the connection before answering")
    assert r.status < 500
    for name in ("X-Content-Type-Options", "X-Frame-Options", "Content-Security-Policy"):
        assert len(r.headers.get_all(name) or []) == 1, (r.status, name, r.headers)


SAME_HEADERS = ("Content-Type", "Content-Length", "ETag", "Last-Modified", "Cache-Control",
                "X-Content-Type-Options", "X-Frame-Options", "Content-Security-Policy",
                "Referrer-Policy", "Strict-Transport-Security")


@pytest.mark.parametrize("path", ["/", page_url("functionality"), "/assets/kb.css",
                                  "/sitemap.xml", "/search/kb_index.json"])
def test_nginx_and_the_gate_send_a_file_with_the_same_headers(edge, path):
    """One decision for a file's headers (gate.site.file_headers, gate.security): nginx serving
    it itself and the gate behind it (its fast path) answer alike, ETag included."""
    cookies = edge.login("start@client.example")
    by_nginx = edge.get(path, cookies=cookies)
    by_gate = request(edge.gate_port, path, cookies=cookies)
    assert by_nginx.status == by_gate.status == 200
    assert not by_nginx.by_gate and by_gate.by_gate
    assert by_nginx.body == by_gate.body
    for name in SAME_HEADERS:
        assert by_nginx.headers.get(name) == by_gate.headers.get(name), name
    assert "cookie" in ", ".join(by_nginx.headers.get_all("Vary") or []).lower()
    assert "cookie" in ", ".join(by_gate.headers.get_all("Vary") or []).lower()
    again = edge.get(path, cookies=cookies, headers={"If-None-Match": by_gate.headers["ETag"]})
    assert again.status == 304 and not again.by_gate


def test_every_address_of_the_gate_is_answered_by_the_gate(edge):
    """nginx's locations come from gate.routes, the list the fast path uses."""
    from gate import routes
    cookies = edge.login("start@client.example")
    paths = [*routes.EXACT, *routes.INTERNAL_EXACT, *(p + "x" for p in routes.PREFIXES),
             *(p + "all/index.html" for p in routes.INTERNAL_PREFIXES)]
    for path in paths:
        r = edge.get(path, cookies=cookies, headers=HTML)
        assert r.by_gate, (path, r)
