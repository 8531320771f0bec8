"""Logging in and out, changing and resetting a password, login throttling (gate/views/auth.py);
through the real application (Flask test client)."""

import pytest

from tests.helpers.http import HTML, csrf_of, login
from tests.helpers.project import PASSWORD, make_config, marker, page_url, populate


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


@pytest.mark.parametrize("evil", ["//evil.example", "/\\evil.example", "https://evil.example",
                                  "javascript:alert(1)", "/%2F%2Fevil.example"])
def test_login_never_redirects_off_site(client, evil):
    r = login(client, "start@client.example", next_path=evil)
    assert r.status_code == 303 and r.headers["Location"] == "/"


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


def test_password_reset_requests_do_not_block_logins(app, client):
    for i in range(25):
        page = client.get("/password/forgot")
        client.post("/password/forgot", data={"csrf_token": csrf_of(page.get_data(as_text=True)),
                                              "email": f"x{i}@x.example"})
    assert login(client, "start@client.example").status_code == 303


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

    root, _ = built_project
    app = create_app(make_config(root, tmp_path / "prod", mode="production"))
    populate(app.extensions["gate"].engine, app.extensions["gate"].tariffs)
    r = app.test_client().get("/password/forgot", headers={"Host": "evil.example"})
    assert r.status_code == 200 and "не настроено" in r.get_data(as_text=True)
    assert 'action="/password/forgot"' not in r.get_data(as_text=True)
