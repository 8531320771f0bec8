"""The second factor: a TOTP authenticator (RFC 6238, pyotp) and recovery codes.

A person's factor is one row of gate.db.totp_factors: the base32 secret and `last_step`, the
30-second time step of the last code accepted. A code is accepted for its own step, the one
before or the one after (clocks drift), and only for a step later than `last_step`, written
by a conditional UPDATE: a code seen once (on the wire, over a shoulder) is refused ever after,
even by a second gate process racing the first. Recovery codes (RECOVERY_CODES of them, shown
once at enrolment) are stored as sha256 hashes and each works once.

Between the password and the code the person has no session: the login carries a `pending`
state, signed with the gate's key, naming the person, what is still asked of them ("code", or
"enrol" for staff without a factor under GATE_STAFF_2FA) and when it expires (PENDING_TTL).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import re
import secrets
import time

import pyotp
import segno
import sqlalchemy as sa

from gate.clock import utcnow
from gate.db import totp_factors, totp_recovery

STEP = 30
DRIFT = 1            # steps either side of now
RECOVERY_CODES = 10
PENDING_TTL = 300    # seconds between the password and the code
ISSUER = "База знаний SET Retail 10"
_SECRET_RE = re.compile(r"[A-Z2-7]{32}")
_CODE_RE = re.compile(r"\d{6}")


def new_secret() -> str:
    return pyotp.random_base32()  # 160 bits, as RFC 4226 recommends


def valid_secret(secret: str) -> bool:
    return bool(_SECRET_RE.fullmatch(secret or ""))


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def qr_data_uri(uri: str) -> str:
    """The QR code of `uri` as an SVG data: URI (the CSP allows data: images; no outside
    service ever sees the secret)."""
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=5, border=4)
    return "data:image/svg+xml;base64," + base64.b64encode(out.getvalue()).decode()


def code_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step whose code `code` is (now, or one step either side), else None."""
    code = _clean(code)
    if not _CODE_RE.fullmatch(code):
        return None
    totp = pyotp.TOTP(secret)
    current = int((time.time() if now is None else now) // STEP)
    for step in range(current - DRIFT, current + DRIFT + 1):
        if hmac.compare_digest(totp.at(step * STEP), code):
            return step
    return None


def _clean(code: str) -> str:
    return re.sub(r"[\s-]", "", code or "").lower()[:64]


def _hash(code: str) -> str:
    return hashlib.sha256(_clean(code).encode()).hexdigest()


def factor(conn, user_id: int):
    return conn.execute(sa.select(totp_factors).where(totp_factors.c.user_id == user_id)).first()


def enrolled(conn, user_id: int) -> bool:
    return factor(conn, user_id) is not None


def recovery_left(conn, user_id: int) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(totp_recovery).where(
        totp_recovery.c.user_id == user_id, totp_recovery.c.used_at.is_(None))).scalar()


def enrol(conn, user_id: int, secret: str, code: str, now: float | None = None) -> list[str] | None:
    """Stores the factor when `code` is a current code of `secret` (the authenticator was set
    up right); returns the new recovery codes (shown once), or None and stores nothing.
    Replaces an earlier factor and its recovery codes."""
    step = code_step(secret, code, now) if valid_secret(secret) else None
    if step is None:
        return None
    remove(conn, user_id)
    conn.execute(totp_factors.insert().values(user_id=user_id, secret=secret,
                                              enrolled_at=utcnow(), last_step=step))
    codes = [f"{secrets.token_hex(3)}-{secrets.token_hex(3)}" for _ in range(RECOVERY_CODES)]
    conn.execute(totp_recovery.insert(), [dict(user_id=user_id, code_hash=_hash(c)) for c in codes])
    return codes


def verify(conn, user_id: int, code: str, now: float | None = None) -> str | None:
    """Accepts a current TOTP code not used before ("totp") or an unused recovery code
    ("recovery"), marking it used in the caller's transaction; None otherwise."""
    row = factor(conn, user_id)
    if row is None:
        return None
    step = code_step(row.secret, code, now)
    if step is not None:
        done = conn.execute(totp_factors.update().where(
            totp_factors.c.user_id == user_id, totp_factors.c.last_step < step)
            .values(last_step=step))
        return "totp" if done.rowcount == 1 else None
    if _CODE_RE.fullmatch(_clean(code)) or not _clean(code):
        return None
    done = conn.execute(totp_recovery.update().where(
        totp_recovery.c.user_id == user_id, totp_recovery.c.code_hash == _hash(code),
        totp_recovery.c.used_at.is_(None)).values(used_at=utcnow()))
    return "recovery" if done.rowcount >= 1 else None


def remove(conn, user_id: int) -> bool:
    """Deletes the person's factor and recovery codes; False when they had none."""
    conn.execute(totp_recovery.delete().where(totp_recovery.c.user_id == user_id))
    return conn.execute(totp_factors.delete().where(totp_factors.c.user_id == user_id)).rowcount > 0


# --- the state between the password and the code ---------------------------------------------

PURPOSES = ("code", "enrol")
# how the person proved who they are before this step -> the audit action of the sign-in
# that completes it (an accepted invitation has its own row: user.password via invitation)
FIRST_FACTORS = {"password": "password.login", "invitation": None, "sso": "sso.login",
                 "oidc": "oidc.login"}


def _mac(key: bytes, payload: str) -> str:
    return hmac.new(key, b"kb-second-factor:" + payload.encode(), "sha256").hexdigest()


def pending(key: bytes, purpose: str, user_id: int, now: float | None = None,
            via: str = "password") -> str:
    """A signed "this person proved who they are `via` …; `purpose` is still to do"
    (PENDING_TTL)."""
    assert purpose in PURPOSES and via in FIRST_FACTORS
    expires = int((time.time() if now is None else now) + PENDING_TTL)
    payload = f"{purpose}.{int(user_id)}.{expires}.{via}"
    return f"{payload}.{_mac(key, payload)}"


def read_pending_state(key: bytes, value: str, purpose: str,
                       now: float | None = None) -> tuple[int, str] | None:
    """(user id, first factor) of a valid, unexpired `pending` state for `purpose`, else None."""
    parts = (value or "")[:200].split(".")
    if len(parts) != 5:
        return None
    payload, mac = ".".join(parts[:4]), parts[4]
    if not hmac.compare_digest(_mac(key, payload), mac) or parts[0] != purpose:
        return None
    try:
        user_id, expires = int(parts[1]), int(parts[2])
    except ValueError:
        return None
    if parts[3] not in FIRST_FACTORS:
        return None
    return (user_id, parts[3]) if expires > (time.time() if now is None else now) else None


def read_pending(key: bytes, value: str, purpose: str, now: float | None = None) -> int | None:
    """The user id of a valid, unexpired `pending` state for `purpose`, else None."""
    state = read_pending_state(key, value, purpose, now)
    return None if state is None else state[0]
