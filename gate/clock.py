"""The gate's one clock: times are stored and compared as naive UTC in every database."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    """Now as naive UTC, the form every stored time has."""
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def today(tz) -> dt.date:
    """Today's date in a time zone (contract ends are dates in GATE_TIMEZONE)."""
    return dt.datetime.now(tz).date()
