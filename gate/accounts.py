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
from gate.db import orgs, search_key, sessions, users
from gate.tariffs import STAFF_TARIFF

VENDOR_ORG = "Crystals"  # the vendor's own organisation: its people are staff
# ASCII only: the address goes into mail headers and SMTP commands as it is.
EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
MIN_PASSWORD = 10
MAX_PASSWORD = 256
PASSWORD_RU = f"Пароль должен содержать от {MIN_PASSWORD} до {MAX_PASSWORD} символов."
_hasher = PasswordHasher()
# verified against when the e-mail is unknown, so both failures take the same time
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


class AccountError(ValueError):
    """A refused change: `str()` is the CLI's one line (English), `ru` the console's message."""

    def __init__(self, message: str, ru: str | None = None):
        super().__init__(message)
        self.ru = ru or "Действие не выполнено: " + message


class Unknown(AccountError):
    """The organisation, person or token named does not exist (the console answers 404)."""


def normalize_email(email: str) -> str:
    email = (email or "").strip().lower()
    if len(email) > 254 or not EMAIL_RE.match(email):
        raise AccountError(f"'{email}' is not a valid e-mail address",
                           ru="Укажите правильный адрес электронной почты (латиница, вида name@example.ru).")
    return email


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password must have at least {MIN_PASSWORD} characters", ru=PASSWORD_RU)
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"password must have at most {MAX_PASSWORD} characters", ru=PASSWORD_RU)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if len(password or "") > MAX_PASSWORD:
        return False
    try:
        # a person invited but without a password yet has an empty hash: nothing matches it
        return _hasher.verify(password_hash or _DUMMY_HASH, password or "") and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def parse_date(value: str | None) -> dt.date | None:
    """A date YYYY-MM-DD; None (and "": no date) stays None."""
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise AccountError(f"bad date '{value}': expected YYYY-MM-DD",
                           ru="Дата — в виде ГГГГ-ММ-ДД, например 2027-12-31.") from None


def _tariff(tariff: str, tariffs: dict) -> str:
    if tariff not in tariffs:
        raise AccountError(f"unknown tariff '{tariff}' (known: {', '.join(tariffs)})",
                           ru="Такого тарифа нет.")
    return tariff


def _external_id(conn, value: str | None, org_id: int | None = None) -> str | None:
    """The client portal's id of an organisation ("" clears it): printable, unique."""
    value = (value or "").strip()
    if not value:
        return None
    if len(value) > 200 or not value.isprintable():
        raise AccountError("external id must have 1 to 200 printable characters",
                           ru="Внешний идентификатор: от 1 до 200 печатных символов.")
    other = conn.execute(sa.select(orgs.c.id, orgs.c.name).where(orgs.c.external_id == value)).first()
    if other is not None and other.id != org_id:
        raise AccountError(f"external id '{value}' is already used by '{other.name}'",
                           ru=f"Этот внешний идентификатор уже у организации «{other.name}».")
    return value


# --- organisations -------------------------------------------------------------------------

def _org(conn, name: str):
    row = conn.execute(sa.select(orgs).where(orgs.c.name == name)).first()
    if row is None or row.is_vendor:
        raise Unknown(f"unknown organisation '{name}'", ru="Такой организации нет.")
    return row


def org_by_name(conn, name: str):
    """A client organisation's row by name, or AccountError."""
    return _org(conn, name)


def org_by_id(conn, org_id: int):
    """A client organisation's row by id (the console's addresses), or AccountError."""
    row = conn.execute(sa.select(orgs).where(orgs.c.id == org_id)).first()
    if row is None or row.is_vendor:
        raise Unknown(f"unknown organisation #{org_id}", ru="Такой организации нет.")
    return row


def add_org(conn, name: str, tariff: str, tariffs: dict, until: str | None = None,
            external_id: str | None = None) -> int:
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise AccountError("organisation name must have 1 to 200 characters",
                           ru="Название организации: от 1 до 200 символов.")
    if not name.isprintable():  # tabs and line breaks would break listings and mail headers
        raise AccountError("organisation name must not contain tabs, line breaks or control characters",
                           ru="Название организации не должно содержать табуляций, переводов "
                              "строки и управляющих символов.")
    _tariff(tariff, tariffs)
    if conn.execute(sa.select(orgs.c.id).where(orgs.c.name == name)).first() or name == VENDOR_ORG:
        raise AccountError(f"organisation '{name}' already exists",
                           ru=f"Организация «{name}» уже есть.")
    external_id = _external_id(conn, external_id)
    return conn.execute(orgs.insert().values(
        name=name, tariff=tariff, until=parse_date(until), is_vendor=False,
        external_id=external_id, search_key=search_key(name, external_id),
        created_at=utcnow())).inserted_primary_key[0]


def set_org(conn, name: str, tariffs: dict, tariff: str | None = None, until: str | None = None,
            external_id: str | None = None) -> dict:
    """Changes what is given (until "" = no end date; external_id "" = none); a new end date
    reopens an ended contract. Returns {field: [old, new]} of what changed."""
    row = _org(conn, name)
    values = {}
    if tariff is not None:
        values["tariff"] = _tariff(tariff, tariffs)
    if until is not None:
        values["until"] = parse_date(until)
        values["ended_at"] = None
    if external_id is not None:
        values["external_id"] = _external_id(conn, external_id, row.id)
        values["search_key"] = search_key(row.name, values["external_id"])
    if not values:
        raise AccountError("nothing to change: give --tariff, --until and/or --external-id",
                           ru="Нечего менять.")
    conn.execute(orgs.update().where(orgs.c.id == row.id).values(**values))
    return {k: [_plain(getattr(row, k)), _plain(v)] for k, v in values.items()
            if getattr(row, k) != v and k != "search_key"}


def _plain(value):
    return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else value


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
        raise Unknown(f"unknown user '{email}'", ru="Такого пользователя нет.")
    return row


def find_user(conn, email: str):
    """The users row of `email` (any case), or None: no such person, or no e-mail at all."""
    try:
        return _user(conn, email)
    except AccountError:
        return None


def user_by_id(conn, user_id: int):
    """A person's row by id (the console's addresses), erased ones excluded, or AccountError."""
    row = conn.execute(sa.select(users).where(users.c.id == user_id,
                                              users.c.erased_at.is_(None))).first()
    if row is None:
        raise Unknown(f"unknown user #{user_id}", ru="Такого пользователя нет.")
    return row


def pending(row) -> bool:
    """Invited, no password set yet."""
    return not row.password_hash


def add_user(conn, email: str, password: str | None, org: str | None = None,
             staff: bool = False) -> int:
    """A new person; password None: invited, without a password yet (gate.invitations)."""
    email = normalize_email(email)
    if password is not None:
        check_password_strength(password)
    org_id = vendor_org_id(conn) if staff else _org(conn, org).id
    if conn.execute(sa.select(users.c.id).where(users.c.email == email)).first():
        raise AccountError(f"user '{email}' already exists", ru=f"Пользователь {email} уже есть.")
    return conn.execute(users.insert().values(
        email=email, org_id=org_id, password_hash=hash_password(password) if password else "",
        is_staff=staff, is_admin=False, disabled=False, tokens_valid_after=0,
        created_at=utcnow())).inserted_primary_key[0]


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


def set_admin(conn, email: str, on: bool):
    """An organisation's admin manages its people (/account/people/); staff manage everyone."""
    row = _user(conn, email)
    if row.is_staff:
        raise AccountError(f"'{row.email}' is staff: staff manage every organisation already",
                           ru="Сотрудники поддержки и так управляют всеми организациями.")
    conn.execute(users.update().where(users.c.id == row.id).values(is_admin=on))
    return row


# invited and not yet arrived: no password and never signed in (a person who signs in from the
# client portal has no password either, but has signed in)
INVITED = sa.and_(users.c.password_hash == "", users.c.last_login_at.is_(None))


def list_users(conn, org: str | None = None):
    q = (sa.select(users.c.email, users.c.is_staff, users.c.disabled, users.c.is_admin,
                   INVITED.label("pending"), orgs.c.name.label("org"))
         .join(orgs, users.c.org_id == orgs.c.id).where(users.c.erased_at.is_(None))
         .order_by(users.c.email))
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
    org = SimpleNamespace(id=row.org_id, name=row.org_name, tariff=row.tariff, until=row.until,
                          ended_at=row.ended_at)
    return identity_of(row, org, tariffs, today(tz))


def generate_password() -> str:
    return secrets.token_urlsafe(15)
