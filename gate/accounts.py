"""Organisations and people: the operations behind the CLI and the login form."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import time
from types import SimpleNamespace

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gate.clock import today, utcnow
from gate.access import Identity, identity_of
from gate.db import orgs, sessions, users
from gate.tariffs import STAFF_TARIFF

VENDOR_ORG = "Crystals"  # the vendor's own organisation: its people are staff
# ASCII only: the address goes into mail headers and SMTP commands as it is.
EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
MIN_PASSWORD = 10
MAX_PASSWORD = 256
_hasher = PasswordHasher()
# verified against when the e-mail is unknown, so both failures take the same time
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class AccountError(ValueError):
    pass


def normalize_email(email: str) -> str:
    email = (email or "").strip().lower()
    if len(email) > 254 or not EMAIL_RE.match(email):
        raise AccountError(f"'{email}' is not a valid e-mail address")
    return email


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"password must have at most {MAX_PASSWORD} characters")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if len(password or "") > MAX_PASSWORD:
        return False
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password or "") and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def parse_date(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise AccountError(f"bad date '{value}': expected YYYY-MM-DD") from None


# --- organisations -------------------------------------------------------------------------

def _org(conn, name: str):
    row = conn.execute(sa.select(orgs).where(orgs.c.name == name)).first()
    if row is None or row.is_vendor:
        raise AccountError(f"unknown organisation '{name}'")
    return row


def add_org(conn, name: str, tariff: str, tariffs: dict, until: str | None = None) -> int:
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise AccountError("organisation name must have 1 to 200 characters")
    if not name.isprintable():  # tabs and line breaks would break listings and mail headers
        raise AccountError("organisation name must not contain tabs, line breaks or control characters")
    if tariff not in tariffs:
        raise AccountError(f"unknown tariff '{tariff}' (known: {', '.join(tariffs)})")
    if conn.execute(sa.select(orgs.c.id).where(orgs.c.name == name)).first() or name == VENDOR_ORG:
        raise AccountError(f"organisation '{name}' already exists")
    return conn.execute(orgs.insert().values(
        name=name, tariff=tariff, until=parse_date(until), is_vendor=False,
        created_at=utcnow())).inserted_primary_key[0]


def set_org(conn, name: str, tariffs: dict, tariff: str | None = None, until: str | None = None):
    row = _org(conn, name)
    values = {}
    if tariff is not None:
        if tariff not in tariffs:
            raise AccountError(f"unknown tariff '{tariff}' (known: {', '.join(tariffs)})")
        values["tariff"] = tariff
    if until is not None:
        values["until"] = parse_date(until)
        values["ended_at"] = None
    if not values:
        raise AccountError("nothing to change: give --tariff and/or --until")
    conn.execute(orgs.update().where(orgs.c.id == row.id).values(**values))


def end_org(conn, name: str):
    row = _org(conn, name)
    conn.execute(orgs.update().where(orgs.c.id == row.id).values(ended_at=utcnow()))


def list_orgs(conn):
    return conn.execute(sa.select(orgs).where(orgs.c.is_vendor.is_(False)).order_by(orgs.c.name)).all()


def vendor_org_id(conn) -> int:
    row = conn.execute(sa.select(orgs.c.id).where(orgs.c.is_vendor.is_(True))).first()
    if row:
        return row.id
    return conn.execute(orgs.insert().values(
        name=VENDOR_ORG, tariff=STAFF_TARIFF, is_vendor=True,
        created_at=utcnow())).inserted_primary_key[0]


# --- people --------------------------------------------------------------------------------

def _user(conn, email: str):
    row = conn.execute(sa.select(users).where(users.c.email == normalize_email(email))).first()
    if row is None:
        raise AccountError(f"unknown user '{email}'")
    return row


def add_user(conn, email: str, password: str, org: str | None = None, staff: bool = False) -> int:
    email = normalize_email(email)
    check_password_strength(password)
    org_id = vendor_org_id(conn) if staff else _org(conn, org).id
    if conn.execute(sa.select(users.c.id).where(users.c.email == email)).first():
        raise AccountError(f"user '{email}' already exists")
    return conn.execute(users.insert().values(
        email=email, org_id=org_id, password_hash=hash_password(password), is_staff=staff,
        disabled=False, tokens_valid_after=0, created_at=utcnow())).inserted_primary_key[0]


def set_disabled(conn, email: str, disabled: bool):
    row = _user(conn, email)
    values = {"disabled": disabled}
    if disabled:
        values["tokens_valid_after"] = int(time.time())
        conn.execute(sessions.update().where(sessions.c.user_id == row.id,
                                             sessions.c.ended_at.is_(None)).values(ended_at=utcnow()))
    conn.execute(users.update().where(users.c.id == row.id).values(**values))


def set_password(conn, user_id: int, password: str, keep_session: str | None = None):
    """New password; every other login session and every token issued before now stop working."""
    check_password_strength(password)
    conn.execute(users.update().where(users.c.id == user_id).values(
        password_hash=hash_password(password), tokens_valid_after=int(time.time())))
    q = sessions.update().where(sessions.c.user_id == user_id, sessions.c.ended_at.is_(None))
    if keep_session:
        q = q.where(sessions.c.id != keep_session)
    conn.execute(q.values(ended_at=utcnow()))


def user_id_by_email(conn, email: str) -> int:
    return _user(conn, email).id


def list_users(conn, org: str | None = None):
    q = (sa.select(users.c.email, users.c.is_staff, users.c.disabled, orgs.c.name.label("org"))
         .join(orgs, users.c.org_id == orgs.c.id).order_by(users.c.email))
    if org is not None:
        q = q.where(orgs.c.id == _org(conn, org).id)
    return conn.execute(q).all()


def authenticate(conn, email: str, password: str):
    """The user row when e-mail and password match an enabled person; None otherwise."""
    try:
        email = normalize_email(email)
    except AccountError:
        verify_password(None, password)
        return None
    row = conn.execute(sa.select(users).where(users.c.email == email)).first()
    ok = verify_password(row.password_hash if row else None, password)
    return row if ok and row is not None and not row.disabled else None


def identity(conn, user_id: int, tariffs: dict, tz) -> Identity | None:
    """The person's identity as of now, or None when they may not log in (unknown, disabled)."""
    row = conn.execute(
        sa.select(users, orgs.c.name.label("org_name"), orgs.c.tariff, orgs.c.until, orgs.c.ended_at)
        .join(orgs, users.c.org_id == orgs.c.id).where(users.c.id == user_id)).first()
    if row is None:
        return None
    org = SimpleNamespace(name=row.org_name, tariff=row.tariff, until=row.until,
                          ended_at=row.ended_at)
    return identity_of(row, org, tariffs, today(tz))


def generate_password() -> str:
    return secrets.token_urlsafe(15)
