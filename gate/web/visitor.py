"""Who the visitor is, decided once for every path, and the cookies that carry it.

`identify` reads a request's Authorization header and cookies the same way for the Flask
application and for the fast path (gate.web.fastpath); `ticket_current` says whether the edge
ticket nginx checks is the one the gate would issue now. In the application, `init_app`
identifies every request before its view runs (renewing an expired session token from the
login session) and writes the session cookie and edge ticket after it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from flask import g, request

from gate import edge_tickets, tokens
from gate.access import Identity, edition_for
from gate.editions import edition_name
from gate.identities import SESSION_COOKIE, SESSION_LIFETIME, Identities
from gate.web.runtime import current_gate


@dataclass
class Visit:
    identity: Identity | None = None
    bearer: bool = False       # an Authorization: Bearer header: cookies are not looked at
    bad_bearer: bool = False   # ... that failed a check (no content, 401)
    claims: dict | None = None  # verified claims of the session cookie's token
    expired: bool = False      # the cookie's token is valid but expired: renew it (claims set)
    refused: bool = False      # a session cookie that gives nobody: clear it


def session_token(cookies) -> str | None:
    """The session cookie's value as Flask reads it (the first one), or None."""
    return cookies.get(SESSION_COOKIE) if cookies else None


def identify(identities: Identities, authorization: str, cookies) -> Visit:
    """The visitor of a request, from memory only (token cache and accounts snapshot)."""
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() == "bearer":  # other schemes (e.g. a staging proxy's Basic) are not ours
        try:
            identity = identities.from_claims(identities.cache.get(credentials.strip()))
        except tokens.TokenError:
            identity = None
        return Visit(identity=identity, bearer=True, bad_bearer=identity is None)
    token = session_token(cookies)
    if not token:
        return Visit()
    try:
        claims = identities.session_claims(token)
    except tokens.ExpiredToken as exc:
        return Visit(claims=exc.claims, expired=True)
    except tokens.TokenError:
        return Visit(refused=True)
    identity = identities.from_claims(claims)
    return Visit(identity=identity, claims=claims, refused=identity is None)


def ticket_current(secret: str, ticket: str | None, identity: Identity | None,
                   now: float | None = None) -> bool:
    """Edge mode: is `ticket` the edition ticket the gate would issue this visitor now?
    (None for an anonymous visitor: nginx serves the public edition without one.)"""
    if identity is None:
        return ticket is None
    now = time.time() if now is None else now
    return edge_tickets.read(secret, ticket, now) == (edition_for(identity), identity.org_id)


def cookie_flags(cfg, path: str = "/") -> dict:
    """How every cookie of the gate is set: HttpOnly, SameSite=Lax, Secure in production."""
    return dict(path=path, secure=not cfg.local, httponly=True, samesite="Lax")


def init_app(app) -> None:
    app.before_request(_identify)  # first: every later check knows the visitor
    app.after_request(_write_cookies)


def _identify():
    """Sets g.identity (and what the response needs) from the request, renewing an expired
    session token while its login session is valid."""
    gate = current_gate()
    visit = identify(gate.identities, request.headers.get("Authorization", ""), request.cookies)
    g.visit, g.identity, g.new_token = visit, visit.identity, None
    g.bearer, g.bad_bearer = visit.bearer, visit.bad_bearer
    g.session_secret, g.cookie_claims = None, None
    if visit.expired:
        renewed = gate.identities.renew(visit.claims)
        if renewed:
            g.identity, g.new_token = renewed
    g.clear_cookie = (not visit.bearer and bool(session_token(request.cookies))
                      and g.identity is None)
    if g.identity is not None and visit.claims is not None:
        g.session_secret = visit.claims.get("sid")  # to issue this browser a new token
        g.cookie_claims = visit.claims


def set_session_cookie(response, token: str | None):
    flags = cookie_flags(current_gate().cfg)
    if token is None:
        response.delete_cookie(SESSION_COOKIE, **flags)
    else:
        response.set_cookie(SESSION_COOKIE, token, max_age=SESSION_LIFETIME, **flags)


def _edge_ticket(gate, response):
    """Edge mode: the edition ticket follows the session token (issued, renewed and cleared
    with it, never valid longer than it); a request with a Bearer token leaves the cookies
    alone."""
    if g.get("bearer"):
        return
    have = request.cookies.get(edge_tickets.COOKIE)
    new_token = g.get("new_token")
    if new_token:
        claims = gate.identities.cache.get(new_token)
        edition = edition_name(claims["sections"])
    elif g.get("cookie_claims") and not g.get("clear_cookie"):
        claims = g.cookie_claims
        if ticket_current(gate.ticket_secret, have, g.identity):  # the account as it is now
            return
        edition = edition_for(g.identity)
    else:
        if have is not None or g.get("clear_cookie"):
            response.delete_cookie(edge_tickets.COOKIE, **cookie_flags(gate.cfg))
        return
    exp = min(claims["exp"], int(time.time()) + tokens.SESSION_TTL)
    org_id = g.identity.org_id if g.get("identity") is not None else 0
    response.set_cookie(edge_tickets.COOKIE, edge_tickets.issue(gate.ticket_secret, edition, exp,
                                                                org_id),
                        max_age=SESSION_LIFETIME, **cookie_flags(gate.cfg))


def _write_cookies(response):
    gate = current_gate()
    # The ticket first: browsers send cookies in the order they were first set, and nginx
    # looks for the ticket in the Cookie header from its start, before the long session token.
    if gate.ticket_secret:
        _edge_ticket(gate, response)
    if g.get("new_token"):
        set_session_cookie(response, g.new_token)
    elif g.get("clear_cookie"):
        set_session_cookie(response, None)
    for cookie in g.get("extra_cookies", ()):  # after the session's own cookies
        response.set_cookie(**cookie)
    return response
