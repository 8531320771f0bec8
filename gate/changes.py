"""Every change of organisations, people and API tokens, with its audit row, in the caller's
transaction: the one path the `gate` command (actor "cli") and the staff console (actor: the
staff member's e-mail, with their address) share, so both name actions alike (gate.audit)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from gate import accounts, api_tokens, audit, erasure, invitations, totp
from gate.accounts import AccountError


@dataclass(frozen=True)
class Actor:
    name: str                   # audit.CLI or an e-mail
    address: str | None = None  # the browser's address
    user_id: int | None = None  # the acting person (the console refuses acting on oneself)


CLI = Actor(audit.CLI)


def _log(conn, who: Actor, action: str, target: str, **kw) -> None:
    audit.record(conn, who.name, action, target, address=who.address, **kw)


# --- organisations -------------------------------------------------------------------------

def org_add(conn, who: Actor, tariffs, name, tariff, until=None, external_id=None) -> int:
    org_id = accounts.add_org(conn, name, tariff, tariffs, until, external_id)
    row = accounts.org_by_id(conn, org_id)
    _log(conn, who, "org.add", row.name, org_id=org_id,
         details={"tariff": tariff, "until": row.until and row.until.isoformat(),
                  "external_id": row.external_id})
    return org_id


def org_set(conn, who: Actor, tariffs, name, tariff=None, until=None, external_id=None) -> dict:
    changed = accounts.set_org(conn, name, tariffs, tariff, until, external_id)
    row = accounts.org_by_name(conn, name)
    _log(conn, who, "org.set", row.name, org_id=row.id, details=changed)
    return changed


def org_end(conn, who: Actor, name) -> None:
    accounts.end_org(conn, name)
    row = accounts.org_by_name(conn, name)
    _log(conn, who, "org.end", row.name, org_id=row.id)


# --- people --------------------------------------------------------------------------------

def _not_self(who: Actor, row) -> None:
    if who.user_id is not None and who.user_id == row.id:
        raise AccountError("you cannot do that to yourself",
                           ru="Это действие нельзя применить к своей учётной записи.")


def user_add(conn, who: Actor, email, password, org=None, staff=False) -> int:
    user_id = accounts.add_user(conn, email, password, org=org, staff=staff)
    row = accounts.user_by_id(conn, user_id)
    _log(conn, who, "user.add", row.email, org_id=row.org_id, user_id=user_id,
         details={"staff": True} if staff else {"org": org})
    return user_id


def user_invite(conn, who: Actor, cfg, base_url, email, org=None, staff=False,
                admin=False) -> invitations.Invited:
    done = invitations.invite(conn, cfg, base_url, email, org=org, staff=staff, admin=admin)
    details = {"staff": True} if staff else {"org": org}
    if admin:
        details["admin"] = True
    if not done.created:
        details["renewed"] = True
    _log(conn, who, "user.invite", done.email, org_id=done.org_id, user_id=done.user_id,
         details=details)
    return done


def user_resend(conn, who: Actor, cfg, base_url, user_id) -> invitations.Invited:
    """A new invitation for a person who has not set a password yet (older links die)."""
    row = accounts.user_by_id(conn, user_id)
    if row.is_staff:
        return user_invite(conn, who, cfg, base_url, row.email, staff=True)
    org = conn.execute(sa.select(accounts.orgs.c.name).where(accounts.orgs.c.id == row.org_id)).scalar()
    return user_invite(conn, who, cfg, base_url, row.email, org=org)


def user_disable(conn, who: Actor, email, disabled: bool) -> None:
    row = accounts.user_by_id(conn, accounts.user_id_by_email(conn, email))
    _not_self(who, row)
    accounts.set_disabled(conn, email, disabled)
    if disabled:
        invitations.void(conn, row.id)
    _log(conn, who, "user.disable" if disabled else "user.enable", row.email,
         org_id=row.org_id, user_id=row.id)


def user_admin(conn, who: Actor, email, on: bool) -> None:
    row = accounts.set_admin(conn, email, on)
    _log(conn, who, "user.admin", row.email, org_id=row.org_id, user_id=row.id,
         details={"admin": on})


def user_password(conn, who: Actor, email, password) -> None:
    row = accounts.user_by_id(conn, accounts.user_id_by_email(conn, email))
    accounts.set_password(conn, row.id, password)
    invitations.void(conn, row.id)
    _log(conn, who, "user.password", row.email, org_id=row.org_id, user_id=row.id)


def user_forget(conn, who: Actor, email) -> str:
    """Erases the person (gate.erasure); returns their pseudonym."""
    row = accounts.user_by_id(conn, accounts.user_id_by_email(conn, email))
    _not_self(who, row)
    name = erasure.forget(conn, row)
    _log(conn, who, "user.forget", name, org_id=row.org_id, user_id=row.id)
    return name


def signed_in(conn, row, address, action="password.login") -> None:
    """A successful sign-in (the login's own transaction)."""
    audit.record(conn, row.email, action, row.email, address=address, org_id=row.org_id,
                 user_id=row.id)


def own_password(conn, row, address, via: str) -> None:
    """A person set their own password (profile, reset link, invitation)."""
    action = "invite.accept" if via == "invitation" else "user.password"
    audit.record(conn, row.email, action, row.email, address=address, org_id=row.org_id,
                 user_id=row.id, details={"via": via})


# --- the second factor ---------------------------------------------------------------------

def totp_enrol(conn, row, address, secret: str, code: str) -> list[str] | None:
    """A person set up their own authenticator (gate.totp.enrol): the recovery codes, or None
    when the code did not match (nothing stored, nothing logged)."""
    codes = totp.enrol(conn, row.id, secret, code)
    if codes is not None:
        audit.record(conn, row.email, "totp.enrol", row.email, address=address,
                     org_id=row.org_id, user_id=row.id)
    return codes


def totp_reset(conn, who: Actor, email, via: str = "console") -> None:
    """Removes a person's second factor and recovery codes: staff (not their own: that takes
    a code, in the profile), the CLI, or the person with a current code (via "profile")."""
    row = accounts.user_by_id(conn, accounts.user_id_by_email(conn, email))
    if via != "profile":
        _not_self(who, row)
    if not totp.remove(conn, row.id):
        raise AccountError(f"'{row.email}' has no second factor",
                           ru="У пользователя нет второго фактора.")
    _log(conn, who, "totp.reset", row.email, org_id=row.org_id, user_id=row.id,
         details={"via": via})


# --- API tokens ----------------------------------------------------------------------------

def token_issue(conn, who: Actor, key, ident, ttl: int, org_id: int) -> tuple[int, str]:
    tid, token = api_tokens.issue(conn, key, ident, ttl)
    _log(conn, who, "token.issue", ident.email, org_id=org_id, user_id=ident.user_id,
         details={"id": tid, "ttl": ttl})
    return tid, token


def token_revoke(conn, who: Actor, tid: int) -> bool:
    """Revokes a token; False when it was revoked already (nothing is logged then)."""
    row, now = api_tokens.revoke(conn, tid)
    if now:
        _log(conn, who, "token.revoke", row.email, org_id=row.org_id, user_id=row.user_id,
             details={"id": tid})
    return now

