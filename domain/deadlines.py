"""When a client's task is due: N business days after the request, end of day, client-local.

The rule (domain doc): the request day itself never counts, whatever the hour; the deadline is
23:59:59 local time on the N-th business day after it. Business days skip the weekend and the
public holidays of the client's country (and subdivision), as the `holidays` library defines
them. The library is the single source of truth: no hand-typed holiday lists or Sat/Sun here.

Everything in this module is pure and deterministic (no clock, no I/O beyond reading the
bundled holiday and tz data), so it is safe to call from Temporal workflow code.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import holidays
from holidays import HolidayBase

__all__ = ["CalendarError", "ClientCalendar", "client_deadline"]

# End of the local day. Whole seconds, because that is what the client is told.
_END_OF_DAY = time(23, 59, 59)

# No real calendar has anywhere near this many non-business days in a row; hitting it means
# the calendar data is broken, and failing loudly beats looping forever inside a workflow.
_MAX_CONSECUTIVE_NON_BUSINESS_DAYS = 366


class CalendarError(ValueError):
    """A calendar or deadline input the rule cannot work with; the message names the value."""


@lru_cache(maxsize=1)
def _supported_countries() -> dict[str, list[str]]:
    # ISO 3166-1 alpha-2 codes only: aliases such as "UK" are not ISO codes.
    return holidays.list_supported_countries(include_aliases=False)


@lru_cache(maxsize=256)
def _country_holidays(country: str, subdivision: str | None) -> HolidayBase:
    """The library's calendar object for one client country/subdivision, built once.

    No years are populated here; it serves validation and read-only metadata. Per-year
    holiday data comes from `_year_holidays`, see there for why.
    """
    return holidays.country_holidays(country, subdiv=subdivision)


@lru_cache(maxsize=1024)
def _year_holidays(country: str, subdivision: str | None, year: int) -> HolidayBase:
    """The library's calendar for exactly one year, populated eagerly and never mutated again.

    The library's default objects expand lazily (a lookup for a new year mutates the shared
    object), which is not safe when concurrent activities share a cached instance. One frozen
    object per year avoids that. It still matches the library's default behaviour: a lookup
    for date d populates d.year, and the library files cross-year observed days (e.g. US New
    Year's Day observed on 31 Dec) under the year in which they fall.
    """
    return holidays.country_holidays(country, subdiv=subdivision, years=year, expand=False)


def _check_n(n: int, name: str) -> None:
    # bool is an int subclass; True business days is almost certainly a bug upstream.
    if isinstance(n, bool) or not isinstance(n, int):
        raise CalendarError(f"{name} must be an int >= 1, got {n!r}")
    if n < 1:
        raise CalendarError(f"{name} must be >= 1 (the request day never counts), got {n}")


def _check_plain_date(day: date, name: str) -> None:
    # A datetime is a date subclass; accepting one would silently use whatever zone it is in
    # (typically UTC) instead of the client's local date, which is exactly the bug to avoid.
    if isinstance(day, datetime):
        raise CalendarError(
            f"{name} must be a plain date, got datetime {day.isoformat()}; "
            "convert instants with ClientCalendar.local_date() first"
        )
    if not isinstance(day, date):
        raise CalendarError(f"{name} must be a date, got {type(day).__name__} {day!r}")


def check_aware(instant: datetime, name: str) -> None:
    """CalendarError unless `instant` is a tz-aware datetime (shared with domain.reminders)."""
    if not isinstance(instant, datetime):
        raise CalendarError(f"{name} must be a datetime, got {type(instant).__name__} {instant!r}")
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise CalendarError(
            f"{name} must be timezone-aware, got naive datetime {instant.isoformat()}; "
            "pass e.g. datetime(..., tzinfo=UTC)"
        )


def _validate_country(country: str) -> None:
    supported = _supported_countries()
    if isinstance(country, str) and country in supported:
        return
    hint = ""
    if isinstance(country, str) and country.upper() in supported:
        hint = f" (did you mean {country.upper()!r}?)"
    raise CalendarError(
        f"unknown country {country!r}{hint}; expected an ISO 3166-1 alpha-2 code, "
        f"known: {', '.join(sorted(supported))}"
    )


def _validate_subdivision(country: str, subdivision: str | None) -> None:
    if subdivision is None:
        return
    known = sorted(_supported_countries()[country])
    if isinstance(subdivision, str) and subdivision in known:
        return
    hint = ""
    if isinstance(subdivision, str):
        # Friendly pointer for names ("Bayern") and wrong case ("by"); we still insist on the
        # code so that equal calendars compare and cache equal.
        aliases = _country_holidays(country, None).subdivisions_aliases
        by_upper = {code.upper(): code for code in known}
        suggestion = aliases.get(subdivision) or by_upper.get(subdivision.upper())
        if suggestion:
            hint = f" (did you mean {suggestion!r}?)"
    known_text = ", ".join(known) if known else "none, use None"
    raise CalendarError(
        f"unknown subdivision {subdivision!r}{hint} for country {country}; known: {known_text}"
    )


def _validate_time_zone(time_zone: str) -> None:
    if not isinstance(time_zone, str):
        raise CalendarError(
            f"unknown time zone {time_zone!r}; expected an IANA name such as 'Europe/Copenhagen'"
        )
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        # Only on the error path: scanning the tz database is too slow for every call.
        close = difflib.get_close_matches(time_zone, sorted(available_timezones()), n=3)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        raise CalendarError(
            f"unknown time zone {time_zone!r}{hint}; "
            "expected an IANA name such as 'Europe/Copenhagen'"
        ) from None


@dataclass(frozen=True)
class ClientCalendar:
    """Where the client works: which holidays and weekend apply, and which clock they read.

    Immutable and validated on construction, so a bad country/subdivision/zone fails when the
    calendar is built rather than on the day a deadline happens to hit the bad data.
    """

    country: str
    subdivision: str | None
    time_zone: str

    def __post_init__(self) -> None:
        _validate_country(self.country)
        _validate_subdivision(self.country, self.subdivision)
        _validate_time_zone(self.time_zone)
        # Warm the cache; also surfaces any library-side rejection as a CalendarError.
        try:
            _country_holidays(self.country, self.subdivision)
        except NotImplementedError as exc:
            raise CalendarError(
                f"holidays cannot build a calendar for country {self.country!r}, "
                f"subdivision {self.subdivision!r}: {exc}"
            ) from exc

    @property
    def zone(self) -> ZoneInfo:
        # ZoneInfo caches instances per key, so this is cheap and returns the same object.
        return ZoneInfo(self.time_zone)

    def is_business_day(self, day: date) -> bool:
        """False on the country's weekend days and on its (subdivision's) public holidays.

        Delegates to the library's `is_working_day`, which uses the country's own weekend
        (e.g. Fri+Sat in Saudi Arabia, including its historical changes) and honours any
        weekend day the library declares a working day.
        """
        _check_plain_date(day, "day")
        return _year_holidays(self.country, self.subdivision, day.year).is_working_day(day)

    def add_business_days(self, day: date, n: int) -> date:
        """The n-th business day strictly after `day` (n >= 1); `day` itself never counts."""
        _check_plain_date(day, "day")
        _check_n(n, "n")
        return self._walk(day, n, timedelta(days=1))

    def business_days_before(self, day: date, n: int) -> date:
        """The n-th business day strictly before `day`; n == 0 is `day` itself."""
        _check_plain_date(day, "day")
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise CalendarError(f"n must be an integer >= 0, got {n!r}")
        return self._walk(day, n, timedelta(days=-1))

    def _walk(self, day: date, n: int, step: timedelta) -> date:
        """Step day by day until n business days are passed; a calendar with no business day
        for a year is broken data, and failing beats looping forever inside a workflow."""
        current = day
        remaining = n
        skipped = 0
        while remaining:
            current += step
            if self.is_business_day(current):
                remaining -= 1
                skipped = 0
            else:
                skipped += 1
                if skipped > _MAX_CONSECUTIVE_NON_BUSINESS_DAYS:
                    raise CalendarError(
                        f"no business day within {_MAX_CONSECUTIVE_NON_BUSINESS_DAYS} days "
                        f"of {day} for {self}"
                    )
        return current

    def local_date(self, instant: datetime) -> date:
        """The calendar date on the client's wall clock at `instant` (which must be tz-aware)."""
        check_aware(instant, "instant")
        return instant.astimezone(self.zone).date()

    def end_of_local_day(self, day: date) -> datetime:
        """23:59:59 (microsecond 0) on `day` in the client's zone, tz-aware.

        fold=1: where a zone falls back at midnight (e.g. America/Santiago), 23:59:59 occurs
        twice; the end of the day is the later one. Elsewhere fold has no effect.
        """
        _check_plain_date(day, "day")
        return datetime.combine(day, _END_OF_DAY, tzinfo=self.zone).replace(fold=1)


def client_deadline(
    requested_at: datetime, calendar: ClientCalendar, business_days: int = 2
) -> datetime:
    """The deadline: end of the N-th business day after the request's local date.

    tz-aware result in the client's zone. requested_at must be tz-aware (any zone, typically
    UTC).

    The client's local date of the request decides, not the UTC date: 23:30 UTC on a Friday is
    already Saturday in Copenhagen, and 18:00 Friday in Los Angeles is already Saturday in UTC.
    """
    check_aware(requested_at, "requested_at")
    _check_n(business_days, "business_days")
    request_day = calendar.local_date(requested_at)
    due_day = calendar.add_business_days(request_day, business_days)
    return calendar.end_of_local_day(due_day)
