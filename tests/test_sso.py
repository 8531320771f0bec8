"""gate.sso and gate.sso_keys without HTTP: the portal's token checks as a table of hostile
tokens, who may sign in as a truth table, key rotation through the JWKS file and the bounded
refetch of a JWKS URL (served for real on 127.0.0.1)."""

from __future__ import annotations

import json
import time

import pytest

from gate import config, sso
from gate.sso import CREATE, SIGN_IN, Org, Person, Refused, decide, verify
from gate.sso_keys import KeyRing, KeysError, parse_jwks
from tests.helpers.sso import (AUDIENCE, ISSUER, SECRET, JwksServer, PortalKey, forged, hmac_with,
                               jwks, mint, unsigned)

RSA = PortalKey("rsa-1", "RS256")
EC = PortalKey("ec-1", "ES256")
ED = PortalKey("ed-1", "EdDSA")
STRANGER = PortalKey("rsa-1", "RS256")  # same kid as RSA, a key we were never given


@pytest.fixture
def ring(tmp_path):
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks(RSA, EC, ED)))
    return KeyRing(SECRET.encode(), path)


def check(token, ring, now=None):
    return verify(token, ring, ISSUER, AUDIENCE, time.time() if now is None else now)


@pytest.mark.parametrize("make", [
    lambda: mint(SECRET),
    lambda: mint(SECRET, kid="secret"),
    lambda: RSA.mint(),
    lambda: EC.mint(),
    lambda: ED.mint(),
    lambda: RSA.mint(aud=[AUDIENCE, "https://other.example"]),
    lambda: RSA.mint(sections=["claim-desk"], tariff="start", is_staff=True),  # ignored extras
    lambda: RSA.mint(org="EXT-42"),  # the org claim is checked against the database later
    lambda: RSA.mint(iat=int(time.time()) + 25, exp=int(time.time()) + 200),  # clock ahead
    lambda: RSA.mint(nbf=int(time.time()) - 5),
], ids=["hs256", "hs256-kid", "rs256", "es256", "eddsa", "aud-list", "extra-claims",
        "external-id", "iat-25s-ahead", "nbf-past"])
def test_tokens_the_portal_signed_are_accepted(ring, make):
    claims = check(make(), ring)
    assert claims.email == "start@client.example" and claims.issuer == ISSUER


def _now():
    return int(time.time())


# (name, token maker, reason): each row fails without its own check
HOSTILE = [
    ("alg-none", lambda: unsigned(), "wrong-algorithm"),
    ("alg-none-with-kid", lambda: unsigned(headers={"kid": "rsa-1"}), "wrong-algorithm"),
    ("alg-none-secret-kid", lambda: unsigned(headers={"kid": "secret"}), "wrong-algorithm"),
    ("hs256-with-rsa-public-pem", lambda: hmac_with(RSA.public_pem(), "rsa-1"), "wrong-algorithm"),
    ("rs256-key-as-es256", lambda: mint(EC.private, "ES256", kid="rsa-1"), "wrong-algorithm"),
    ("secret-as-rs256", lambda: mint(RSA.private, "RS256", kid="secret"),
     "wrong-algorithm"),
    ("jku", lambda: RSA.mint(headers={"jku": "https://evil.example/jwks"}), "foreign-key"),
    ("jwk", lambda: RSA.mint(headers={"jwk": RSA.jwk()}), "foreign-key"),
    ("x5u", lambda: RSA.mint(headers={"x5u": "https://evil.example/c.pem"}), "foreign-key"),
    ("x5c", lambda: RSA.mint(headers={"x5c": ["MIIB"]}), "foreign-key"),
    ("kid-path", lambda: mint(RSA.private, "RS256", kid="../../etc/passwd"), "unknown-key"),
    ("kid-long", lambda: mint(RSA.private, "RS256", kid="k" * 5000), "unknown-key"),
    ("kid-number", lambda: forged({"alg": "RS256", "kid": 1}), "not-a-jwt"),
    ("kid-list", lambda: forged({"alg": "RS256", "kid": ["rsa-1"]}), "not-a-jwt"),
    ("kid-null-byte", lambda: mint(RSA.private, "RS256", kid="rsa-1\x00"), "unknown-key"),
    ("unconfigured-key", lambda: STRANGER.mint(), "signature"),
    ("wrong-secret", lambda: mint("another-secret-0123456789abcdef-xyz"), "signature"),
    ("expired", lambda: RSA.mint(iat=_now() - 200, exp=_now() - 1), "expired"),
    ("nbf-future", lambda: RSA.mint(nbf=_now() + 120), "not-yet-valid"),
    ("iat-too-old", lambda: RSA.mint(iat=_now() - 301, exp=_now() + 60), "too-old"),
    ("iat-31s-ahead", lambda: RSA.mint(iat=_now() + 31, exp=_now() + 200), "issued-ahead"),
    ("exp-too-far", lambda: RSA.mint(exp=_now() + 301), "lives-too-long"),
    ("iat-string", lambda: RSA.mint(iat="1700000000"), "claims"),
    ("iat-nan", lambda: RSA.mint(iat=float("nan"), exp=_now() + 10 * 365 * 86400), "claims"),
    ("exp-nan", lambda: RSA.mint(iat=float("nan"), exp=float("nan")), "claims"),
    ("nbf-nan", lambda: RSA.mint(nbf=float("nan")), "claims"),
    ("exp-infinite", lambda: RSA.mint(exp=float("inf")), "claims"),
    ("wrong-iss", lambda: RSA.mint(iss="https://evil.example"), "issuer"),
    ("wrong-aud", lambda: RSA.mint(aud="https://evil.example"), "audience"),
    ("email-not-string", lambda: RSA.mint(email=["a@b.example"]), "claims"),
    ("not-a-jwt", lambda: "not.a.jwt", "not-a-jwt"),
    ("empty", lambda: "", "no-token"),
    ("oversize", lambda: RSA.mint(padding="x" * 9000), "oversize"),
    *[(f"missing-{name}", (lambda n=name: RSA.mint(**{n: None})), "claims")
      for name in sso.REQUIRED],
]


@pytest.mark.parametrize("make, reason", [(m, r) for _, m, r in HOSTILE],
                         ids=[n for n, _, _ in HOSTILE])
def test_hostile_tokens_are_refused(ring, make, reason):
    with pytest.raises(Refused) as refused:
        check(make(), ring)
    assert refused.value.reason == reason


def test_malformed_tokens_answer_400_the_rest_403():
    assert Refused("oversize").malformed and Refused("claims").malformed
    assert not Refused("signature").malformed and not Refused("replay").malformed


# --- who may sign in: every combination of organisation and person --------------------------
ACTIVE, ENDED, VENDOR = Org(1, False, True), Org(1, False, False), Org(9, True, True)
MEMBER, OTHER = Person(1, False, False), Person(2, False, False)
OFF, STAFF = Person(1, False, True), Person(9, True, False)

TRUTH = [  # org, person, create -> verdict
    (ACTIVE, MEMBER, True, SIGN_IN), (ACTIVE, MEMBER, False, SIGN_IN),
    (ACTIVE, None, True, CREATE), (ACTIVE, None, False, "no-create"),
    (ACTIVE, OTHER, True, "other-org"), (ACTIVE, OFF, True, "disabled"),
    (ACTIVE, STAFF, True, "staff"), (ENDED, MEMBER, True, "ended-org"),
    (ENDED, None, True, "ended-org"), (ENDED, STAFF, True, "staff"),
    (VENDOR, None, True, "vendor-org"), (VENDOR, STAFF, True, "staff"),
    (VENDOR, MEMBER, True, "vendor-org"), (None, None, True, "unknown-org"),
    (None, MEMBER, True, "unknown-org"), (None, STAFF, True, "staff"),
    (Org(2, False, True), OTHER, True, SIGN_IN),  # another organisation's own person
]


@pytest.mark.parametrize("org, person, create, verdict", TRUTH)
def test_who_may_sign_in(org, person, create, verdict):
    assert decide(org, person, create) == verdict


# --- keys ---------------------------------------------------------------------------------------

def test_rotation_through_the_jwks_file(tmp_path):
    old, new = PortalKey("2026-01", "RS256"), PortalKey("2026-07", "ES256")
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks(old)))
    clock = [1000.0]
    ring = KeyRing(None, path, check_every=60, clock=lambda: clock[0])
    check(old.mint(), ring)
    path.write_text(json.dumps(jwks(old, new)))  # step 1: the new key is added
    with pytest.raises(Refused, match="unknown-key"):  # not before the minute's look
        check(new.mint(), ring)
    clock[0] += 61
    check(new.mint(), ring)
    check(old.mint(), ring)  # both valid while the portal switches
    path.write_text(json.dumps(jwks(new)))  # step 3: the old key is removed
    clock[0] += 61
    with pytest.raises(Refused, match="unknown-key"):
        check(old.mint(), ring)
    check(new.mint(), ring)
    path.write_text("{broken")  # a half-written file keeps the keys known so far
    clock[0] += 61
    check(new.mint(), ring)


def test_jwks_url_refetches_on_an_unknown_kid_at_most_once_a_minute():
    first, second, third = PortalKey("a"), PortalKey("b", "ES256"), PortalKey("c", "EdDSA")
    server = JwksServer(jwks(first)).start()
    try:
        clock = [1000.0]
        ring = KeyRing(None, None, server.url, clock=lambda: clock[0])
        assert server.requests == 1
        check(first.mint(), ring)
        assert server.requests == 1  # cached
        server.document = jwks(first, second, third)
        clock[0] += 61
        check(second.mint(), ring)  # unknown kid: one refetch finds it
        assert server.requests == 2
        server.document = jwks(first, second, third, PortalKey("d"))
        with pytest.raises(Refused, match="unknown-key"):
            check(mint(first.private, "RS256", kid="d"), ring)  # within the minute: no refetch
        with pytest.raises(Refused, match="unknown-key"):
            check(mint(first.private, "RS256", kid="nonsense"), ring)
        assert server.requests == 2
        check(third.mint(), ring)  # already fetched with the second
        server.failing = True
        clock[0] += 700  # the 10 minutes' refresh fails: the cached keys stay
        check(first.mint(), ring)
        assert server.requests == 3
    finally:
        server.stop()


def test_jwks_keeps_only_signing_keys_of_the_allowed_kinds():
    doc = jwks(RSA, EC)
    doc["keys"] += [{"kty": "oct", "kid": "sym", "k": "c2VjcmV0"},
                    {**RSA.jwk(), "kid": "ps", "alg": "PS256"},
                    {**RSA.jwk(), "kid": "enc", "use": "enc"},
                    {**EC.jwk(), "kid": None}, "junk"]
    assert sorted(parse_jwks(json.dumps(doc))) == ["ec-1", "rsa-1"]
    with pytest.raises(KeysError):
        parse_jwks("[]")


@pytest.mark.parametrize("env, message", [
    ({"GATE_SSO_SECRET": "short"}, "at least 32 bytes"),
    ({"GATE_SSO_SECRET": SECRET}, "GATE_SSO_ISSUER"),
    ({"GATE_SSO_SECRET": SECRET, "GATE_SSO_ISSUER": ISSUER}, "GATE_SSO_AUDIENCE"),
    ({"GATE_SSO_JWKS_FILE": "/nonexistent/jwks.json"}, "no such file"),
    ({"GATE_SSO_JWKS_URL": "http://portal.example/jwks"}, "https"),
    ({"GATE_SSO_JWKS_URL": "https://a/j", "GATE_SSO_JWKS_FILE": "/x"}, "not both"),
    ({"GATE_SSO_CREATE": "yes"}, "GATE_SSO_CREATE"),
])
def test_settings_are_refused_at_start_with_one_line(env, message):
    with pytest.raises(config.ConfigError, match=message) as error:
        config.from_env(env)
    assert "\n" not in str(error.value)


def test_audience_defaults_to_the_base_url_and_no_key_means_off():
    assert config.from_env({}).sso is None
    cfg = config.from_env({"GATE_SSO_SECRET": SECRET, "GATE_SSO_ISSUER": ISSUER,
                           "GATE_BASE_URL": "https://kb.example/"})
    assert cfg.sso.audience == "https://kb.example" and cfg.sso.create


# --- single use across processes, on SQLite and PostgreSQL ------------------------------------

@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gate.sqlite3'}"
    return request.getfixturevalue("cluster").create_database(f"sso_{tmp_path.name[-20:]}".lower()
                                                              .replace("-", "_"))


def test_a_jti_is_used_once_across_processes_and_pruned_once_expired(database_url):
    import datetime as dt

    from gate.clock import utcnow
    from gate.db import migrate, sso_tokens
    from gate.engine import make_engine
    from zoneinfo import ZoneInfo

    from gate.audit import Refusals
    from gate.housekeeping import Housekeeper
    from gate.identities import Identities

    one, other = make_engine(database_url), make_engine(database_url)  # two gate processes
    try:
        migrate(one)
        now = int(time.time())
        token = sso.Claims(email="a@b.example", org="x", jti="j-1", issuer=ISSUER, expires=now + 60)
        with one.begin() as conn:
            sso.use_once(conn, token)
        with pytest.raises(Refused, match="replay"), other.begin() as conn:
            sso.use_once(conn, token)
        other_issuer = sso.Claims(**{**token.__dict__, "issuer": "https://other.example"})
        with other.begin() as conn:
            sso.use_once(conn, other_issuer)  # a jti is unique per issuer
        old = sso.Claims(**{**token.__dict__, "jti": "j-0", "expires": now - sso.MAX_AGE - 10})
        recent = sso.Claims(**{**token.__dict__, "jti": "j-2", "expires": now - 10})
        with one.begin() as conn:
            sso.use_once(conn, old)
            sso.use_once(conn, recent)  # expired, but another host's clock may be behind

        identities = Identities(one, b"k" * 32, {}, ZoneInfo("Europe/Moscow"))
        Housekeeper(one, identities, Refusals(one), audit_days=365).tick()
        with one.connect() as conn:
            left = conn.execute(sso_tokens.select()).all()
        assert len(left) == 3 and all(r.expires_at > utcnow() - dt.timedelta(seconds=sso.MAX_AGE)
                                      for r in left)
    finally:
        one.dispose()
        other.dispose()


@pytest.mark.parametrize("target, followed", [("elsewhere", False), ("local", True)])
def test_a_jwks_url_redirect_never_downgrades_to_plain_http(target, followed):
    """Keys must not come over plain http from elsewhere, even by a redirect (a local http
    sidecar may redirect to itself, as the setting allows). "Elsewhere" is 127.0.0.2: another
    host to the gate's rule, yet reachable here, so following it would load its keys."""
    server = JwksServer(jwks()).start()
    other = JwksServer(jwks(RSA), host="127.0.0.2").start()
    try:
        server.redirect = other.url if target == "elsewhere" else server.url + "?moved"
        original = server.httpd.RequestHandlerClass.do_GET

        def once_then_serve(handler):
            if server.requests >= 1:
                server.redirect, server.document = None, jwks(RSA)
            original(handler)
        server.httpd.RequestHandlerClass.do_GET = once_then_serve
        ring = KeyRing(None, None, server.url, clock=lambda: 1000.0)
        if followed:
            check(RSA.mint(), ring)
            assert server.requests == 2
        else:
            with pytest.raises(Refused, match="unknown-key"):
                check(RSA.mint(), ring)
            assert other.requests == 0
    finally:
        server.stop()
        other.stop()
