"""The contract's HTTP answers, through the real application (Flask test client)."""

import time

import pytest

from gate import accounts, tokens
from gate.sections import SECTIONS
from tests.conftest import PASSWORD, csrf_of, login, marker

HTML = {"Accept": "text/html,application/xhtml+xml"}


def page_url(section):
    return f"/{marker(section, 'url')}/"


def test_public_pages_are_open_to_everyone(client):
    for path in ("/", "/assets/kb.css"):
        assert client.get(path).status_code == 200


@pytest.mark.parametrize("section", SECTIONS)
@pytest.mark.parametrize("suffix", ["", "{page}", "no-such-page/", "a/b/c.html", "index.html"])
def test_anonymous_gets_the_same_answer_for_every_url_of_a_section(client, section, suffix):
    path = f"/{section}/" + suffix.format(page=marker(section, "slug") + "/")
    browser = client.get(path, headers=HTML)
    assert browser.status_code == 303
    assert browser.headers["Location"].startswith("/login?next=%2F" + section)
    script = client.get(path, headers={"Accept": "application/json"})
    assert script.status_code == 401
    assert marker(section, "body") not in script.get_data(as_text=True)
    assert client.get(path, headers={"Accept": "TEXT/HTML"}).status_code == 303  # any case


def test_login_lands_on_next_and_serves_the_section(client):
    r = login(client, "start@client.example", next_path=page_url("launches"))
    assert r.status_code == 303 and r.headers["Location"] == page_url("launches")
    cookie = r.headers.get("Set-Cookie", "")
    assert "kb_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = client.get(page_url("launches"), headers=HTML)
    assert page.status_code == 200 and marker("launches", "body") in page.get_data(as_text=True)
    assert 'action="/logout"' in page.get_data(as_text=True)


def test_login_form_has_every_field_and_csrf(client):
    html = client.get("/login?next=/launches/").get_data(as_text=True)
    for field in ('name="csrf_token"', 'name="email"', 'name="password"', 'name="next"'):
        assert field in html
    assert 'value="/launches/"' in html


@pytest.mark.parametrize("email, password", [
    ("start@client.example", "wrong-password-1"),
    ("nobody@client.example", PASSWORD),
    ("disabled@client.example", PASSWORD),
])
def test_failed_login_says_the_same_for_every_reason(client, email, password):
    r = login(client, email, password)
    assert r.status_code == 401
    assert "Неверный e-mail или пароль." in r.get_data(as_text=True)
    assert "kb_session=" not in r.headers.get("Set-Cookie", "")


def test_login_without_csrf_token_is_refused(client):
    r = client.post("/login", data={"email": "start@client.example", "password": PASSWORD, "next": "/"})
    assert r.status_code == 400


def test_login_from_another_site_is_refused(client):
    page = client.get("/login")
    r = client.post("/login", headers={"Origin": "http://evil.example"},
                    data={"csrf_token": csrf_of(page.get_data(as_text=True)),
                          "email": "start@client.example", "password": PASSWORD, "next": "/"})
    assert r.status_code == 403


@pytest.mark.parametrize("evil", ["//evil.example", "/\\evil.example", "https://evil.example",
                                  "javascript:alert(1)", "/%2F%2Fevil.example"])
def test_login_never_redirects_off_site(client, evil):
    r = login(client, "start@client.example", next_path=evil)
    assert r.status_code == 303 and r.headers["Location"] == "/"


@pytest.mark.parametrize("section", SECTIONS)
def test_locked_section_gives_403_page_naming_section_and_tariff(client, section):
    login(client, "func@client.example")
    for path in (f"/{section}/", page_url(section), f"/{section}/no-such/"):
        r = client.get(path, headers=HTML)
        html = r.get_data(as_text=True)
        if section == "functionality":
            assert r.status_code in (200, 404)
            continue
        assert r.status_code == 403
        assert SECTIONS[section] in html and "«СТАРТ»" in html
        assert "/support/new?from=" in html
        for s in SECTIONS:
            if s != "functionality":
                assert marker(s, "body") not in html and marker(s, "title") not in html


def test_ended_contract_is_locked_out_of_every_section(client):
    r = login(client, "ended@client.example", next_path="/")
    assert r.status_code == 303
    home = client.get("/", headers=HTML).get_data(as_text=True)
    assert 'action="/logout"' in home  # logged in: logout offered
    r = client.get(page_url("launches"), headers=HTML)
    assert r.status_code == 403 and "завершён" in r.get_data(as_text=True)


def test_logout_clears_cookie_and_locks_again(client):
    login(client, "start@client.example")
    assert client.get(page_url("maintenance")).status_code == 200
    r = client.post("/logout", headers={"Origin": "http://localhost"})
    assert r.status_code == 303 and "kb_session=;" in r.headers["Set-Cookie"]
    assert client.get(page_url("maintenance"), headers=HTML).status_code == 303


def test_logout_from_another_site_and_by_get_are_refused(client):
    login(client, "start@client.example")
    assert client.post("/logout", headers={"Origin": "http://evil.example"}).status_code == 403
    get = client.get("/logout")
    assert get.status_code == 200 and 'method="post" action="/logout"' in get.get_data(as_text=True)
    assert client.get(page_url("maintenance")).status_code == 200


def test_copied_session_token_stops_working_after_logout(app, client):
    login(client, "start@client.example")
    token = client.get_cookie("kb_session").value
    copy = app.test_client(use_cookies=False)
    assert copy.get(page_url("launches"), headers={"Cookie": f"kb_session={token}"}).status_code == 200
    client.post("/logout")
    other = app.test_client(use_cookies=False)  # sends the Cookie header exactly as given
    app.extensions["gate"].identities.invalidate()
    r = other.get(page_url("launches"), headers={"Cookie": f"kb_session={token}", **HTML})
    assert r.status_code == 303


def test_expired_session_token_is_renewed_while_the_session_lives(app, client):
    login(client, "start@client.example")
    gate = app.extensions["gate"]
    claims = tokens.decode(gate.key, client.get_cookie("kb_session").value)
    old = tokens.issue(gate.key, sub=int(claims["sub"]), org=claims["org"], tariff=claims["tariff"],
                       sections=claims["sections"], typ="session", ttl=45, sid=claims["sid"],
                       now=time.time() - 600)
    client.set_cookie("kb_session", old)
    r = client.get(page_url("launches"), headers={"Accept": "application/json"})
    assert r.status_code == 200
    assert "kb_session=" in r.headers["Set-Cookie"]
    assert tokens.decode(gate.key, client.get_cookie("kb_session").value)["exp"] > time.time()


def _api_token(gate, email: str) -> str:
    """What `gate token EMAIL --ttl 3600` prints."""
    with gate.engine.begin() as conn:
        ident = accounts.identity(conn, accounts.user_id_by_email(conn, email),
                                  gate.tariffs, gate.cfg.timezone)
    return tokens.issue(gate.key, sub=ident.user_id, org=ident.org, tariff=ident.tariff,
                        sections=ident.sections, typ="api", ttl=3600)


def test_bearer_token_from_the_cli_is_accepted_and_revoked(app, client):
    gate = app.extensions["gate"]
    t = _api_token(gate, "pair@client.example")
    auth = {"Authorization": f"Bearer {t}"}
    assert client.get(page_url("maintenance"), headers=auth).status_code == 200
    assert client.get(page_url("functionality"), headers=auth).status_code == 403
    with gate.engine.begin() as conn:
        accounts.set_disabled(conn, "pair@client.example", True)
    gate.identities.invalidate()  # what the 20-second refresh does
    assert client.get(page_url("maintenance"), headers=auth).status_code == 401


def test_an_api_token_is_no_session_cookie(app, client):
    """API tokens (up to 30 days) go in the Authorization header; as the cookie they open
    nothing, so no long-lived token can stand in for the 45-second session token."""
    gate = app.extensions["gate"]
    t = _api_token(gate, "pair@client.example")
    for path in (page_url("maintenance"), "/account/"):  # the fast path and Flask alike
        client.set_cookie("kb_session", t)
        r = client.get(path, headers={"Accept": "text/html"})
        assert r.status_code == 303 and r.headers["Location"].startswith("/login?next="), path
        assert client.get_cookie("kb_session") is None  # cleared


def test_tariff_change_applies_to_issued_tokens(app, client):
    gate = app.extensions["gate"]
    login(client, "func@client.example")
    assert client.get(page_url("launches")).status_code == 403
    with gate.engine.begin() as conn:
        accounts.set_org(conn, "Сеть Функ", gate.tariffs, tariff="start")
    gate.identities.invalidate()
    assert client.get(page_url("launches")).status_code == 200


@pytest.mark.parametrize("bad", ["garbage", "a.b.c", "x" * 5000])
def test_bad_bearer_token_gives_no_content(client, bad):
    r = client.get("/launches/", headers={"Authorization": f"Bearer {bad}", **HTML})
    assert r.status_code == 401


@pytest.mark.parametrize("path", [
    "/launches/../launches/{page}", "/%2e%2e/launches/{page}", "/LAUNCHES/{page}",
    "/Launches/{page}", "/launches%2F{page}", "/launches\\{page}", "/./launches/{page}",
    "//launches/{page}", "/editions/all/launches/{page}", "/../all/launches/{page}",
    "/site/editions/all/launches/{page}", "/launches/%252e%252e/", "/403.html", "/manifest.json",
    "/..%2f..%2fmanifest.json", "/" + "a/" * 600,
])
def test_path_tricks_never_reach_locked_content(client, path):
    login(client, "func@client.example")
    r = client.get(path.format(page=marker("launches", "slug") + "/"), headers=HTML)
    assert r.status_code in (301, 303, 403, 404)
    body = r.get_data(as_text=True)
    assert marker("launches", "body") not in body and marker("launches", "title") not in body
    assert "@@GATE_CONTENT@@" not in body


def test_missing_public_page_gets_the_editions_404(client):
    r = client.get("/no-such-page/")
    assert r.status_code == 404 and "404" in r.get_data(as_text=True)


def test_caching_and_security_headers(client):
    page = client.get("/")
    assert page.headers["Cache-Control"].startswith("private")
    assert "Cookie" in page.headers["Vary"]
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'self'" in page.headers["Content-Security-Policy"]
    html = page.get_data(as_text=True)
    import re
    asset = re.search(r'(assets/javascripts/bundle\.[0-9a-f]+\.min\.js)', html).group(1)
    a = client.get("/" + asset)
    assert a.status_code == 200 and "immutable" in a.headers["Cache-Control"]
    for path in ("/search/search_index.json", "/sitemap.xml", "/no-such/"):
        r = client.get(path)
        assert r.headers["Cache-Control"].startswith("private") and "Cookie" in r.headers["Vary"]


def test_production_mode_adds_hsts_and_secure_cookie(built_project, tmp_path):
    from gate.factory import create_app
    from tests.conftest import make_config, populate

    root, _ = built_project
    app = create_app(make_config(root, tmp_path / "prod", mode="production"))
    populate(app.extensions["gate"].engine, app.extensions["gate"].tariffs)
    c = app.test_client()
    assert "max-age" in c.get("/").headers["Strict-Transport-Security"]
    r = login(c, "start@client.example")
    assert "Secure" in r.headers["Set-Cookie"]


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json["status"] == "ok"


def test_stale_site_is_refused(built_project, tmp_path):
    from gate.factory import create_app
    from gate.build import BuildError
    from tests.conftest import make_config

    root, _ = built_project
    other = tmp_path / "tariffs.yml"
    other.write_text("tariffs:\n  solo:\n    title: S\n    sections: [launches]\n")
    with pytest.raises(BuildError, match="other tariffs"):
        create_app(make_config(root, tmp_path / "i", tariffs_path=other))


def test_password_change_keeps_this_session_and_ends_others(app, client):
    login(client, "start@client.example")
    other = app.test_client()
    login(other, "start@client.example")
    page = client.get("/account/").get_data(as_text=True)
    r = client.post("/account/password", data={"csrf_token": csrf_of(page), "current": PASSWORD,
                                                "new": "new-password-2026", "repeat": "new-password-2026"})
    assert r.status_code == 200 and "Пароль изменён" in r.get_data(as_text=True)
    app.extensions["gate"].identities.invalidate()
    assert client.get(page_url("launches")).status_code == 200
    assert other.get(page_url("launches")).status_code == 401
    assert login(app.test_client(), "start@client.example", "new-password-2026").status_code == 303


def test_throttled_login_answers_429_and_owner_gets_back_within_60s(app, client):
    gate = app.extensions["gate"]
    clock = [1000.0]
    gate.throttle.clock = lambda: clock[0]
    for _ in range(5):
        assert login(client, "start@client.example", "wrong-password-x").status_code == 401
    r = login(client, "start@client.example")
    assert r.status_code == 429 and "Повторите через" in r.get_data(as_text=True)
    assert int(r.headers["Retry-After"]) <= 60
    clock[0] += 60
    assert login(app.test_client(), "start@client.example").status_code == 303


def test_plain_page_requests_take_the_fast_path_with_the_same_headers(app, client, monkeypatch):
    login(client, "start@client.example")
    # another scheme (a staging proxy's Basic) goes through Flask and leaves the cookie in charge
    via_flask = client.get(page_url("launches"), headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert via_flask.status_code == 200
    calls = []
    original = app.full_dispatch_request
    monkeypatch.setattr(app, "full_dispatch_request", lambda: calls.append(1) or original())
    fast = client.get(page_url("launches"))
    assert fast.status_code == 200 and calls == []
    assert marker("launches", "body") in fast.get_data(as_text=True)
    for h in ("X-Content-Type-Options", "X-Frame-Options", "Content-Security-Policy", "Vary", "ETag"):
        assert h in fast.headers
    assert fast.headers["Cache-Control"].startswith("private")
    again = client.get(page_url("launches"), headers={"If-None-Match": fast.headers["ETag"]})
    assert again.status_code == 304 and calls == []
    assert client.get(page_url("launches"), headers={"Accept": "text/html"}).status_code == 200
    client.post("/logout")
    assert client.get(page_url("launches"), headers=HTML).status_code == 303 and calls


def _fail_logins(client, n, email, xff=None):
    headers = {"X-Forwarded-For": xff} if xff else {}
    codes = []
    for i in range(n):
        page = client.get("/login")
        codes.append(client.post("/login", headers=headers, data={
            "csrf_token": csrf_of(page.get_data(as_text=True)), "email": f"{email}{i}@x.example",
            "password": "wrong-password", "next": "/"}).status_code)
    return codes


@pytest.mark.parametrize("proxies, other_address_blocked", [(0, True), (1, False)])
def test_address_throttle_follows_trusted_proxies(built_project, tmp_path, proxies, other_address_blocked):
    """Behind a trusted proxy the client address comes from X-Forwarded-For; without one a
    forged header changes nothing."""
    from gate.factory import create_app
    from tests.conftest import make_config

    root, _ = built_project
    app = create_app(make_config(root, tmp_path / "i", trusted_proxies=proxies))
    c = app.test_client()
    codes = _fail_logins(c, 20, "spray", xff="203.0.113.7")  # different accounts, one address
    assert codes == [401] * 20
    assert _fail_logins(c, 1, "more", xff="203.0.113.7") == [429]
    assert (_fail_logins(c, 1, "other", xff="198.51.100.9") == [429]) is other_address_blocked


def test_guesses_from_many_addresses_block_strangers_but_not_the_owners_browser(built_project, tmp_path):
    from gate.factory import create_app
    from gate.throttle import MAX_ACCOUNT_ANY
    from tests.conftest import make_config, populate

    root, _ = built_project
    app = create_app(make_config(root, tmp_path / "i", trusted_proxies=1))
    populate(app.extensions["gate"].engine, app.extensions["gate"].tariffs)
    owner = app.test_client()
    page = owner.get("/login")
    assert owner.post("/login", headers={"X-Forwarded-For": "198.51.100.1"}, data={
        "csrf_token": csrf_of(page.get_data(as_text=True)), "email": "start@client.example",
        "password": PASSWORD, "next": "/"}).status_code == 303
    assert owner.get_cookie("kb_device", path="/login") is not None
    attacker = app.test_client()
    codes = []
    for i in range(MAX_ACCOUNT_ANY + 5):
        page = attacker.get("/login")
        codes.append(attacker.post("/login", headers={"X-Forwarded-For": f"203.0.113.{i}"}, data={
            "csrf_token": csrf_of(page.get_data(as_text=True)), "email": "start@client.example",
            "password": "wrong-password", "next": "/"}).status_code)
    assert codes == [401] * MAX_ACCOUNT_ANY + [429] * 5
    for client, expected in ((app.test_client(), 429), (owner, 303)):  # both on a new network
        page = client.get("/login")
        r = client.post("/login", headers={"X-Forwarded-For": "192.0.2.50"}, data={
            "csrf_token": csrf_of(page.get_data(as_text=True)), "email": "start@client.example",
            "password": PASSWORD, "next": "/"})
        assert r.status_code == expected
        if expected == 429:
            assert 0 < int(r.headers["Retry-After"]) <= 60


@pytest.mark.parametrize("cookie_prefix", ['x="', "x=a b", "a=b;", ";;"])
def test_odd_other_cookies_do_not_hide_the_session(app, client, cookie_prefix):
    login(client, "start@client.example")
    token = client.get_cookie("kb_session").value
    raw = app.test_client(use_cookies=False)  # sends the Cookie header exactly as given
    r = raw.get("/", headers={"Cookie": f"{cookie_prefix}; kb_session={token}"})
    assert r.status_code == 200 and 'action="/logout"' in r.get_data(as_text=True)


def test_huge_request_numbers_are_not_found_not_500(client):
    login(client, "start@client.example")
    for path in ("/support/99999999999999999999/", "/support/1/files/99999999999999999999"):
        assert client.get(path).status_code == 404


def test_forms_from_https_behind_an_untrusted_tls_proxy_are_accepted(client):
    page = client.get("/login")
    r = client.post("/login", headers={"Origin": "https://localhost"}, data={
        "csrf_token": csrf_of(page.get_data(as_text=True)), "email": "start@client.example",
        "password": PASSWORD, "next": "/"})
    assert r.status_code == 303


def test_password_reset_requests_do_not_block_logins(app, client):
    for i in range(25):
        page = client.get("/password/forgot")
        client.post("/password/forgot", data={"csrf_token": csrf_of(page.get_data(as_text=True)),
                                              "email": f"x{i}@x.example"})
    assert login(client, "start@client.example").status_code == 303


def test_a_rebuilt_site_is_served_without_a_restart(tmp_path):
    from gate.factory import create_app
    from gate.build import build_all
    from tests.conftest import make_config, make_project

    root = make_project(tmp_path / "p")
    build_all(root, root / "tariffs.yml", log=lambda *_: None)
    app = create_app(make_config(root, tmp_path / "i"))
    c = app.test_client()
    assert "Публичнаястраница" in c.get("/").get_data(as_text=True)
    index = root / "docs/index.md"
    index.write_text(index.read_text().replace("Публичнаястраница", "Новаястраница"))
    (root / "docs/news.md").write_text("---\ntitle: Новости\ndescription: Новое.\n---\n\nНовость.\n\n"
                                       "[Обратиться в поддержку](/support/new?from=/news/)\n")
    build_all(root, root / "tariffs.yml", log=lambda *_: None)
    app.extensions["gate"]._next_check = 0  # instead of waiting for the 2-second look
    page = c.get("/").get_data(as_text=True)
    assert "Новаястраница" in page and page.rstrip().endswith("</html>")
    assert c.get("/news/").status_code == 200


def test_password_reset_by_mail_single_use(app, client):
    import re
    import sqlalchemy as sa
    from gate.db import outbox

    page = client.get("/password/forgot")
    r = client.post("/password/forgot", data={"csrf_token": csrf_of(page.get_data(as_text=True)),
                                              "email": "start@client.example"})
    same = client.post("/password/forgot", data={"csrf_token": csrf_of(page.get_data(as_text=True)),
                                                 "email": "nobody@client.example"})
    assert r.status_code == same.status_code == 200
    assert r.get_data(as_text=True) == same.get_data(as_text=True)  # no account enumeration
    with app.extensions["gate"].engine.connect() as conn:
        bodies = [b for (b,) in conn.execute(sa.select(outbox.c.body))]
    assert len(bodies) == 1
    import email
    import email.policy
    text = email.message_from_bytes(bodies[0], policy=email.policy.default).get_content()
    link = re.search(r"http://localhost(/password/reset/[\w-]+)", text).group(1)
    form = client.get(link).get_data(as_text=True)
    data = {"csrf_token": csrf_of(form), "new": "brand-new-pass-1", "repeat": "brand-new-pass-1"}
    assert client.post(link, data=data).status_code == 200
    assert client.post(link, data=data).status_code == 404  # single use
    assert login(app.test_client(), "start@client.example", "brand-new-pass-1").status_code == 303


def test_production_without_base_url_mails_no_reset_link(built_project, tmp_path):
    from gate.factory import create_app
    from tests.conftest import make_config, populate

    root, _ = built_project
    app = create_app(make_config(root, tmp_path / "prod", mode="production"))
    populate(app.extensions["gate"].engine, app.extensions["gate"].tariffs)
    r = app.test_client().get("/password/forgot", headers={"Host": "evil.example"})
    assert r.status_code == 200 and "не настроено" in r.get_data(as_text=True)
    assert 'action="/password/forgot"' not in r.get_data(as_text=True)
