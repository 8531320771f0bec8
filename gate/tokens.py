"""Signed access tokens (JWT, HS256).

Claims:
- iss: "set10-kb-gate"; sub: the person's id as a string; org: organisation name;
- tariff: tariff key ("staff" for the vendor's people); sections: the sections it opens;
- iat, exp: issued and expires (seconds); jti: a random id;
- typ: "session" (the cookie, renewed from a login session; carries `sid`) or "api"
  (`gate token`, for scripts, up to 30 days);
- tid (API tokens only): the token's id in the api_tokens table (`gate token list/revoke`).
The algorithm is pinned on decode and every claim above is required.
"""

from __future__ import annotations

import secrets
import threading
import time

import jwt

ISSUER = "set10-kb-gate"
ALGORITHM = "HS256"
SESSION_TTL = 45         # seconds; short so that edge mode (which cannot ask the DB) revokes in time
MAX_API_TTL = 30 * 24 * 3600
MAX_TOKEN_LENGTH = 4096  # anything longer is refused before any parsing
REQUIRED = ["iss", "sub", "org", "tariff", "sections", "iat", "exp", "jti", "typ"]


class TokenError(Exception):
    pass


class ExpiredToken(TokenError):
    """Signature and claims are fine but the token has expired (a session token may be renewed)."""

    def __init__(self, claims):
        super().__init__("token expired")
        self.claims = claims


def issue(key: bytes, *, sub: int, org: str, tariff: str, sections, typ: str, ttl: int,
          sid: str | None = None, tid: int | None = None, now: float | None = None) -> str:
    exact = now if now is not None else time.time()
    now = int(exact)
    # "ims": the issue time in milliseconds (iat has whole seconds): a process whose accounts
    # snapshot is older than a token re-reads it when they disagree (gate.identities)
    claims = {"iss": ISSUER, "sub": str(sub), "org": org, "tariff": tariff,
              "sections": sorted(sections), "iat": now, "ims": int(exact * 1000),
              "exp": now + int(ttl), "jti": secrets.token_urlsafe(12), "typ": typ}
    if sid is not None:
        claims["sid"] = sid
    if tid is not None:
        claims["tid"] = int(tid)
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def decode(key: bytes, token: str, now: float | None = None) -> dict:
    """Verified claims, or TokenError (ExpiredToken when only the expiry fails)."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise TokenError("malformed token")
    try:
        claims = jwt.decode(token, key, algorithms=[ALGORITHM], issuer=ISSUER,
                            options={"require": REQUIRED, "verify_exp": False})
    except jwt.PyJWTError as exc:
        raise TokenError(str(exc)) from None
    if not _well_formed(claims):
        raise TokenError("malformed claims")
    if claims["exp"] <= (now if now is not None else time.time()):
        raise ExpiredToken(claims)
    return claims


def _well_formed(c: dict) -> bool:
    return (isinstance(c["sub"], str) and c["sub"].isdigit()
            and isinstance(c["sections"], list) and all(isinstance(s, str) for s in c["sections"])
            and isinstance(c["exp"], int) and isinstance(c["iat"], int) and c["iat"] <= c["exp"]
            and c["typ"] in ("session", "api")
            and (c["typ"] != "session" or isinstance(c.get("sid"), str))
            and (c.get("ims") is None or type(c["ims"]) is int)
            and (c.get("tid") is None or (type(c["tid"]) is int and c["typ"] == "api")))


class DecodeCache:
    """Verified claims by token string, kept until the token expires (no repeated HMAC/JSON work)."""

    def __init__(self, key: bytes, size: int = 20000):
        self.key, self.size, self._items = key, size, {}
        self._lock = threading.Lock()  # pruning must not race with other threads' inserts

    def get(self, token: str, now: float | None = None) -> dict:
        now = now if now is not None else time.time()
        hit = self._items.get(token)
        if hit is not None and hit["exp"] > now:
            return hit
        claims = decode(self.key, token, now)
        with self._lock:
            if len(self._items) >= self.size:
                self._items = {t: c for t, c in list(self._items.items()) if c["exp"] > now}
                if len(self._items) >= self.size:
                    self._items = {}
            self._items[token] = claims
        return claims
