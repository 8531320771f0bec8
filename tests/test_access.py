"""Truth tables for the pure access decisions."""

import datetime as dt
import itertools

import pytest

from gate.access import LOCKED, LOGIN, SERVE, Identity, contract_active, edition_for, may_see, page_decision, sections_of
from gate.sections import SECTIONS
from gate.tariffs import parse_tariffs
from tests.helpers.project import TEST_TARIFFS

ALL = frozenset(SECTIONS)
SETS = [frozenset(c) for n in range(len(SECTIONS) + 1) for c in itertools.combinations(SECTIONS, n)]


@pytest.mark.parametrize("sections", SETS, ids=lambda s: "+".join(sorted(s)) or "none")
@pytest.mark.parametrize("section", [None, *SECTIONS, "kitchen"])
def test_may_see_truth_table(sections, section):
    expected = section is None or (section in SECTIONS and section in sections)
    assert may_see(sections, section) is expected


def ident(sections, active=True):
    return Identity(1, "a@b.ru", "Org", "t", frozenset(sections), contract_active=active)


@pytest.mark.parametrize("who, section, expected", [
    (None, None, SERVE),
    (None, "launches", LOGIN),
    (None, "claim-desk", LOGIN),
    (ident(ALL), "launches", SERVE),
    (ident(ALL), None, SERVE),
    (ident({"functionality"}), "functionality", SERVE),
    (ident({"functionality"}), "launches", LOCKED),
    (ident(set()), "launches", LOCKED),
    (ident(set()), None, SERVE),
])
def test_page_decision(who, section, expected):
    assert page_decision(who, section) == expected


def test_edition_for():
    assert edition_for(None) == "public"
    assert edition_for(ident(set())) == "none"
    assert edition_for(ident(ALL)) == "all"
    assert edition_for(ident({"maintenance", "launches"})) == "launches+maintenance"


TODAY = dt.date(2026, 11, 26)


@pytest.mark.parametrize("until, ended, expected", [
    (None, None, True),
    (TODAY, None, True),                      # valid through the end of its last day
    (TODAY + dt.timedelta(days=1), None, True),
    (TODAY - dt.timedelta(days=1), None, False),
    (None, dt.datetime(2026, 1, 1), False),
    (TODAY + dt.timedelta(days=9), dt.datetime(2026, 1, 1), False),
])
def test_contract_active(until, ended, expected):
    assert contract_active(until, ended, TODAY) is expected


TARIFFS = parse_tariffs(TEST_TARIFFS, "t")


@pytest.mark.parametrize("tariff, staff, active, expected", [
    ("start", False, True, ALL),
    ("solo-func", False, True, {"functionality"}),
    ("pair", False, True, {"launches", "maintenance"}),
    ("start", False, False, set()),
    ("gone", False, True, set()),                # tariff removed from the configuration
    ("staff", True, True, ALL),
    ("staff", True, False, ALL),
])
def test_sections_of(tariff, staff, active, expected):
    assert sections_of(tariff, TARIFFS, staff, active) == frozenset(expected)
