"""Attacks on edge mode's edition tickets (kb_edge, checked by nginx's secure_link).

Runs against a real nginx and gate (the `edge` fixture of tests/conftest.py). Every test
asserts what would fail if the weakness it tries existed.
"""

from __future__ import annotations

import gzip
import http.client
import json
import time

import pytest

from tests.helpers.http import HTML, Resp
from tests.helpers.ports import free_port
from tests.helpers.processes import NGINX_MISSING, clean_env, edge_config
from tests.helpers.project import (PASSWORD, forbidden_markers, make_project, marker, page_url,
                                   without_echoes)

pytestmark = pytest.mark.skipif(NGINX_MISSING is not None, reason=NGINX_MISSING or "")

MAX_TICKET_LIFE = 46  # SESSION_TTL (45 s) + nginx's "valid through second exp"


def _raw(port: int, path: str, header_lines: list[tuple[str, str]], method: str = "GET") -> Resp:
    """A request with header lines exactly as given (repeated names, odd spellings)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", f"127.0.0.1:{port}")
        for name, value in header_lines:
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        return Resp(resp.status, resp.headers, resp.read() if method != "HEAD" else b"")
    finally:
        conn.close()


def _no_leak(r: Resp, allowed, where):
    body = r.body
    if r.headers.get("Content-Encoding") == "gzip" or body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    text = without_echoes(body.decode("utf-8", errors="replace"))
    for m in forbidden_markers(allowed):
        assert m not in text, (where, r.status, m)
    for name in ("Location", "Content-Location", "Link"):
        value = without_echoes(r.headers.get(name) or "")
        for m in forbidden_markers(allowed):
            assert m not in value, (where, name, value)


def _ticket_exp(ticket: str) -> int:
    return int(ticket.split(".")[0])


@pytest.fixture(scope="module")
def people(edge):
    """Own organisations and people, so that disabling or downgrading disturbs no other test."""
    edge.cli("org", "add", "Атака Старт", "--tariff", "start")
    edge.cli("org", "add", "Атака Функ", "--tariff", "solo-func")
    edge.cli("org", "add", "Атака Понижение", "--tariff", "start")
    for email, org in (("api@attack.example", "Атака Старт"),
                       ("logout@attack.example", "Атака Старт"),
                       ("func@attack.example", "Атака Функ"),
                       ("down@attack.example", "Атака Понижение")):
        edge.cli("user", "add", email, "--org", org, "--password-stdin", stdin=PASSWORD + "\n")
    return edge


# --- the ticket's lifetime is the only revocation nginx has -------------------------------------

def test_an_api_token_sent_as_the_cookie_never_buys_a_long_lived_ticket(people):
    """`gate token` (typ api, up to 30 days) placed in kb_session once made the gate issue a
    kb_edge ticket with the API token's expiry, which nginx then honoured for 30 days through
    `user disable` and `org end`. The cookie takes session tokens only."""
    edge = people
    api = edge.cli("token", "api@attack.example", "--ttl", str(30 * 24 * 3600)).strip().splitlines()[-1]
    r = edge.get(page_url("launches"), headers=HTML, cookies={"kb_session": api})
    assert r.status == 303 and r.by_gate, r
    assert not r.cookie("kb_edge")
    assert marker("launches", "body") not in r.text
    # as a Bearer token it still works, checked by the gate, and sets no cookie at all
    r = edge.get(page_url("launches"), headers={**HTML, "Authorization": f"Bearer {api}"})
    assert r.status == 200 and r.by_gate and not r.headers.get_all("Set-Cookie")


def test_every_ticket_the_gate_hands_out_lives_at_most_one_session_token(people):
    edge = people
    cookies = edge.login("func@attack.example")
    assert _ticket_exp(cookies["kb_edge"]) <= time.time() + MAX_TICKET_LIFE
    assert cookies["kb_edge"].split(".")[1] == "functionality"
    # a session with no / a foreign / a stale ticket gets a fresh one, never longer-lived
    stale = edge.ticket("all", int(time.time()) - 5)
    for sent in ({"kb_session": cookies["kb_session"]},
                 {"kb_session": cookies["kb_session"], "kb_edge": stale},
                 {"kb_session": edge.session_token(cookies["kb_session"], ttl=1,
                                                   now=time.time() - 10)}):
        r = edge.get(page_url("functionality"), headers=HTML, cookies=sent)
        assert r.status == 200 and r.by_gate, r
        t = r.cookie("kb_edge")
        assert t and t.split(".")[1] == "functionality"
        assert _ticket_exp(t) <= time.time() + MAX_TICKET_LIFE


def test_logout_then_the_copied_ticket_dies_with_its_token(people):
    """The contract's 60 s for a copy after logout: the ticket alone must not outlive
    the session token it came with (measured: exp - logout time)."""
    edge = people
    cookies = edge.login("logout@attack.example")
    r = edge.get(page_url("launches"), headers=HTML, cookies={"kb_edge": cookies["kb_edge"]})
    assert r.status == 200 and not r.by_gate  # the ticket alone opens the edition in nginx
    out = edge.get("/logout", method="POST", body="", cookies=cookies,
                   headers={"Origin": edge.origin,
                            "Content-Type": "application/x-www-form-urlencoded"})
    assert out.status == 303 and out.cookie("kb_edge") == ""
    logged_out = time.time()
    assert _ticket_exp(cookies["kb_edge"]) + 1 - logged_out <= 60
    # the session cookie itself is refused at once (also when nginx would still serve the page)
    r = edge.get("/account/", headers=HTML, cookies=cookies)
    assert r.status == 303 and r.by_gate


def test_tariff_downgrade_reaches_nginx_within_one_token_life(people):
    edge = people
    cookies = edge.login("down@attack.example")
    assert cookies["kb_edge"].split(".")[1] == "all"
    # until it expires, the old ticket is all nginx knows: that is the whole revocation window
    assert _ticket_exp(cookies["kb_edge"]) + 1 - time.time() <= 60
    edge.cli("org", "set", "Атака Понижение", "--tariff", "solo-func")
    # renewal (expired token) reads the database: 403 and a ticket for the new edition
    expired = edge.session_token(cookies["kb_session"], ttl=1, now=time.time() - 10)
    r = edge.get(page_url("launches"), headers=HTML, cookies={"kb_session": expired})
    assert r.status == 403 and r.by_gate, r
    assert marker("launches", "body") not in r.text
    fresh = r.cookie("kb_edge")
    assert fresh.split(".")[1] == "functionality"
    assert _ticket_exp(fresh) <= time.time() + MAX_TICKET_LIFE
    r = edge.get(page_url("launches"), headers=HTML,
                 cookies={"kb_session": r.cookie("kb_session"), "kb_edge": fresh})
    assert r.status == 403 and marker("launches", "body") not in r.text


# --- tickets the gate would never issue -------------------------------------------------------

@pytest.mark.parametrize("edition", ["public", "gate", "none", "nope", "launches", "all-x",
                                     "editions", "launches+claim-desk"])
def test_tickets_for_odd_or_missing_editions_open_nothing_more(edge, edition):
    exp = int(time.time()) + 30
    ticket = edge.ticket(edition, exp)
    func = edge.login("func@client.example")
    for cookies, allowed in (({"kb_edge": ticket}, []),
                             ({"kb_session": func["kb_session"], "kb_edge": ticket},
                              ["functionality"])):
        for path in ("/", page_url("launches"), "/launches/", "/search/search_index.json",
                     "/sitemap.xml", "/403.html", "/nope/", "/functionality/"):
            r = edge.get(path, headers=HTML, cookies=cookies)
            assert r.status < 500, (edition, path, r)
            _no_leak(r, allowed, (edition, path))
            if path.startswith("/launches"):  # no edition a ticket can name opens it to nginx
                assert r.status != 200 and r.by_gate, (edition, path, r)
            assert "@@GATE_CONTENT@@" not in r.text


# --- cookie parsing: nginx's $cookie_* versus Werkzeug ---------------------------------------

def test_cookie_spellings_never_open_more_than_the_valid_ticket_does(edge):
    func = edge.login("func@client.example")
    start = edge.login("start@client.example")
    expired_all = edge.ticket("all", int(time.time()) - 1)
    s, t = func["kb_session"], func["kb_edge"]
    variants = [
        [("Cookie", f"KB_EDGE={start['kb_edge']}")],                     # nginx: case-insensitive
        [("Cookie", f"kb_session={s}; kb_edge={expired_all}; kb_edge={t}")],
        [("Cookie", f"kb_session={s}; kb_edge={t}; kb_edge={expired_all}")],
        [("Cookie", f"kb_session={s}"), ("Cookie", f"kb_edge={expired_all}")],
        [("Cookie", f"kb_session={s}, kb_edge={expired_all}")],
        [("Cookie", f'kb_session={s}; kb_edge="{t}"')],
        [("Cookie", f"kb_session={s}; kb_edge = {t}")],
        [("Cookie", f"kb_session={s};kb_edge={t}")],
        [("Cookie", f"kb_session={s};\tkb_edge={expired_all}")],
        [("Cookie", f"kb_session={s}; kb_edge={t} ")],
        [("Cookie", f"kb_session={s}; kb_edge={t}%00")],
        [("Cookie", f"x=1, kb_edge={expired_all}; kb_session={s}")],
        [("Cookie", f"kb_session=; kb_edge={expired_all}")],
        [("Cookie", f"kb_session={s}; kb_session={start['kb_session']}; kb_edge={t}")],
    ]
    for i, lines in enumerate(variants):
        for path in (page_url("launches"), page_url("maintenance"), "/claim-desk/"):
            r = _raw(edge.port, path, [("Accept", HTML["Accept"]), *lines])
            assert r.status < 500, (i, lines, r)
            if i == 0:
                continue  # start's own valid ticket, only spelled in capitals: start may read it
            assert r.status != 200 or r.by_gate, (i, path, r)  # never nginx with a foreign edition
            if r.status == 200:  # the gate decided for whoever it recognised
                assert "kb_session=" + start["kb_session"] in lines[0][1], (i, path)
            else:
                _no_leak(r, ["functionality"], (i, path))


# --- paths ----------------------------------------------------------------------------------

EXTRA_PATHS = [
    "/launches", "/launches./marker-launches-page/", "/launches%20/marker-launches-page/",
    "/launches;x/marker-launches-page/", "/functionality/..;/launches/marker-launches-page/",
    "/launches%00/marker-launches-page/", "/%00launches/", "/launches/marker-launches-page",
    "/launches/marker-launches-page/index.html.", "/launches/marker-launches-page/INDEX.html",
    "/launches/" + "a" * 3000 + "/", "/" + "../" * 50 + "launches/marker-launches-page/",
    "/403.html/", "/403.html.", "/403.HTML", "/403.html%20", "/403.html?x=1", "/403.html#x",
    "/./403.html", "//403.html", "/%2F403.html", "/manifest.json/", "/Manifest.json",
    "/editions", "/EDITIONS/all/launches/", "/editions./all/", "/%65ditions/all/",
    "/sitemap.xml.gz", "/search/kb_index.json", "/search/search_index.json",
    "/assets/javascripts/../../launches/marker-launches-page/index.html",
    "/assets/stylesheets/x.0123456789ab.min.css/../../../launches/",
    "/functionality/%2e%2e%2flaunches/marker-launches-page/",
    "/functionality/%252e%252e/launches/marker-launches-page/",
    "/%D0%B0launches/", "/launches%E2%80%8B/marker-launches-page/", "/launches%C2%A0/",
]


@pytest.mark.parametrize("who", ["anonymous", "func@client.example"])
def test_more_path_tricks(edge, who):
    cookies = None if who == "anonymous" else edge.login(who)
    allowed = [] if who == "anonymous" else ["functionality"]
    for path in EXTRA_PATHS:
        for method in ("GET", "HEAD"):
            try:
                r = edge.get(path, method=method, headers=HTML, cookies=cookies)
            except (ConnectionError, http.client.HTTPException):
                continue
            assert r.status < 500, (path, method, r)
            _no_leak(r, allowed, (who, path, method))
            assert "@@GATE_CONTENT@@" not in r.text, path
            assert "source_digest" not in r.text, path
            if r.status == 200:
                low = path.lower().lstrip("/")
                assert not low.startswith(("launches", "claim-desk", "maintenance")), (who, path)


def test_the_public_sitemap_gz_and_search_hold_no_gated_address(edge):
    for path in ("/sitemap.xml.gz", "/sitemap.xml", "/search/search_index.json",
                 "/search/kb_index.json"):
        r = edge.get(path)
        assert r.status == 200, (path, r)
        _no_leak(r, [], path)
        assert "launches/" not in gzip.decompress(r.body).decode() if path.endswith(".gz") \
            else "/launches/marker" not in r.text


# --- methods and Authorization ----------------------------------------------------------------

def test_authorization_variants_always_reach_the_gate(edge):
    start = edge.login("start@client.example")
    api = edge.cli("token", "func@client.example", "--ttl", "600").strip().splitlines()[-1]
    for header in ([("Authorization", "Bearer nonsense")], [("authorization", "bearer nonsense")],
                   [("AUTHORIZATION", "BEARER nonsense")], [("Authorization", "Bearer")],
                   [("Authorization", "Basic dXNlcjpwYXNz")], [("Authorization", f"Bearer {api}")],
                   [("Authorization", f"Bearer  {api}")], [("Authorization", f"bearer {api}")]):
        cookies = f"kb_session={start['kb_session']}; kb_edge={start['kb_edge']}"
        r = _raw(edge.port, page_url("launches"), [("Accept", HTML["Accept"]), *header,
                                                  ("Cookie", cookies)])
        assert r.by_gate, (header, r)
        if "nonsense" in header[0][1] or header[0][1] == "Bearer":
            assert r.status == 401 and marker("launches", "body") not in r.text, (header, r)
        if api in header[0][1]:  # func's token: the cookie must not widen it
            assert r.status == 403 and marker("launches", "body") not in r.text, (header, r)
    # an empty Authorization header is no credential: nginx may serve the ticket's edition
    r = _raw(edge.port, page_url("functionality"),
             [("Authorization", ""), ("Cookie", f"kb_edge={start['kb_edge']}")])
    assert r.status == 200


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "PROPFIND",
                                    "get", "TRACE"])
def test_other_methods_never_get_a_file_from_nginx(edge, method):
    func = edge.login("func@client.example")
    for path in (page_url("launches"), page_url("functionality"), "/"):
        try:
            r = edge.get(path, method=method, cookies=func, body=b"" if method != "TRACE" else None,
                         headers={**HTML, "Origin": edge.origin})
        except (ConnectionError, http.client.HTTPException):
            continue
        assert r.status < 500, (method, path, r)
        assert r.by_gate or r.status >= 400, (method, path, r)  # never a file from nginx
        assert marker("functionality", "body") not in r.text, (method, path)
        _no_leak(r, ["functionality"], (method, path))


# --- headers on everything nginx answers --------------------------------------------------------

def test_every_answer_carries_private_caching_and_security_headers(edge):
    func = edge.login("func@client.example")
    answers = []
    for cookies in (None, func):
        for path in ("/", "/contacts/", "/sitemap.xml", "/sitemap.xml.gz",
                     "/search/search_index.json", "/search/kb_index.json", "/404.html",
                     "/no-such/", page_url("functionality"), page_url("launches")):
            for method in ("GET", "HEAD"):
                answers.append((path, method, edge.get(path, method=method, headers=HTML,
                                                       cookies=cookies)))
        first = edge.get("/", cookies=cookies)
        answers.append(("/ (304)", "GET", edge.get("/", cookies=cookies, headers={
            "If-None-Match": first.headers.get("ETag", "x"),
            "If-Modified-Since": first.headers.get("Last-Modified", "x")})))
    for path, method, r in answers:
        assert r.headers.get("X-Content-Type-Options") == "nosniff", (path, method, r)
        assert r.headers.get("X-Frame-Options") == "SAMEORIGIN", (path, method, r)
        assert "Strict-Transport-Security" in r.headers, (path, method, r)
        if r.status in (200, 304, 403, 404):
            assert "private" in r.headers.get("Cache-Control", "") or \
                "no-store" in r.headers.get("Cache-Control", ""), (path, method, r)
            vary = ", ".join(r.headers.get_all("Vary") or []).lower()
            assert "cookie" in vary, (path, method, r)


def test_nginx_own_error_pages_leak_nothing(edge):
    func = edge.login("func@client.example")
    cookie = f"kb_session={func['kb_session']}; kb_edge={func['kb_edge']}"
    for path, lines in (("/launches/%", []), ("/launches/%zz/", []), ("/launches%00/", []),
                        ("/" + "x" * 9000, []), ("/", [("Host", "a"), ("Host", "b")]),
                        ("/", [("Cookie", "x" * 20000)]),
                        ("/launches/marker-launches-page/", [("Cookie", cookie + "; x=" + "y" * 9000)])):
        try:
            r = _raw(edge.port, path, lines + [("Cookie", cookie)])
        except (ConnectionError, http.client.HTTPException):
            continue
        assert r.status < 500, (path[:40], r)
        _no_leak(r, ["functionality"], path[:40])
        assert "nginx/" not in r.text  # server_tokens off
        assert r.headers.get("X-Content-Type-Options") == "nosniff", (path[:40], r)


# --- gate.edge_config: errors are one line ------------------------------------------------------

@pytest.fixture(scope="module")
def config_env(edge, tmp_path_factory):
    work = tmp_path_factory.mktemp("edgecfg")
    env = clean_env(GATE_ROOT=str(edge.root), GATE_INSTANCE=str(work / "instance"),
                    EDGE_DIR=str(work / "run"), EDGE_PORT=str(free_port()), GATE_PORT=str(free_port()))
    return env, work


@pytest.mark.serial
@pytest.mark.parametrize("case", ["missing site", "busy gate port", "busy edge port",
                                  "port out of range", "port not a number", "manifest broken",
                                  "manifest without editions", "bad edition name",
                                  "unwritable EDGE_DIR"])
def test_edge_config_errors_are_one_line(edge, config_env, case, tmp_path):
    env, work = config_env
    env = dict(env)
    holder = None  # noqa
    if case == "missing site":
        env["GATE_ROOT"] = str(make_project(tmp_path / "p"))
    elif case == "busy gate port":
        env["GATE_PORT"] = str(edge.gate_port)
    elif case == "busy edge port":
        env["EDGE_PORT"] = str(edge.port)
    elif case == "port out of range":
        env["EDGE_PORT"] = "99999"
    elif case == "port not a number":
        env["GATE_PORT"] = "80a"
    elif case.startswith("manifest") or case == "bad edition name":
        root = make_project(tmp_path / "p")
        (root / "site").mkdir()
        text = {"manifest broken": "{not json",
                "manifest without editions": "{}",
                "bad edition name": json.dumps({"editions": {"gate": []}})}[case]
        (root / "site" / "manifest.json").write_text(text)
        env["GATE_ROOT"] = str(root)
    elif case == "unwritable EDGE_DIR":
        blocker = tmp_path / "file"
        blocker.write_text("")
        env["EDGE_DIR"] = str(blocker / "run")
    started = time.monotonic()
    out = edge_config(env)
    assert time.monotonic() - started < 10
    assert out.returncode == 1, (case, out)
    assert "Traceback" not in out.stderr, (case, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edge: "), (case, out.stderr)
    del holder


@pytest.mark.parametrize("setting, value, named", [
    ("GATE_PORT", "80a", "GATE_PORT"),
    ("manifest", "{}", "manifest"),
    ("manifest", "{not json", "manifest"),
])
def test_edge_config_errors_say_what_is_wrong(config_env, tmp_path, setting, value, named):
    """Low: the one line should name the setting or file at fault."""
    env = dict(config_env[0])
    if setting == "manifest":
        root = make_project(tmp_path / "p")
        (root / "site").mkdir()
        (root / "site" / "manifest.json").write_text(value)
        env["GATE_ROOT"] = str(root)
    else:
        env[setting] = value
    out = edge_config(env)
    assert out.returncode == 1 and named in out.stderr, out.stderr


@pytest.mark.serial
def test_edge_config_writes_private_files_fast(edge, config_env):
    env, work = config_env
    started = time.monotonic()
    out = edge_config(env)
    took = time.monotonic() - started
    assert out.returncode == 0, out.stderr
    assert took < 5
    run = work / "run"
    for name in ("kb-rules.conf", "nginx.conf"):
        assert (run / name).stat().st_mode & 0o077 == 0
    key = (work / "instance" / "signing.key").read_text().strip()
    assert key not in (run / "kb-rules.conf").read_text()
    assert key not in (run / "nginx.conf").read_text()
