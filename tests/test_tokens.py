"""Hostile tokens are refused: a parametrized table."""

import base64
import json
import time

import jwt
import pytest

from gate import tokens

KEY = b"k" * 64  # long enough for HS512 too, so only the algorithm pin refuses it
OTHER = b"o" * 64


def good(**over):
    now = int(time.time())
    claims = {"iss": tokens.ISSUER, "sub": "7", "org": "O", "tariff": "start",
              "sections": ["launches"], "iat": now, "exp": now + 60, "jti": "j", "typ": "api"}
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not ...}


def b64(obj):
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def tampered():
    token = jwt.encode(good(), KEY, algorithm="HS256")
    head, body, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["sections"] = ["launches", "functionality", "maintenance", "claim-desk"]
    return f"{head}.{b64(claims)}.{sig}"


HOSTILE = {
    "alg none": b64({"alg": "none", "typ": "JWT"}) + "." + b64(good()) + ".",
    "wrong key": jwt.encode(good(), OTHER, algorithm="HS256"),
    "HS512 with right key": jwt.encode(good(), KEY, algorithm="HS512"),
    "tampered claims": tampered(),
    "missing exp": jwt.encode(good(exp=...), KEY, algorithm="HS256"),
    "missing sub": jwt.encode(good(sub=...), KEY, algorithm="HS256"),
    "missing sections": jwt.encode(good(sections=...), KEY, algorithm="HS256"),
    "integer sub": jwt.encode(good(sub=7), KEY, algorithm="HS256"),
    "wrong issuer": jwt.encode(good(iss="evil"), KEY, algorithm="HS256"),
    "unknown typ": jwt.encode(good(typ="admin"), KEY, algorithm="HS256"),
    "session without sid": jwt.encode(good(typ="session"), KEY, algorithm="HS256"),
    "sections not a list": jwt.encode(good(sections="launches"), KEY, algorithm="HS256"),
    "oversized": jwt.encode(good(pad="x" * 5000), KEY, algorithm="HS256"),
    "garbage": "not.a.token",
    "empty": "",
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_tokens_are_refused(name):
    with pytest.raises(tokens.TokenError) as err:
        tokens.decode(KEY, HOSTILE[name])
    assert not isinstance(err.value, tokens.ExpiredToken)


def test_expired_token_is_reported_as_expired_with_its_claims():
    t = jwt.encode(good(iat=int(time.time()) - 100, exp=int(time.time()) - 10), KEY, algorithm="HS256")
    with pytest.raises(tokens.ExpiredToken) as err:
        tokens.decode(KEY, t)
    assert err.value.claims["sub"] == "7"


def test_issued_token_round_trips_with_every_claim():
    t = tokens.issue(KEY, sub=3, org="O", tariff="start", sections={"maintenance"}, typ="session",
                     ttl=45, sid="s")
    claims = tokens.decode(KEY, t)
    assert set(tokens.REQUIRED) <= set(claims)
    assert claims["sub"] == "3" and claims["sections"] == ["maintenance"] and claims["exp"] - claims["iat"] == 45


def test_cache_returns_claims_without_decoding_again_until_expiry(monkeypatch):
    cache = tokens.DecodeCache(KEY)
    t = tokens.issue(KEY, sub=3, org="O", tariff="start", sections=[], typ="api", ttl=60)
    first = cache.get(t)
    with monkeypatch.context() as m:
        m.setattr(tokens, "decode", lambda *a, **k: pytest.fail("decoded twice"))
        assert cache.get(t) is first
    with pytest.raises(tokens.TokenError):
        cache.get(t, now=time.time() + 3600)  # expired: decoded again, and refused
