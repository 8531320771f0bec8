"""Sign-in from the vendor's client portal: a JWT the portal signs, handed to /sso/jwt.

The portal says who the person is; our own contract says what they may read. A token is
accepted when (`verify`):
- its header names no key of its own (`jku`, `jwk`, `x5u`, `x5c` refused), its `kid` names one
  of our keys (gate.sso_keys) and its `alg` is that key's one algorithm (so `none`, and HS256
  made with an RSA key's public PEM, never fit);
- the signature holds, `iss` is GATE_SSO_ISSUER and `aud` is GATE_SSO_AUDIENCE;
- `iat` is within the last 5 minutes (30 s ahead allowed for clocks), `exp` is in the future
  and at most 5 minutes after `iat`, `nbf` (if any) has come (same 30 s);
- `jti`, `email` and `org` are strings; `jti` was never used before (`use_once`, a row until
  `exp` in the database, so it holds across processes and hosts).
Other claims (`sections`, `tariff`, ...) are ignored. `decide` then says whether the person of
a verified token may sign in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass

import jwt
import sqlalchemy as sa

from gate import accounts
from gate.access import contract_active
from gate.db import orgs, sso_tokens, users
from gate.sso_keys import KeyRing

MAX_TOKEN = 8 * 1024        # bytes of the token as sent
MAX_AGE = 300               # seconds: iat at most this old, exp at most this after iat
SKEW = 30                   # seconds a portal's clock may run ahead of ours
REQUIRED = ("iss", "aud", "iat", "exp", "jti", "email", "org")
FOREIGN_KEY_HEADERS = ("jku", "jwk", "x5u", "x5c")

# Why a handoff is refused: the audit row's reason. MALFORMED ones answer 400, others 403.
MALFORMED = frozenset({"oversize", "no-token", "not-a-jwt", "claims", "bad-email"})


class Refused(Exception):
    """A token not accepted; `reason` is one of the names above or below (for the audit)."""

    def __init__(self, reason: str, email: str | None = None):
        super().__init__(reason)
        self.reason, self.email = reason, email

    @property
    def malformed(self) -> bool:
        return self.reason in MALFORMED


@dataclass(frozen=True)
class Claims:
    email: str
    org: str
    jti: str
    issuer: str
    expires: int


def verify(token: str | None, keys: KeyRing, issuer: str, audience: str, now: float) -> Claims:
    """The claims of a token the portal signed for us; Refused otherwise."""
    if not token:
        raise Refused("no-token")
    if len(token.encode("utf-8", "surrogatepass")) > MAX_TOKEN:
        raise Refused("oversize")
    try:
        header = jwt.get_unverified_header(token)  # also refuses a kid that is no string
    except (jwt.PyJWTError, ValueError, TypeError):
        raise Refused("not-a-jwt") from None
    if any(name in header for name in FOREIGN_KEY_HEADERS):
        raise Refused("foreign-key")
    key = keys.find(header.get("kid"))
    if key is None:
        raise Refused("unknown-key")
    if header.get("alg") != key.algorithm:
        raise Refused("wrong-algorithm")
    try:
        claims = jwt.decode(
            token, key.key, algorithms=[key.algorithm], audience=audience, issuer=issuer,
            # times are checked below, with one clock and the 30 s allowance for iat and nbf
            options={"require": list(REQUIRED), "verify_exp": False, "verify_iat": False,
                     "verify_nbf": False})
    except jwt.MissingRequiredClaimError:
        raise Refused("claims") from None
    except jwt.InvalidSignatureError:
        raise Refused("signature") from None
    except jwt.InvalidAudienceError:
        raise Refused("audience") from None
    except jwt.InvalidIssuerError:
        raise Refused("issuer") from None
    except (jwt.PyJWTError, ValueError, TypeError):  # a key of the wrong kind, bad padding, ...
        raise Refused("signature") from None
    problem = time_problem(claims, now)
    if problem:
        raise Refused(problem)
    email, org, jti = claims["email"], claims["org"], claims["jti"]
    if not all(isinstance(v, str) and 0 < len(v) <= 254 for v in (email, org, jti)):
        raise Refused("claims")
    return Claims(email=email.strip().lower(), org=org.strip(), jti=jti, issuer=claims["iss"],
                  expires=math.ceil(claims["exp"]))


def _number(value) -> bool:
    """A finite number: NaN compares false with everything and would pass every time check."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def time_problem(claims: dict, now: float) -> str | None:
    """What is wrong with a token's times at `now` (a reason), or None."""
    iat, exp, nbf = claims.get("iat"), claims.get("exp"), claims.get("nbf")
    if not (_number(iat) and _number(exp)) or (nbf is not None and not _number(nbf)):
        return "claims"
    if iat > now + SKEW:
        return "issued-ahead"
    if iat < now - MAX_AGE:
        return "too-old"
    if exp <= now:
        return "expired"
    if exp > iat + MAX_AGE:
        return "lives-too-long"
    if nbf is not None and nbf > now + SKEW:
        return "not-yet-valid"
    return None


def use_once(conn, claims: Claims) -> None:
    """Notes the token's jti, first in the sign-in's transaction; Refused("replay") when it was
    used before, by this process or any other (the primary key decides a race; the caller's
    transaction is then rolled back with nothing else in it)."""
    token_id = hashlib.sha256(f"{claims.issuer}\x1f{claims.jti}".encode()).hexdigest()
    expires = dt.datetime.fromtimestamp(claims.expires, dt.timezone.utc).replace(tzinfo=None)
    try:
        conn.execute(sso_tokens.insert().values(id=token_id, expires_at=expires))
    except sa.exc.IntegrityError:
        raise Refused("replay", claims.email) from None


def prune(engine, now: dt.datetime) -> int:
    """Forgets the jtis of tokens that have expired (they are refused for that anyway), MAX_AGE
    after their expiry: a host whose clock runs ahead must not forget a jti another host still
    accepts."""
    with engine.begin() as conn:
        return conn.execute(sso_tokens.delete().where(
            sso_tokens.c.expires_at < now - dt.timedelta(seconds=MAX_AGE))).rowcount


# --- who may sign in --------------------------------------------------------------------------

SIGN_IN, CREATE = "sign-in", "create"


@dataclass(frozen=True)
class Org:
    id: int
    vendor: bool
    active: bool


@dataclass(frozen=True)
class Person:
    org_id: int
    staff: bool
    disabled: bool


def decide(org: Org | None, person: Person | None, create: bool) -> str:
    """SIGN_IN, CREATE (a new person of the organisation), or the reason of a refusal. The
    token's organisation `org` (None: unknown) and the person its e-mail names (None: new)."""
    if person is not None and person.staff:
        return "staff"  # staff never sign in through the portal, whatever it says
    if org is None:
        return "unknown-org"
    if org.vendor:
        return "vendor-org"
    if not org.active:
        return "ended-org"
    if person is None:
        return CREATE if create else "no-create"
    if person.org_id != org.id:
        return "other-org"
    if person.disabled:
        return "disabled"
    return SIGN_IN


def facts(conn, claims: Claims, today: dt.date) -> tuple[Org | None, Person | None, object]:
    """What `decide` needs, read from the database: the organisation the token names (by its
    external id or its name; a value naming two organisations names none), the person of the
    e-mail, and that person's row (or None)."""
    rows = conn.execute(sa.select(orgs).where(
        sa.or_(orgs.c.external_id == claims.org, orgs.c.name == claims.org))).all()
    org = None
    if len(rows) == 1:
        r = rows[0]
        org = Org(r.id, bool(r.is_vendor), contract_active(r.until, r.ended_at, today))
    row = conn.execute(sa.select(users).where(users.c.email == claims.email,
                                              users.c.erased_at.is_(None))).first()
    person = Person(row.org_id, bool(row.is_staff), bool(row.disabled)) if row else None
    return org, person, row


def org_name(conn, org_id: int) -> str:
    return conn.execute(sa.select(orgs.c.name).where(orgs.c.id == org_id)).scalar()


def valid_email(email: str) -> bool:
    try:
        accounts.normalize_email(email)
    except accounts.AccountError:
        return False
    return True
