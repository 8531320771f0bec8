"""Staff sign-in through the company's identity provider (gate/oidc.py, gate/views/oidc.py),
over HTTP: the gate in process served on a port, against a real OIDC provider started by the
tests (tests/helpers/oidc_provider.py: discovery, PKCE, single-use codes, RS256 ID tokens)."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, quote, urlsplit, urlencode, urlunsplit

import pytest
import requests
import sqlalchemy as sa

from gate import accounts, changes, config, db
from tests.helpers import totp as t
from tests.helpers.http import HTML, csrf_of
from tests.helpers.oidc_provider import CLIENT_ID, CLIENT_SECRET
from tests.helpers.ports import free_port
from tests.helpers.project import PASSWORD

STAFF = "staff@vendor.example"
BUTTON = "Войти через корпоративную учётную запись"
TIMEOUT = 15


def _start(http, gate, next_path: str | None = None):
    """/login/oidc → the provider (which approves at once) → the callback URL it sends back."""
    query = "?next=" + quote(next_path, safe="") if next_path is not None else ""
    start = http.get(gate.url("/login/oidc" + query), allow_redirects=False, timeout=TIMEOUT)
    assert start.status_code == 303, start.text
    at_provider = http.get(start.headers["Location"], allow_redirects=False, timeout=TIMEOUT)
    assert at_provider.status_code == 302, at_provider.text
    return start, at_provider.headers["Location"]


def sign_in(gate, next_path: str | None = None, http=None):
    """The whole flow in a fresh browser-like session: (session, the callback's answer)."""
    http = http or requests.Session()
    _, callback = _start(http, gate, next_path)
    return http, http.get(callback, allow_redirects=False, timeout=TIMEOUT, headers=HTML)


def _audit(gate, action: str) -> list:
    engine = gate.app.extensions["gate"].engine
    gate.app.extensions["gate"].refusals.flush()
    with engine.connect() as conn:
        return conn.execute(sa.select(db.audit).where(db.audit.c.action == action)
                            .order_by(db.audit.c.id)).all()


def _no_session(http, gate, resp):
    assert "kb_session" not in resp.headers.get("Set-Cookie", "")
    assert "kb_session" not in http.cookies
    staff = http.get(gate.url("/staff/"), allow_redirects=False, timeout=TIMEOUT, headers=HTML)
    assert staff.status_code == 303 and staff.headers["Location"].startswith("/login")


# --- the login page --------------------------------------------------------------------------

def test_login_page_offers_the_provider_only_when_configured(oidc_gate, client):
    gate = oidc_gate()
    page = requests.get(gate.url("/login?next=/staff/"), timeout=TIMEOUT).text
    assert BUTTON in page and 'href="/login/oidc?next=/staff/"' in page
    assert "Войти через" not in client.get("/login").get_data(as_text=True)
    assert client.get("/login/oidc").status_code == 404
    assert client.get("/login/oidc/callback?code=x&state=y").status_code == 404


def test_the_button_can_be_named(oidc_gate):
    gate = oidc_gate(oidc_name="Keycloak компании")
    assert "Войти через Keycloak компании" in requests.get(gate.url("/login"), timeout=TIMEOUT).text


# --- who gets in -------------------------------------------------------------------------------

def test_staff_with_a_verified_email_gets_in(oidc_gate, oidc_provider):
    gate = oidc_gate()
    http = requests.Session()
    start, callback = _start(http, gate, "/staff/")
    # PKCE (S256), state and nonce went to the provider; the state cookie only to /login/oidc
    asked = parse_qs(urlsplit(start.headers["Location"]).query)
    assert asked["code_challenge_method"] == ["S256"] and asked["code_challenge"][0]
    assert asked["state"][0] and asked["nonce"][0] and asked["scope"] == ["openid email"]
    assert "Path=/login/oidc" in start.headers["Set-Cookie"]
    assert "HttpOnly" in start.headers["Set-Cookie"]
    done = http.get(callback, allow_redirects=False, timeout=TIMEOUT)
    assert done.status_code == 303 and done.headers["Location"] == "/staff/"
    assert "kb_session=" in done.headers["Set-Cookie"] and "kb_oidc=;" in done.headers["Set-Cookie"]
    assert oidc_provider.token_requests[-1]["code_verifier"]  # what the provider checked
    staff = http.get(gate.url("/staff/"), allow_redirects=False, timeout=TIMEOUT)
    assert staff.status_code == 200
    [row] = _audit(gate, "oidc.login")
    assert row.actor == STAFF and row.target == STAFF
    assert not _audit(gate, "password.login")
    logout = http.get(gate.url("/logout"), timeout=TIMEOUT).text
    assert "завершает только сеанс в базе знаний" in logout


def test_email_case_does_not_matter(oidc_gate, oidc_provider):
    gate = oidc_gate()
    oidc_provider.reset(email="Staff@Vendor.Example")
    _, done = sign_in(gate)
    assert done.status_code == 303 and done.headers["Location"] == "/"


def _disabled_staff(gate):
    with gate.app.extensions["gate"].engine.begin() as conn:
        accounts.add_user(conn, "gone@vendor.example", PASSWORD, staff=True)
        accounts.set_disabled(conn, "gone@vendor.example", True)
    gate.app.extensions["gate"].identities.invalidate()


@pytest.mark.parametrize("user, reason", [
    ({"email": "nobody@vendor.example"}, "unknown"),
    ({"email": "start@client.example"}, "not_staff"),  # a client's person, enabled
    ({"email": "gone@vendor.example"}, "disabled"),
    ({"email_verified": False}, "email_unverified"),
    ({"email_verified": "true"}, "email_unverified"),  # only a JSON true counts
    ({"email": None}, "unknown"),  # verified, but no e-mail at all
])
def test_only_enabled_staff_with_a_verified_email_get_in(oidc_gate, oidc_provider, user, reason):
    gate = oidc_gate()
    _disabled_staff(gate)
    oidc_provider.reset(**user)
    http, done = sign_in(gate, "/staff/")
    assert done.status_code == 403 and "Вход не выполнен" in done.text
    assert "только сотрудникам" in done.text
    _no_session(http, gate, done)
    [row] = _audit(gate, "oidc.refused")
    assert json.loads(row.details)["reason"] == reason
    assert not _audit(gate, "oidc.login")


def test_refusals_are_audited_with_bounded_growth(oidc_gate, oidc_provider):
    gate = oidc_gate()
    oidc_provider.reset(email="nobody@vendor.example")
    for _ in range(3):
        sign_in(gate)
    rows = _audit(gate, "oidc.refused")
    assert rows[0].target == "nobody@vendor.example" and json.loads(rows[0].details)["count"] == 1
    assert len(rows) == 1  # the other two are counted into one row when the minute is over


# --- the protocol: state, nonce, the ID token, the provider's refusals ------------------------

def test_a_tampered_state_is_refused(oidc_gate):
    gate = oidc_gate()
    http = requests.Session()
    _, callback = _start(http, gate)
    parts = urlsplit(callback)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query["state"] = query["state"][:-2] + "xx"
    forged = urlunsplit(parts._replace(query=urlencode(query)))
    r = http.get(forged, allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 400 and "Вход не выполнен" in r.text
    _no_session(http, gate, r)
    assert json.loads(_audit(gate, "oidc.refused")[0].details)["reason"] == "state"


def test_a_callback_without_its_state_cookie_is_refused(oidc_gate):
    gate = oidc_gate()
    _, callback = _start(requests.Session(), gate)
    other = requests.Session()  # another browser: an attacker's link, or a login never begun
    r = other.get(callback, allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 400 and "Начните вход заново" in r.text
    _no_session(other, gate, r)
    no_state = other.get(gate.url("/login/oidc/callback"), allow_redirects=False, timeout=TIMEOUT)
    assert no_state.status_code == 400


def test_an_expired_or_forged_state_cookie_is_refused(oidc_gate):
    from gate import oidc

    gate = oidc_gate()
    http = requests.Session()
    _, callback = _start(http, gate)
    sealed = http.cookies.get("kb_oidc")
    key = gate.app.extensions["gate"].key
    assert oidc.unseal(key, sealed) is not None
    assert oidc.unseal(key, sealed, max_age=-1) is None  # older than its 10 minutes
    assert oidc.unseal(b"another key of 32 bytes at least!!", sealed) is None
    http = requests.Session()  # the same browser, its state cookie changed
    http.cookies.set("kb_oidc", sealed[:-3] + "abc", path="/login/oidc")
    r = http.get(callback, allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 400
    _no_session(http, gate, r)


def test_a_replayed_callback_is_refused(oidc_gate):
    gate = oidc_gate()
    http = requests.Session()
    _, callback = _start(http, gate)
    sealed = http.cookies.get("kb_oidc")
    assert http.get(callback, allow_redirects=False, timeout=TIMEOUT).status_code == 303
    again = http.get(callback, allow_redirects=False, timeout=TIMEOUT)  # the cookie is gone
    assert again.status_code == 400
    # even with a copy of the state cookie: the provider redeems a code once
    thief = requests.Session()
    thief.cookies.set("kb_oidc", sealed, path="/login/oidc")
    stolen = thief.get(callback, allow_redirects=False, timeout=TIMEOUT)
    assert stolen.status_code == 403
    _no_session(thief, gate, stolen)
    assert json.loads(_audit(gate, "oidc.refused")[-1].details)["reason"] == "token:invalid_grant"
    assert len(_audit(gate, "oidc.login")) == 1


def test_the_provider_saying_no_is_a_page_not_an_error(oidc_gate, oidc_provider):
    gate = oidc_gate()
    oidc_provider.deny = True
    http, r = sign_in(gate)
    assert r.status_code == 403 and "отказала во входе" in r.text
    _no_session(http, gate, r)
    assert json.loads(_audit(gate, "oidc.refused")[0].details)["reason"] == "provider:access_denied"


@pytest.mark.parametrize("claims, rogue, hs256", [
    ({"nonce": "not-the-nonce-we-sent"}, False, False),
    ({"nonce": None}, False, False),
    ({"aud": "another-client"}, False, False),
    ({"aud": ["another-client", "yet-another"]}, False, False),
    ({"iss": "http://127.0.0.1:1/evil"}, False, False),
    ({"exp": int(time.time()) - 3600}, False, False),
    ({"iat": None}, False, False),
    ({}, True, False),  # signed by a key the provider does not publish
    ({}, False, True),  # HS256 with the client secret (algorithm confusion's cousin)
])
def test_an_id_token_that_fails_a_check_is_refused(oidc_gate, oidc_provider, claims, rogue,
                                                   hs256):
    gate = oidc_gate()
    oidc_provider.claims, oidc_provider.rogue, oidc_provider.hs256 = claims, rogue, hs256
    http, r = sign_in(gate, "/staff/")
    assert r.status_code == 403 and "Вход не выполнен" in r.text
    _no_session(http, gate, r)
    assert json.loads(_audit(gate, "oidc.refused")[0].details)["reason"].startswith("id_token")


def test_keys_rotated_by_the_provider_are_fetched_again(oidc_gate, oidc_provider):
    from joserfc.jwk import RSAKey

    gate = oidc_gate()
    assert sign_in(gate)[1].status_code == 303  # the provider's keys are cached now
    old = oidc_provider.key
    oidc_provider.key = RSAKey.generate_key(2048, parameters={"kid": "k2", "use": "sig"},
                                            private=True)
    try:
        assert sign_in(gate)[1].status_code == 303  # an unknown kid: the keys once more
    finally:
        oidc_provider.key = old


def test_the_provider_enforces_pkce_so_the_gate_is_tested(oidc_gate, oidc_provider):
    gate = oidc_gate()
    _, callback = _start(requests.Session(), gate)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    r = requests.post(oidc_provider.issuer + "/token", timeout=TIMEOUT, auth=(CLIENT_ID, CLIENT_SECRET),
                      data={"grant_type": "authorization_code", "code": code,
                            "redirect_uri": oidc_provider.redirect_uri, "code_verifier": "x" * 50})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


# --- where to go, and when the provider is away ------------------------------------------------

@pytest.mark.parametrize("evil", ["//evil.example", "/\\evil.example", "https://evil.example",
                                  "/%2F%2Fevil.example", "javascript:alert(1)"])
def test_next_never_leaves_the_site(oidc_gate, evil):
    gate = oidc_gate()
    _, r = sign_in(gate, evil)
    assert r.status_code == 303 and r.headers["Location"] == "/"


def test_starts_and_callbacks_are_rate_limited_per_address(oidc_gate):
    from gate.views.oidc import TRIES

    gate = oidc_gate()
    http = requests.Session()
    for _ in range(TRIES[0]):
        assert http.get(gate.url("/login/oidc"), allow_redirects=False,
                        timeout=TIMEOUT).status_code == 303
    r = http.get(gate.url("/login/oidc/callback?code=x&state=y"), timeout=TIMEOUT)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert "Слишком много попыток" in r.text


def test_an_unreachable_provider_is_a_503_page(oidc_gate):
    gate = oidc_gate(oidc_issuer=f"http://127.0.0.1:{free_port()}")  # nobody listens there
    r = requests.get(gate.url("/login/oidc"), allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 503 and r.headers["Retry-After"]
    assert "временно недоступен" in r.text and "Вход через корпоративную учётную запись" in r.text


@pytest.mark.parametrize("document", [
    {"issuer": "http://127.0.0.1:1/another"},  # a document for another issuer
    {"issuer": None},
    {"token_endpoint": None},
    {"jwks_uri": 42},
])
def test_a_provider_with_a_broken_discovery_document_is_a_503_page(oidc_gate, oidc_provider,
                                                                   document):
    gate = oidc_gate()
    oidc_provider.discovery = document
    r = requests.get(gate.url("/login/oidc"), allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 503 and "временно недоступен" in r.text
    oidc_provider.discovery = {}  # repaired: the next sign-in discovers it again
    assert sign_in(gate)[1].status_code == 303


def test_a_provider_that_goes_away_after_the_redirect_is_a_503_page(oidc_gate, oidc_provider):
    gate = oidc_gate()
    http = requests.Session()
    _, callback = _start(http, gate)
    oidc_provider.stop()
    try:
        r = http.get(callback, allow_redirects=False, timeout=TIMEOUT)
    finally:
        oidc_provider.start()
    assert r.status_code == 503 and "временно недоступен" in r.text
    _no_session(http, gate, r)


# --- the second factor still applies -----------------------------------------------------------

def _enrol(gate, email: str) -> str:
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    with gate.app.extensions["gate"].engine.begin() as conn:
        row = conn.execute(sa.select(db.users).where(db.users.c.email == email)).first()
        # enrolled with the previous step's code, so the code of now is still unused
        assert changes.totp_enrol(conn, row, "test", secret, t.code(secret, -1))
    return secret


@pytest.mark.parametrize("staff_2fa", [False, True])
def test_an_enrolled_second_factor_is_still_asked(oidc_gate, staff_2fa):
    gate = oidc_gate(staff_2fa=staff_2fa)
    secret = _enrol(gate, STAFF)
    http, r = sign_in(gate, "/staff/")
    assert r.status_code == 303 and r.headers["Location"].startswith("/login/code")
    _no_session(http, gate, r)
    page = http.get(gate.url(r.headers["Location"]), timeout=TIMEOUT).text
    done = http.post(gate.url("/login/code"), allow_redirects=False, timeout=TIMEOUT,
                     headers={"Origin": gate.base},
                     data={"csrf_token": csrf_of(page), "code": t.code(secret), "next": "/staff/"})
    assert done.status_code == 303 and done.headers["Location"] == "/staff/"
    assert http.get(gate.url("/staff/"), allow_redirects=False, timeout=TIMEOUT).status_code == 200
    assert [r.action for r in _audit(gate, "oidc.login")] == ["oidc.login"]
    assert not _audit(gate, "password.login")


def test_staff_2fa_without_a_factor_leads_to_enrolment(oidc_gate):
    gate = oidc_gate(staff_2fa=True)
    http, r = sign_in(gate, "/staff/")
    assert r.status_code == 303 and r.headers["Location"].startswith("/login/enrol")
    _no_session(http, gate, r)


# --- settings ------------------------------------------------------------------------------------

def test_settings_come_all_three_or_none():
    full = {"GATE_OIDC_ISSUER": "https://id.example.ru/realms/staff/",
            "GATE_OIDC_CLIENT_ID": "kb", "GATE_OIDC_CLIENT_SECRET": "s3cret",
            "GATE_BASE_URL": "https://kb.example.ru"}
    cfg = config.from_env(full)
    assert cfg.oidc and cfg.oidc_issuer == "https://id.example.ru/realms/staff"
    assert cfg.oidc_name == config.OIDC_NAME
    assert not config.from_env({}).oidc
    for name in config.OIDC_SETTINGS:
        with pytest.raises(config.ConfigError, match=f"missing: {name}"):
            config.from_env({k: v for k, v in full.items() if k != name})
    with pytest.raises(config.ConfigError, match="https://"):
        config.from_env({**full, "GATE_OIDC_ISSUER": "http://id.example.ru"})
    with pytest.raises(config.ConfigError, match="GATE_BASE_URL"):
        config.from_env({k: v for k, v in full.items() if k != "GATE_BASE_URL"})
    local = config.from_env({**full, "GATE_MODE": "local", "GATE_OIDC_ISSUER": "http://127.0.0.1:9"})
    assert local.oidc_issuer == "http://127.0.0.1:9"


# --- a real `gate serve` ----------------------------------------------------------------------

def test_through_a_real_gate_serve(built_project, oidc_provider, tmp_path):
    """Worker processes of `gate serve` share nothing but the instance: the state cookie made
    by one is taken by another, each discovers the provider on its own."""
    from tests.helpers.processes import GateProcess

    root, _ = built_project
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    gate = GateProcess(root, tmp_path / "instance", free_port(), tmp_path / "serve.log", port=port,
                       extra_env={"GATE_BASE_URL": base, "GATE_OIDC_ISSUER": oidc_provider.issuer,
                                  "GATE_OIDC_CLIENT_ID": CLIENT_ID,
                                  "GATE_OIDC_CLIENT_SECRET": CLIENT_SECRET})
    gate.cli("user", "add", "boss@vendor.example", "--staff", "--password-stdin",
             stdin=PASSWORD + "\n")
    oidc_provider.reset(email="boss@vendor.example")
    oidc_provider.redirect_uri = base + "/login/oidc/callback"
    gate.start()
    try:
        for _ in range(3):  # likely through more than one worker
            http, done = sign_in(gate, "/staff/")
            assert done.status_code == 303 and done.headers["Location"] == "/staff/", gate.log_tail()
            staff = http.get(gate.url("/staff/"), allow_redirects=False, timeout=TIMEOUT)
            assert staff.status_code == 200
        oidc_provider.reset(email="start@client.example")
        assert sign_in(gate)[1].status_code == 403
    finally:
        gate.stop()
    rows = json.loads(gate.cli("audit", "--json"))
    assert [r["action"] for r in rows].count("oidc.login") == 3
    assert any(r["action"] == "oidc.refused" for r in rows)


def test_through_nginx_in_edge_mode(built_project, oidc_provider, tmp_path):
    """deploy/edge.sh: nginx hands /login/oidc and its callback to the gate, and the session
    that comes back carries the edition ticket nginx serves pages by."""
    from tests.helpers.processes import NGINX_MISSING, running_edge

    if NGINX_MISSING:
        pytest.skip(NGINX_MISSING)
    root, _ = built_project
    oidc_provider.reset(email="boss@vendor.example")
    settings = {"GATE_MODE": "local", "GATE_OIDC_ISSUER": oidc_provider.issuer,
                "GATE_OIDC_CLIENT_ID": CLIENT_ID, "GATE_OIDC_CLIENT_SECRET": CLIENT_SECRET}
    with running_edge(root, tmp_path, **settings) as edge:
        edge.cli("user", "add", "boss@vendor.example", "--staff", "--password-stdin",
                 stdin=PASSWORD + "\n")
        oidc_provider.redirect_uri = edge.url("/login/oidc/callback")  # the Host nginx passes on
        http, done = sign_in(edge, "/staff/")
        assert done.status_code == 303 and done.headers["Location"] == "/staff/", edge.log_tail()
        assert "kb_edge" in http.cookies and "kb_session" in http.cookies
        assert http.get(edge.url("/staff/"), allow_redirects=False,
                        timeout=TIMEOUT).status_code == 200
        oidc_provider.reset(email="start@client.example")
        assert sign_in(edge)[1].status_code == 403


# --- a real browser ------------------------------------------------------------------------------

def test_a_browser_signs_in_by_clicking_the_button(oidc_gate, tmp_path):
    from tests.helpers.browser import (CHROMEDRIVER, CHROMIUM, AxeUnavailable, axe, axe_source,
                                       by_css, chromium, path_of, serious, wait)

    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("needs Debian's chromium and chromium-driver")
    pytest.importorskip("selenium")
    gate = oidc_gate()
    driver = chromium(tmp_path / "profile")
    try:
        driver.get(gate.url("/login?next=/staff/"))
        button = by_css(driver, "a[href^='/login/oidc']")
        assert button.text == BUTTON
        try:  # the login page with its new button stays WCAG 2.1 AA (tests/test_browser_pages.py)
            assert not serious(axe(driver, axe_source()))
        except AxeUnavailable:
            pass  # this machine cannot fetch axe-core: test_browser_pages.py says so
        button.click()  # to the provider, which approves, and back through the callback
        wait(driver).until(lambda d: path_of(d) == "/staff/")
        assert "kb_session" in {c["name"] for c in driver.get_cookies()}
        assert "kb_oidc" not in {c["name"] for c in driver.get_cookies()}
        assert STAFF in driver.page_source
    finally:
        driver.quit()


def test_an_issuer_spelled_with_a_trailing_slash_signs_in(oidc_gate, oidc_provider):
    """Auth0 and some ADFS set-ups publish "https://…/" and put the slash in the ID token's iss."""
    gate = oidc_gate()
    oidc_provider.discovery = {"issuer": oidc_provider.issuer + "/"}
    oidc_provider.claims = {"iss": oidc_provider.issuer + "/"}
    _, r = sign_in(gate)
    assert r.status_code == 303 and r.headers["Location"] == "/", r.text[:500]


def test_a_provider_that_does_not_answer_is_not_waited_for_again_at_once(oidc_gate):
    """A provider whose packets are dropped: the first sign-in waits out the timeout, the next
    ones answer 503 without asking it again (no worker thread held per visitor)."""
    import socket
    import threading

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    accepted = []

    def accept_and_say_nothing():
        while True:
            try:
                accepted.append(silent.accept()[0])
            except OSError:
                return
    threading.Thread(target=accept_and_say_nothing, daemon=True).start()
    try:
        gate = oidc_gate(oidc_issuer=f"http://127.0.0.1:{silent.getsockname()[1]}")
        answers = [requests.get(gate.url("/login/oidc"), allow_redirects=False, timeout=30)
                   for _ in range(3)]
        assert [r.status_code for r in answers] == [503, 503, 503]
        assert len(accepted) == 1  # asked once
    finally:
        silent.close()
        for conn in accepted:
            conn.close()
