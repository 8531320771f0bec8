"""Who may see what: pure decisions, tested by truth tables.

Every output that depends on the visitor (pages, navigation via the edition, search, 403 page)
asks these functions; nothing else decides.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from gate.editions import PUBLIC, edition_name
from gate.sections import SECTIONS

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
