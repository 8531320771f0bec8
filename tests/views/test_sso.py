"""/sso/jwt over HTTP: the client portal's handoff through the real application (Flask test
client), and the main rows again through edge mode (real nginx in front of `gate serve`)."""

from __future__ import annotations

import json
import time
from urllib.parse import quote, urlencode

import pytest
import sqlalchemy as sa

from gate import accounts, console, totp
from gate.db import audit, users
from tests.helpers.http import HTML, login
from tests.helpers.project import marker, page_url
from tests.helpers.sso import SECRET, JwksServer, PortalKey, hmac_with, jwks, mint, unsigned
from tests.helpers.totp import code, send_code

FORM = {**HTML, "Content-Type": "application/x-www-form-urlencoded"}


def _gate(app):
    return app.extensions["gate"]


def _audit(app, action):
    gate = _gate(app)
    gate.refusals.flush()
    with gate.engine.connect() as conn:
        return conn.execute(sa.select(audit).where(audit.c.action == action)
                            .order_by(audit.c.id)).all()


def _handoff(client, token, next_path=None, method="GET", **headers):
    query = {"next": next_path} if next_path is not None else {}
    if method == "POST":
        return client.post("/sso/jwt?" + urlencode(query), data={"token": token},
                           headers={**HTML, **headers})
    return client.get("/sso/jwt?" + urlencode({"token": token, **query}), headers=HTML)


def _session_set(resp) -> bool:
    return any(h.startswith("kb_session=") and not h.startswith("kb_session=;")
               for h in resp.headers.getlist("Set-Cookie"))


def test_without_keys_the_address_does_not_exist(client):
    token = mint(SECRET)
    assert client.get("/sso/jwt?token=" + token).status_code == 404
    assert client.post("/sso/jwt", data={"token": token}).status_code == 404


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_handoff_logs_in_within_one_redirect(sso_app, portal_keys, method):
    app = sso_app()
    client = app.test_client()
    rsa_key, _ = portal_keys
    # POST comes from the portal's own site: no csrf_token, a foreign Origin
    r = _handoff(client, rsa_key.mint(), page_url("launches"), method,
                 Origin="https://portal.example")
    assert r.status_code == 303 and r.headers["Location"] == page_url("launches")
    assert _session_set(r) and "HttpOnly" in r.headers["Set-Cookie"]
    page = client.get(page_url("launches"), headers=HTML)
    assert page.status_code == 200 and marker("launches", "body") in page.get_data(as_text=True)
    [row] = _audit(app, "sso.login")
    assert row.target == "start@client.example" and row.actor == "start@client.example"


HOSTILE = {  # name -> (token maker, status)
    "bad-signature": (lambda k: mint("not-the-portal-secret-0123456789abcdef"), 403),
    "alg-none": (lambda k: unsigned(headers={"kid": "rsa-1"}), 403),
    "confusion": (lambda k: hmac_with(k.public_pem(), "rsa-1"), 403),
    "jku": (lambda k: k.mint(headers={"jku": "https://evil.example/jwks.json"}), 403),
    "kid-path": (lambda k: mint(k.private, "RS256", kid="../../instance/signing.key"), 403),
    "unconfigured-key": (lambda k: PortalKey("rsa-1").mint(), 403),
    "expired": (lambda k: k.mint(iat=int(time.time()) - 200, exp=int(time.time()) - 1), 403),
    "nbf-future": (lambda k: k.mint(nbf=int(time.time()) + 120), 403),
    "iat-too-old": (lambda k: k.mint(iat=int(time.time()) - 400, exp=int(time.time()) + 60), 403),
    "iat-ahead": (lambda k: k.mint(iat=int(time.time()) + 40, exp=int(time.time()) + 200), 403),
    "exp-too-far": (lambda k: k.mint(exp=int(time.time()) + 400), 403),
    "wrong-iss": (lambda k: k.mint(iss="https://evil.example"), 403),
    "wrong-aud": (lambda k: k.mint(aud="http://localhost"), 403),  # the request's host
    "missing-jti": (lambda k: k.mint(jti=None), 400),
    "missing-email": (lambda k: k.mint(email=None), 400),
    "missing-org": (lambda k: k.mint(org=None), 400),
    "garbage": (lambda k: "garbage", 400),
    "oversize": (lambda k: k.mint(padding="x" * 9000), 400),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_handoffs_are_refused_without_a_session(sso_app, portal_keys, name):
    app = sso_app()
    make, status = HOSTILE[name]
    r = _handoff(app.test_client(), make(portal_keys[0]), method="POST")
    assert r.status_code == status
    text = r.get_data(as_text=True)
    assert "Вход не выполнен" in text and not _session_set(r)
    [row] = _audit(app, "sso.refused")
    assert json.loads(row.details)["count"] == 1 and not _audit(app, "sso.login")


def test_a_token_is_used_once(sso_app, portal_keys):
    app = sso_app()
    token = portal_keys[1].mint()
    assert _handoff(app.test_client(), token).status_code == 303
    again = _handoff(app.test_client(), token)
    assert again.status_code == 403 and not _session_set(again)
    assert json.loads(_audit(app, "sso.refused")[0].details)["reason"] == "replay"


@pytest.mark.parametrize("evil", ["//evil.example", "/\\evil.example", "%2F%2Fevil.example",
                                  "/%2F%2Fevil.example", "https://evil.example",
                                  "/x\r\nLocation: https://evil.example", "javascript:alert(1)"])
def test_next_is_a_local_path_only(sso_app, evil):
    r = _handoff(sso_app().test_client(), mint(SECRET), evil)
    assert r.status_code == 303 and r.headers["Location"] == "/"


@pytest.mark.parametrize("email, org, why", [
    ("staff@vendor.example", "Сеть Старт", "staff"),
    ("staff@vendor.example", "Crystals", "staff"),
    ("new@vendor.example", "Crystals", "vendor-org"),
    ("disabled@client.example", "Сеть Старт", "disabled"),
    ("func@client.example", "Сеть Старт", "other-org"),
    ("ended@client.example", "Сеть Бывшая", "ended-org"),
    ("new@client.example", "Сеть Бывшая", "ended-org"),
    ("new@client.example", "Нет такой", "unknown-org"),
])
def test_refused_people_and_organisations(sso_app, email, org, why):
    app = sso_app()
    r = _handoff(app.test_client(), mint(SECRET, email=email, org=org))
    assert r.status_code == 403 and not _session_set(r)
    assert "Вход не выполнен" in r.get_data(as_text=True)
    assert json.loads(_audit(app, "sso.refused")[0].details)["reason"] == why
    with _gate(app).engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(users)
                            .where(users.c.email == "new@client.example")).scalar() == 0


def test_a_new_person_of_a_known_organisation_is_created(sso_app):
    app = sso_app()
    r = _handoff(app.test_client(), mint(SECRET, email="New.Person@Client.Example"))
    assert r.status_code == 303 and _session_set(r)
    [added] = _audit(app, "user.add")
    assert (added.actor, added.target) == ("new.person@client.example",) * 2
    again = _handoff(app.test_client(), mint(SECRET, email="new.person@client.example"))
    assert again.status_code == 303 and len(_audit(app, "user.add")) == 1
    # signed in from the portal, so no pending invitation (it has no password here either)
    with _gate(app).engine.connect() as conn:
        [person] = console.people_page(conn, q="new.person").rows
        assert not person["invited"]
        assert not console.people_page(conn, q="new.person", state="invited").total
    staff = app.test_client()
    assert login(staff, "staff@vendor.example").status_code == 303
    card = staff.get(f"/staff/people/{person['id']}/", headers=HTML).get_data(as_text=True)
    assert "активен" in card and "приглашён" not in card


def test_two_first_sign_ins_of_one_new_person_at_once_both_get_in(sso_app, monkeypatch):
    """The other handoff created the person between this one's look and its insert (two tabs on
    PostgreSQL): everything here is rolled back, jti included, and done again."""
    from gate import sso

    app = sso_app()
    email = "twice@client.example"
    assert _handoff(app.test_client(), mint(SECRET, email=email)).status_code == 303
    real, calls = sso.facts, []

    def as_before_the_other_committed(conn, claims, today):
        calls.append(claims.email)
        org, person, row = real(conn, claims, today)
        return (org, None, None) if len(calls) == 1 else (org, person, row)

    monkeypatch.setattr(sso, "facts", as_before_the_other_committed)
    r = _handoff(app.test_client(), mint(SECRET, email=email))
    assert r.status_code == 303 and _session_set(r) and len(calls) == 2
    assert len(_audit(app, "user.add")) == 1 and len(_audit(app, "sso.login")) == 2


def test_sso_create_off_refuses_new_people(sso_app):
    app = sso_app(create=False)
    r = _handoff(app.test_client(), mint(SECRET, email="new@client.example"))
    assert r.status_code == 403 and not _audit(app, "user.add")
    assert _handoff(app.test_client(), mint(SECRET)).status_code == 303  # known people still


def test_sections_come_from_the_contract_not_the_token(sso_app):
    client = sso_app().test_client()
    token = mint(SECRET, email="func@client.example", org="Сеть Функ",
                 sections=["launches", "maintenance", "claim-desk"], tariff="start")
    assert _handoff(client, token).status_code == 303
    assert client.get(page_url("functionality"), headers=HTML).status_code == 200
    locked = client.get(page_url("launches"), headers=HTML)
    assert locked.status_code == 403 and marker("launches", "body") not in locked.get_data(as_text=True)


def test_org_by_external_id_signs_into_that_organisation(sso_app):
    app = sso_app()
    with _gate(app).engine.begin() as conn:
        accounts.set_org(conn, "Сеть Пара", _gate(app).tariffs, external_id="CRM-7")
    client = app.test_client()
    assert _handoff(client, mint(SECRET, email="pair@client.example", org="CRM-7")).status_code == 303
    new = _handoff(app.test_client(), mint(SECRET, email="fresh@client.example", org="CRM-7"))
    assert new.status_code == 303
    with _gate(app).engine.connect() as conn:
        org_id = conn.execute(sa.select(users.c.org_id).where(users.c.email == "fresh@client.example")).scalar()
        assert accounts.org_by_id(conn, org_id).name == "Сеть Пара"
    # the portal is trusted for who someone is, never to move them to another organisation
    moved = _handoff(app.test_client(), mint(SECRET, email="start@client.example", org="CRM-7"))
    assert moved.status_code == 403


def test_the_second_factor_is_still_asked(sso_app):
    app = sso_app()
    secret = totp.new_secret()
    with _gate(app).engine.begin() as conn:
        user_id = accounts.user_id_by_email(conn, "start@client.example")
        assert totp.enrol(conn, user_id, secret, code(secret))
    client = app.test_client()
    r = _handoff(client, mint(SECRET), page_url("launches"))
    assert r.status_code == 303 and r.headers["Location"].startswith("/login/code")
    assert not _session_set(r) and "kb_2fa=" in r.headers["Set-Cookie"]
    assert client.get(page_url("launches"), headers=HTML).status_code == 303  # not signed in
    done = send_code(client, code(secret, 1), page_url("launches"))
    assert done.status_code == 303 and done.headers["Location"] == page_url("launches")
    assert client.get(page_url("launches"), headers=HTML).status_code == 200
    # the sign-in is recorded as the portal's, not as a password login
    assert len(_audit(app, "sso.login")) == 1 and not _audit(app, "password.login")


def test_handoffs_are_rate_limited_per_address(sso_app):
    app = sso_app()
    app.config["SSO_RATE_LIMIT"] = {"address": (3, 60), "person": (10, 60)}
    client = app.test_client()
    for _ in range(3):
        assert _handoff(client, "garbage").status_code == 400
    r = _handoff(client, mint(SECRET))
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0


def test_rotation_old_and_new_keys_then_the_old_removed(sso_app, portal_keys, tmp_path):
    app = sso_app()
    ring = app.extensions["sso"]
    ring.check_every = 0  # the file is looked at on every handoff (a minute in production)
    old, _ = portal_keys
    new = PortalKey("rsa-2", "RS256")
    ring.jwks_file.write_text(json.dumps(jwks(old, new)))
    assert _handoff(app.test_client(), old.mint()).status_code == 303
    assert _handoff(app.test_client(), new.mint()).status_code == 303
    ring.jwks_file.write_text(json.dumps(jwks(new)))
    assert _handoff(app.test_client(), old.mint()).status_code == 403
    assert _handoff(app.test_client(), new.mint()).status_code == 303


# --- edge mode: the same handoff through nginx -------------------------------------------------

def _edge_handoff(edge, token, next_path="/", **headers):
    return edge.get("/sso/jwt?next=" + quote(next_path, safe=""), method="POST",
                    body=urlencode({"token": token}), headers={**FORM, **headers})


def test_edge_success_then_replay(sso_edge):
    token = mint(SECRET)
    r = _edge_handoff(sso_edge, token, page_url("launches"), Origin="https://portal.example")
    assert r.status == 303 and r.headers["Location"] == page_url("launches"), r.text[:300]
    cookies = {n: r.cookie(n) for n in ("kb_session", "kb_edge")}
    assert all(cookies.values())
    page = sso_edge.get(page_url("launches"), headers=HTML, cookies=cookies)
    assert page.status == 200 and marker("launches", "body") in page.text
    again = _edge_handoff(sso_edge, token)
    assert again.status == 403 and not again.cookie("kb_session")


def test_edge_bad_signature_and_next(sso_edge):
    bad = _edge_handoff(sso_edge, mint("not-the-portal-secret-0123456789abcdef"))
    assert bad.status == 403 and "Вход не выполнен" in bad.text and not bad.cookie("kb_session")
    evil = _edge_handoff(sso_edge, mint(SECRET), "//evil.example")
    assert evil.status == 303 and evil.headers["Location"] == "/"
    big = _edge_handoff(sso_edge, mint(SECRET, padding="x" * 9000))
    assert big.status == 400
    # by GET too: the request line is longer than nginx's default 8 KB, the gate still answers
    by_get = sso_edge.get("/sso/jwt?token=" + mint(SECRET, padding="x" * 9000), headers=HTML)
    assert by_get.status == 400 and by_get.by_gate and not by_get.cookie("kb_session")


def test_keys_from_a_jwks_url(sso_app, portal_keys):
    rsa_key, ec_key = portal_keys
    server = JwksServer(jwks(rsa_key)).start()
    try:
        app = sso_app(jwks_file=None, jwks_url=server.url, secret=None)
        ring = app.extensions["sso"]
        assert _handoff(app.test_client(), rsa_key.mint()).status_code == 303
        server.document = jwks(rsa_key, ec_key)  # the portal publishes a new key
        ring.check_every = 0  # production: at most one refetch a minute on an unknown kid
        assert _handoff(app.test_client(), ec_key.mint()).status_code == 303
        assert server.requests == 2
        assert _handoff(app.test_client(), mint(SECRET)).status_code == 403  # no secret set
    finally:
        server.stop()


def test_a_jwks_file_that_is_no_jwks_stops_the_start(sso_app, tmp_path):
    from gate.config import ConfigError

    bad = tmp_path / "bad.json"
    bad.write_text("<html>")
    with pytest.raises(ConfigError, match="GATE_SSO_JWKS_FILE"):
        sso_app(jwks_file=bad)


def test_a_flood_of_refusals_adds_few_audit_rows(sso_app):
    app = sso_app()
    client = app.test_client()
    for _ in range(50):
        assert _handoff(client, mint("not-the-portal-secret-0123456789abcdef")).status_code == 403
    assert 1 <= len(_audit(app, "sso.refused")) <= 2  # the first at once, the rest counted


def test_an_e_mail_that_is_no_address_is_malformed(sso_app):
    app = sso_app()
    r = _handoff(app.test_client(), mint(SECRET, email="not an address"))
    assert r.status_code == 400 and not _session_set(r)
    assert json.loads(_audit(app, "sso.refused")[0].details)["reason"] == "bad-email"
