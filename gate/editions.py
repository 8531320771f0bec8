"""Editions: one self-contained build of the site per distinct set of sections.

`public` is for anonymous visitors, `none` for logged-in people whose tariff opens nothing
(both without sections; only the account bar differs), `all` for staff, and every tariff maps
to the edition of its sections. This module is the one place that names them.
"""

from __future__ import annotations

from gate.sections import SECTIONS

PUBLIC = "public"
NONE = "none"
ALL = "all"


def edition_name(sections) -> str:
    """'none' (no section), 'all', or the sections in the site's order joined by '+'."""
    sections = frozenset(sections)
    unknown = sections - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown sections: {sorted(unknown)}")
    if not sections:
        return NONE
    if sections == frozenset(SECTIONS):
        return ALL
    return "+".join(s for s in SECTIONS if s in sections)


def plan_editions(tariffs) -> dict[str, frozenset[str]]:
    """Every edition the configured tariffs need, plus public, none and staff (all sections)."""
    plan = {PUBLIC: frozenset(), NONE: frozenset(), ALL: frozenset(SECTIONS)}
    for tariff in tariffs.values():
        plan[edition_name(tariff.sections)] = frozenset(tariff.sections)
    return plan
