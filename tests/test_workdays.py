"""Working days from the Russian production calendar: holidays, the decrees' transfers, the
project's corrections, and years nobody has checked yet."""

import datetime as dt
import logging
from zoneinfo import ZoneInfo

import pytest

from gate import workdays
from gate.sla import deadlines
from gate.tariffs import parse_tariffs
from tests.helpers.project import PROJECT

MSK = ZoneInfo("Europe/Moscow")
SLA = parse_tariffs("tariffs:\n  start:\n    title: СТАРТ\n    sections: [launches]\n"
                    "    sla: {register: 30m, consult: 8h, workaround: 3 working days}\n",
                    "t")["start"].sla


@pytest.fixture(scope="module")
def calendar():
    return workdays.load(PROJECT / workdays.FILE)


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=MSK)


@pytest.mark.parametrize("start, days, expected", [
    ("2026-12-30T10:00", 3, "2027-01-13T10:00"),  # New Year: Dec 31 (transfer) .. Jan 10 off
    ("2026-12-29T10:00", 1, "2026-12-30T10:00"),
    ("2027-03-05T10:00", 1, "2027-03-09T10:00"),  # 8 March (a Monday) is a holiday
    ("2026-03-06T10:00", 1, "2026-03-10T10:00"),  # 8 March 2026 is a Sunday: Monday 9 off
    ("2027-02-18T10:00", 2, "2027-02-20T10:00"),  # Saturday 20 Feb 2027 is a working day
    ("2027-02-19T10:00", 2, "2027-02-24T10:00"),  # ... and Monday 22 (its transfer) and 23 off
    ("2025-10-31T10:00", 1, "2025-11-01T10:00"),  # Saturday 1 Nov 2025 was a working day
    ("2026-11-23T10:00", 3, "2026-11-26T10:00"),  # an ordinary week
])
def test_working_days_follow_the_production_calendar(calendar, start, days, expected):
    assert calendar.add(at(start), days) == at(expected)


@pytest.mark.parametrize("year, working", [(2025, 247), (2026, 247)])
def test_the_calendar_matches_the_published_totals(calendar, year, working):
    """The published production calendars: 247 working days in 2025 and in 2026."""
    day, count = dt.date(year, 1, 1), 0
    while day.year == year:
        count += calendar.is_working(day)
        day += dt.timedelta(days=1)
    assert count == working


@pytest.mark.parametrize("day", ["2026-01-09", "2026-03-09", "2026-05-11", "2026-12-31",
                                 "2025-05-02", "2025-05-08", "2025-06-13", "2025-11-03"])
def test_published_days_off_are_not_working_days(calendar, day):
    assert not calendar.is_working(dt.date.fromisoformat(day))


def test_the_project_calendar_covers_this_year_and_the_next(calendar):
    this_year = dt.date.today().year
    assert {this_year, this_year + 1} <= set(calendar.covered)


def test_a_year_the_calendar_does_not_cover_is_counted_monday_to_friday_with_a_warning(
        calendar, caplog):
    workdays._warned.discard(2031)
    with caplog.at_level(logging.WARNING, logger="gate.workdays"):
        got = calendar.add(at("2031-01-01T10:00"), 1)  # a Wednesday; 2 January is not known
    assert got == at("2031-01-02T10:00")
    assert any("2031" in r.getMessage() for r in caplog.records)


def test_the_workaround_deadline_skips_the_new_year_holidays(calendar):
    created = at("2026-12-30T10:00").astimezone(dt.timezone.utc)
    due = deadlines(SLA, created, "ordinary", True, MSK, calendar)
    assert due.workaround_by == at("2027-01-13T10:00")
    assert due.consult_by - created == dt.timedelta(hours=8)  # calendar time, 24/7
    # without the calendar (Monday to Friday) the promise would fall into the holidays
    assert deadlines(SLA, created, "ordinary", True, MSK).workaround_by == at("2027-01-04T10:00")


def test_the_project_file_adds_and_removes_days(tmp_path):
    f = tmp_path / "wd.yml"
    f.write_text("covered_years: [2027]\ndays_off: [2027-04-14]\nworking_days: [2027-04-17, "
                 "'2027-01-08']\n")
    cal = workdays.load(f)
    assert not cal.is_working(dt.date(2027, 4, 14))  # a Wednesday made a day off
    assert cal.is_working(dt.date(2027, 4, 17))      # a Saturday made a working day
    assert cal.is_working(dt.date(2027, 1, 8))       # a holiday made a working day
    assert not cal.is_working(dt.date(2027, 1, 7))


def test_without_a_file_every_year_is_monday_to_friday(tmp_path):
    cal = workdays.load(tmp_path / "missing.yml")
    assert cal.is_working(dt.date(2027, 1, 4)) and not cal.covers(dt.date(2027, 1, 4))


@pytest.mark.parametrize("text, message", [
    ("covered_years: 2027\n", "covered_years"),
    ("covered_years: [27]\n", "covered_years"),
    ("days_off: [2027-02-30]\n", "not a date"),
    ("days_off: 2027-02-03\n", "must be a list"),
    ("holidays: []\n", "unknown key"),
    ("- 2027\n", "must be a mapping"),
    ("days_off: [2027-01-11]\nworking_days: [2027-01-11]\n", "both"),
    ("covered_years: [2027\n", "not valid YAML"),
])
def test_a_bad_calendar_file_is_a_clear_error(tmp_path, text, message):
    f = tmp_path / "wd.yml"
    f.write_text(text)
    with pytest.raises(workdays.CalendarError) as err:
        workdays.load(f)
    assert message in str(err.value) and str(f) in str(err.value)
