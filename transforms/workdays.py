"""Working days (工作日) of a plan period: Monday to Friday, minus the State Council's public
holidays, plus its make-up working days (调休), from the `chinesecalendar` package (the
version is pinned in requirements.lock, so a schedule can be recomputed years later).

A year the installed package does not know yet (the State Council publishes next year's
holidays in November or December) falls back to Monday–Friday, and says so.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

import chinese_calendar


class WorkingDays(NamedTuple):
    days: list[dt.date]
    note: str  # which calendar: "official" or what was assumed


def _is_workday(day: dt.date, unknown_years: set[int]) -> bool:
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:  # a year the package has no holiday list for
        unknown_years.add(day.year)
        return day.weekday() < 5


def working_days(start: dt.date, end: dt.date) -> WorkingDays:
    """The working days from `start` to `end`, both included, in date order."""
    days, unknown_years = [], set()
    day = start
    while day <= end:
        if _is_workday(day, unknown_years):
            days.append(day)
        day += dt.timedelta(days=1)
    if unknown_years:
        years = ", ".join(str(y) for y in sorted(unknown_years))
        return WorkingDays(
            days,
            f"Monday–Friday for {years}: chinesecalendar {_version()} has no official holidays "
            f"for it yet (upgrade it when the State Council publishes them)",
        )
    return WorkingDays(days, f"official (chinesecalendar {_version()})")


def add_working_days(day: dt.date, n: int) -> dt.date:
    """The n-th working day after `day` (n = 20: the deadline for publishing a result)."""
    unknown: set[int] = set()
    while n > 0:
        day += dt.timedelta(days=1)
        n -= _is_workday(day, unknown)
    return day


def _version() -> str:
    from importlib.metadata import version

    return version("chinesecalendar")
