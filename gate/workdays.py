"""Working days of the Russian Federation, for the workaround deadline.

Monday to Friday except the public holidays, with the government's official transfers (a
transferred working Saturday counts), from the `holidays` package (pinned; its Russian calendar
carries each year's decree) and the project's `working-days.yml`, which names the years whose
calendar has been checked against the published one and may add days off or working days (the
decree for next year appears each autumn, sometimes before a new `holidays` release). A year
the file does not cover is counted Monday to Friday, with a warning in the log.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import yaml

log = logging.getLogger("gate.workdays")
FILE = "working-days.yml"


class CalendarError(ValueError):
    pass


@dataclass(frozen=True)
class WorkingDays:
    covered: frozenset      # years whose calendar is known
    days_off: frozenset     # weekdays that are not working days (holidays, transfers)
    working: frozenset      # weekend days that are working days (transfers)

    def covers(self, day: dt.date) -> bool:
        return day.year in self.covered

    def is_working(self, day: dt.date) -> bool:
        if day in self.working:
            return True
        return day.weekday() < 5 and day not in self.days_off

    def add(self, start: dt.datetime, days: int) -> dt.datetime:
        """`start` (aware, in the zone whose days count) moved forward by `days` working days,
        at the same local time."""
        day, left = start, days
        while left > 0:
            day += dt.timedelta(days=1)
            if not self.covers(day.date()):
                _warn_uncovered(day.year)
            if self.is_working(day.date()):
                left -= 1
        return day


MONDAY_TO_FRIDAY = WorkingDays(frozenset(), frozenset(), frozenset())
_warned: set[int] = set()


def _warn_uncovered(year: int) -> None:
    if year not in _warned:
        _warned.add(year)
        log.warning("working days of %s are not known (%s does not cover the year): "
                    "counted Monday to Friday", year, FILE)


def _dates(data: dict, key: str, path: Path) -> set[dt.date]:
    values = data.get(key) or []
    if not isinstance(values, list):
        raise CalendarError(f"{path}: {key}: must be a list of dates YYYY-MM-DD")
    out = set()
    for value in values:
        if isinstance(value, str):
            try:
                value = dt.date.fromisoformat(value)
            except ValueError:
                pass
        if type(value) is not dt.date:
            raise CalendarError(f"{path}: {key}: {value!r} is not a date YYYY-MM-DD")
        out.add(value)
    return out


def load(path: Path) -> WorkingDays:
    """The calendar of the project file `path` (a missing file: Monday to Friday)."""
    path = Path(path)
    if not path.is_file():
        return MONDAY_TO_FRIDAY
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise CalendarError(f"{path}: not valid YAML ({exc})") from None
    except ValueError as exc:  # a date YAML reads as one but the calendar has not (2027-02-30)
        raise CalendarError(f"{path}: a value is not a date YYYY-MM-DD ({exc})") from None
    if not isinstance(data, dict):
        raise CalendarError(f"{path}: must be a mapping (covered_years, days_off, working_days)")
    unknown = set(data) - {"covered_years", "days_off", "working_days"}
    if unknown:
        raise CalendarError(f"{path}: unknown key {sorted(unknown)[0]!r}")
    years = data.get("covered_years") or []
    if not isinstance(years, list) or not all(isinstance(y, int) and 2000 <= y <= 2100
                                              for y in years):
        raise CalendarError(f"{path}: covered_years: must be a list of years, e.g. [2026, 2027]")
    extra_off, extra_working = _dates(data, "days_off", path), _dates(data, "working_days", path)
    both = extra_off & extra_working
    if both:
        raise CalendarError(f"{path}: {min(both)} is in both days_off and working_days")
    import holidays  # the Russian calendar with the decrees' transfers

    official = holidays.country_holidays("RU", years=years) if years else {}
    days_off = {d for d in official if d.weekday() < 5} | extra_off
    working = set(getattr(official, "weekend_workdays", set())) | extra_working
    return WorkingDays(frozenset(years), frozenset(days_off - extra_working),
                       frozenset(working - extra_off))
