"""Who the visitor is (gate/web/visitor.py): session cookies renewed, Bearer tokens checked and
revoked, API tokens refused as cookies, odd cookies; through the real application."""

import time

import pytest

from gate import accounts, tokens
from tests.helpers.http import HTML, login
from tests.helpers.project import page_url


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


@pytest.mark.parametrize("cookie_prefix", ['x="', "x=a b", "a=b;", ";;"])
def test_odd_other_cookies_do_not_hide_the_session(app, client, cookie_prefix):
    login(client, "start@client.example")
    token = client.get_cookie("kb_session").value
    raw = app.test_client(use_cookies=False)  # sends the Cookie header exactly as given
    r = raw.get("/", headers={"Cookie": f"{cookie_prefix}; kb_session={token}"})
    assert r.status_code == 200 and 'action="/logout"' in r.get_data(as_text=True)
