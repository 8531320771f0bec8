import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from gate.sla import add_working_days, deadlines
from gate.tariffs import parse_tariffs
from tests.helpers.project import TEST_TARIFFS

MSK = ZoneInfo("Europe/Moscow")
SLA = parse_tariffs(TEST_TARIFFS, "t")["start"].sla


@pytest.mark.parametrize("start, days, expected", [
    ("2026-11-23T10:00", 3, "2026-11-26T10:00"),  # Monday -> Thursday
    ("2026-11-26T10:00", 3, "2026-12-01T10:00"),  # Thursday -> Tuesday (weekend skipped)
    ("2026-11-28T23:30", 3, "2026-12-02T23:30"),  # Saturday night -> Wednesday
    ("2026-11-27T18:00", 1, "2026-11-30T18:00"),  # Friday -> Monday
])
def test_working_days_skip_weekends(start, days, expected):
    got = add_working_days(dt.datetime.fromisoformat(start).replace(tzinfo=MSK), days)
    assert got == dt.datetime.fromisoformat(expected).replace(tzinfo=MSK)


def test_weekdays_are_those_of_the_configured_zone():
    # Friday 22:30 UTC is already Saturday 01:30 in Moscow: 1 working day -> Monday in Moscow
    created = dt.datetime(2026, 11, 27, 22, 30, tzinfo=dt.timezone.utc)
    d = deadlines(SLA, created, "ordinary", True, MSK)
    assert d.workaround_by.astimezone(MSK).strftime("%a %H:%M") == "Wed 01:30"


@pytest.mark.parametrize("criticality, hours", [
    ("ordinary", 8), ("critical-registers", 4), ("critical-loading", 4),
    ("server-failed", 8), ("new-server", 8), ("store-launch", 8),
])
def test_calendar_clocks_run_24_7(criticality, hours):
    created = dt.datetime(2026, 11, 28, 23, 0, tzinfo=dt.timezone.utc)  # a Saturday night
    d = deadlines(SLA, created, criticality, True, MSK)
    assert d.register_by - created == dt.timedelta(minutes=30)
    assert d.consult_by - created == dt.timedelta(hours=hours)


def test_no_sla_no_deadlines_and_no_workaround_outside_bug_workflow():
    created = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.timezone.utc)
    assert deadlines(None, created, "ordinary", True, MSK).consult_by is None
    assert deadlines(SLA, created, "ordinary", False, MSK).workaround_by is None
