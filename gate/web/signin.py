"""Signing a person in, the one path after every way of proving who one is (a password, an
accepted invitation; the client portal's SSO later): a login session and its audit row in the
caller's transaction (`start`), then, once that is committed, the session cookie and the
device cookie (`finish`), exactly as after /login."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from flask import g, request

from gate import accounts, changes
from gate.access import Identity
from gate.throttle import KNOWN_FOR
from gate.web.runtime import current_gate
from gate.web.visitor import cookie_flags

DEVICE_COOKIE = "kb_device"


def client_address() -> str:
    return request.remote_addr or "unknown"  # ProxyFix has applied GATE_TRUSTED_PROXIES


def device_mark(account: str) -> str:
    """The device cookie's value for an account: only a browser that logged in has it."""
    return hmac.new(current_gate().key, b"kb-known-device:" + account.encode(), "sha256").hexdigest()


@dataclass
class Started:
    identity: Identity
    secret: str
    account: str


def start(conn, row, action: str | None = "password.login") -> Started | None:
    """A login session for the person of `row` (a users row) and its audit row, in the
    caller's transaction; None when they may not sign in (disabled)."""
    gate = current_gate()
    ident = accounts.identity(conn, row.id, gate.tariffs, gate.cfg.timezone)
    if ident is None:
        return None
    secret = gate.identities.start_session(conn, row.id)
    if action:  # None: the caller has audited the sign-in itself (e.g. invite.accept)
        changes.signed_in(conn, row, client_address(), action)
    return Started(ident, secret, row.email)


def finish(started: Started) -> None:
    """After the commit: this response carries the session cookie (and the device cookie, so
    other people's password guesses never lock this browser out: gate.throttle)."""
    gate = current_gate()
    gate.identities.invalidate()
    g.identity = started.identity
    g.new_token = gate.identities.session_token(started.identity, started.secret)
    g.extra_cookies = [dict(key=DEVICE_COOKIE, value=device_mark(started.account),
                            max_age=KNOWN_FOR, **cookie_flags(gate.cfg, path="/login"))]
