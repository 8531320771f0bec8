"""Who may see what: pure decisions, tested by truth tables.

Every output that depends on the visitor (pages, navigation via the edition, search, 403 page)
asks these functions; nothing else decides.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from gate.editions import PUBLIC, edition_name
from gate.sections import SECTIONS
from gate.tariffs import STAFF_TARIFF

SERVE, LOGIN, LOCKED = "serve", "login", "locked"


@dataclass(frozen=True)
class Identity:
    user_id: int
    email: str
    org: str
    tariff: str
    sections: frozenset
    staff: bool = False
    contract_active: bool = True
    session_id: str | None = None  # sha256 id of the login session, for cookie identities
    admin: bool = False            # manages their own organisation's people (/account/people/)
    org_id: int = 0                # the organisation's id (usage counts, the edge ticket)


def may_see(sections, section: str | None) -> bool:
    """May a visitor whose tariff opens `sections` see a page of `section` (None = public)?"""
    if section is None:
        return True
    return section in SECTIONS and sections is not None and section in sections


def page_decision(identity: Identity | None, section: str | None) -> str:
    """SERVE, LOGIN (anonymous at a gated page) or LOCKED (logged in, section not included)."""
    if may_see(identity.sections if identity else frozenset(), section):
        return SERVE
    return LOGIN if identity is None else LOCKED


def edition_for(identity: Identity | None) -> str:
    if identity is None:
        return PUBLIC
    return edition_name(identity.sections)


def contract_active(until: dt.date | None, ended_at, today: dt.date) -> bool:
    """A contract runs through the end of `until` (in GATE_TIMEZONE) unless it was ended."""
    return ended_at is None and (until is None or today <= until)


def sections_of(tariff_key: str, tariffs: dict, staff: bool, active: bool) -> frozenset:
    """The sections a person sees now: staff all, a client their tariff's while the contract runs."""
    if staff:
        return frozenset(SECTIONS)
    if not active or tariff_key not in tariffs:
        return frozenset()
    return frozenset(tariffs[tariff_key].sections)


def identity_of(user, org, tariffs: dict, today: dt.date,
                session_id: str | None = None) -> Identity | None:
    """The identity of a person as their account and organisation stand `today`, or None when
    they may not be anyone (disabled). `user` has id, email, is_staff, disabled; `org` has
    name, tariff, until, ended_at (database rows or the accounts snapshot's)."""
    if user.disabled:
        return None
    active = user.is_staff or contract_active(org.until, org.ended_at, today)
    return Identity(user_id=user.id, email=user.email, org=org.name,
                    tariff=STAFF_TARIFF if user.is_staff else org.tariff,
                    sections=sections_of(org.tariff, tariffs, user.is_staff, active),
                    staff=user.is_staff, contract_active=active, session_id=session_id,
                    admin=bool(getattr(user, "is_admin", False)) and not user.is_staff,
                    org_id=getattr(org, "id", 0) or 0)
