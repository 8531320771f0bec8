"""Deadlines of a support request from its tariff's service levels (pure functions).

Registration and consultation clocks run in calendar time, 24/7. The workaround's working days
are those of gate.workdays (the Russian calendar with its transfers) in GATE_TIMEZONE.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from gate.workdays import MONDAY_TO_FRIDAY, WorkingDays

CRITICAL = {"critical-registers", "critical-loading"}


@dataclass(frozen=True)
class Deadlines:
    register_by: dt.datetime | None
    consult_by: dt.datetime | None
    workaround_by: dt.datetime | None


def add_working_days(start: dt.datetime, days: int,
                     calendar: WorkingDays = MONDAY_TO_FRIDAY) -> dt.datetime:
    """`start` moved forward by `days` working days at the same local time.

    `start` must be timezone-aware in the zone whose days count.
    """
    return calendar.add(start, days)


def deadlines(sla, created: dt.datetime, criticality: str, bug_workflow: bool, tz,
              calendar: WorkingDays = MONDAY_TO_FRIDAY) -> Deadlines:
    """Deadlines for a request created at `created` (aware) under a tariff's `sla` (or None)."""
    if sla is None:
        return Deadlines(None, None, None)
    register = created + sla.register if sla.register else None
    consult_for = sla.consult_critical if criticality in CRITICAL and sla.consult_critical else sla.consult
    consult = created + consult_for if consult_for else None
    workaround = None
    if bug_workflow and sla.workaround_working_days:
        workaround = add_working_days(created.astimezone(tz), sla.workaround_working_days,
                                      calendar)
    return Deadlines(register, consult, workaround)
