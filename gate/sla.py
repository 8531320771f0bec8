"""Deadlines of a support request from its tariff's service levels (pure functions).

Registration and consultation clocks run in calendar time, 24/7. The workaround's working days
are Monday to Friday in GATE_TIMEZONE (public holidays are not known to the gate).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

CRITICAL = {"critical-registers", "critical-loading"}


@dataclass(frozen=True)
class Deadlines:
    register_by: dt.datetime | None
    consult_by: dt.datetime | None
    workaround_by: dt.datetime | None


def add_working_days(start: dt.datetime, days: int) -> dt.datetime:
    """`start` moved forward by `days` working days (Mon-Fri) at the same local time.

    `start` must be timezone-aware in the zone whose weekdays count.
    """
    day = start
    left = days
    while left > 0:
        day += dt.timedelta(days=1)
        if day.weekday() < 5:
            left -= 1
    return day


def deadlines(sla, created: dt.datetime, criticality: str, bug_workflow: bool, tz) -> Deadlines:
    """Deadlines for a request created at `created` (aware) under a tariff's `sla` (or None)."""
    if sla is None:
        return Deadlines(None, None, None)
    register = created + sla.register if sla.register else None
    consult_for = sla.consult_critical if criticality in CRITICAL and sla.consult_critical else sla.consult
    consult = created + consult_for if consult_for else None
    workaround = None
    if bug_workflow and sla.workaround_working_days:
        workaround = add_working_days(created.astimezone(tz), sla.workaround_working_days)
    return Deadlines(register, consult, workaround)
