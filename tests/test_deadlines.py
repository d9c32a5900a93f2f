"""Tests for the client deadline rule (domain/deadlines.py).

Expected dates were worked out by hand from the `holidays` 0.109 data for 2026-2028, which was
printed and checked while writing these tests; `test_fixture_holidays_are_what_the_tests_assume`
pins the holidays the cases rely on, so a library data change fails there first, with a clear
message, rather than as a puzzling deadline mismatch.

Expected deadlines are ISO strings with the UTC offset: comparing aware datetimes that share a
tzinfo ignores the offset, so `==` alone could not catch a DST mistake; the string can.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import holidays
import pytest

from domain import deadlines
from domain.deadlines import CalendarError, ClientCalendar, client_deadline

DK = ClientCalendar("DK", None, "Europe/Copenhagen")
DE = ClientCalendar("DE", None, "Europe/Berlin")
DE_BY = ClientCalendar("DE", "BY", "Europe/Berlin")
DE_BE = ClientCalendar("DE", "BE", "Europe/Berlin")
US_NY = ClientCalendar("US", None, "America/New_York")
US_LA = ClientCalendar("US", None, "America/Los_Angeles")
SA = ClientCalendar("SA", None, "Asia/Riyadh")
CL = ClientCalendar("CL", None, "America/Santiago")

CPH = ZoneInfo("Europe/Copenhagen")
LA = ZoneInfo("America/Los_Angeles")


def _at(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def _assert_deadline(result: datetime, calendar: ClientCalendar, expected_iso: str) -> None:
    assert result.isoformat() == expected_iso
    assert isinstance(result.tzinfo, ZoneInfo)
    assert result.tzinfo.key == calendar.time_zone
    assert (result.hour, result.minute, result.second, result.microsecond) == (23, 59, 59, 0)
    # The instant itself, independently of how it is displayed.
    assert result.astimezone(UTC) == _at(expected_iso).astimezone(UTC)


# --- the library data the cases below rely on -------------------------------------------------


@pytest.mark.parametrize(
    ("country", "subdiv", "day", "name"),
    [
        ("DK", None, date(2026, 4, 2), "Maundy Thursday"),
        ("DK", None, date(2026, 4, 3), "Good Friday"),
        ("DK", None, date(2026, 4, 6), "Easter Monday"),
        ("DK", None, date(2026, 5, 14), "Ascension Day"),
        ("DK", None, date(2026, 12, 25), "Christmas Day"),
        ("DK", None, date(2027, 1, 1), "New Year's Day"),
        ("DK", None, date(2027, 3, 25), "Maundy Thursday"),
        ("DK", None, date(2027, 3, 26), "Good Friday"),
        ("DK", None, date(2027, 3, 29), "Easter Monday"),
        ("DE", "BY", date(2026, 1, 6), "Epiphany"),
        ("DE", "BY", date(2026, 6, 4), "Corpus Christi"),
        ("DE", "BE", date(2027, 3, 8), "Women's Day"),
        ("US", None, date(2026, 11, 26), "Thanksgiving Day"),
        ("US", None, date(2027, 11, 25), "Thanksgiving Day"),
        ("US", None, date(2027, 12, 31), "New Year's Day (observed)"),
        ("SA", None, date(2026, 5, 27), "Eid al-Adha Holiday"),
        ("SA", None, date(2026, 5, 31), "Eid al-Adha Holiday (observed)"),
    ],
)
def test_fixture_holidays_are_what_the_tests_assume(
    country: str, subdiv: str | None, day: date, name: str
) -> None:
    assert holidays.country_holidays(country, subdiv=subdiv).get(day) == name


@pytest.mark.parametrize(
    ("country", "subdiv", "day"),
    [
        ("DK", None, date(2026, 12, 24)),  # Christmas Eve is not a DK public holiday
        ("DE", "BE", date(2026, 1, 6)),  # Epiphany is Bavarian, not Berlin
        ("DE", None, date(2026, 1, 6)),
        ("DE", "BE", date(2026, 6, 4)),  # nor is Corpus Christi
        ("DE", "BY", date(2027, 3, 8)),  # Women's Day is Berlin only
        ("SA", None, date(2026, 4, 16)),
    ],
)
def test_fixture_non_holidays_are_what_the_tests_assume(
    country: str, subdiv: str | None, day: date
) -> None:
    assert day not in holidays.country_holidays(country, subdiv=subdiv)


# --- the rule, case by case -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("calendar", "requested_at", "expected"),
    [
        # The domain doc's example: Friday 15:00 Copenhagen -> Tuesday 23:59:59 Copenhagen.
        pytest.param(DK, "2026-05-08T15:00:00+02:00", "2026-05-12T23:59:59+02:00", id="dk-fri"),
        pytest.param(DK, "2026-05-08T13:00:00+00:00", "2026-05-12T23:59:59+02:00", id="dk-fri-utc"),
        pytest.param(DK, "2026-05-06T10:00:00+02:00", "2026-05-08T23:59:59+02:00", id="dk-wed"),
        pytest.param(DK, "2026-05-07T10:00:00+02:00", "2026-05-11T23:59:59+02:00", id="dk-thu"),
        pytest.param(DK, "2026-05-11T10:00:00+02:00", "2026-05-13T23:59:59+02:00", id="dk-mon"),
        # Tuesday: Wed counts, Thu 14 May is Ascension Day, so Friday.
        pytest.param(DK, "2026-05-12T10:00:00+02:00", "2026-05-15T23:59:59+02:00", id="dk-asc"),
    ],
)
def test_plain_weeks(calendar: ClientCalendar, requested_at: str, expected: str) -> None:
    _assert_deadline(client_deadline(_at(requested_at), calendar), calendar, expected)


@pytest.mark.parametrize(
    ("requested_at", "expected"),
    [
        # 23:59 and 00:00 Copenhagen on either side of local midnight Wed->Thu.
        pytest.param(
            datetime(2026, 5, 6, 23, 59, tzinfo=CPH), "2026-05-08T23:59:59+02:00", id="wed-23:59"
        ),
        pytest.param(
            datetime(2026, 5, 6, 23, 59, 59, 999999, tzinfo=CPH),
            "2026-05-08T23:59:59+02:00",
            id="wed-last-microsecond",
        ),
        pytest.param(
            datetime(2026, 5, 7, 0, 0, tzinfo=CPH), "2026-05-11T23:59:59+02:00", id="thu-00:00"
        ),
        # The same two instants given in UTC: the UTC date is Wednesday both times.
        pytest.param(_at("2026-05-06T21:59:00+00:00"), "2026-05-08T23:59:59+02:00", id="utc-wed"),
        pytest.param(_at("2026-05-06T22:00:00+00:00"), "2026-05-11T23:59:59+02:00", id="utc-thu"),
        # 22:30 UTC Thursday is already Friday 00:30 in Copenhagen: Friday is the request day.
        # (Using the UTC date, Thursday, would wrongly give Monday.)
        pytest.param(_at("2026-05-07T22:30:00+00:00"), "2026-05-12T23:59:59+02:00", id="utc-late"),
        # Winter (+01:00): 23:30 UTC Wednesday is 00:30 Thursday in Copenhagen.
        pytest.param(_at("2026-01-14T23:30:00+00:00"), "2026-01-19T23:59:59+01:00", id="winter"),
        # An instant expressed in a third zone (Tokyo): 07:30 Thu JST = 00:30 Thu CEST.
        pytest.param(_at("2026-05-07T07:30:00+09:00"), "2026-05-11T23:59:59+02:00", id="tokyo"),
    ],
)
def test_local_date_in_copenhagen_decides(requested_at: datetime, expected: str) -> None:
    _assert_deadline(client_deadline(requested_at, DK), DK, expected)


@pytest.mark.parametrize(
    "requested_at",
    [
        pytest.param(datetime(2026, 5, 7, 18, 0, tzinfo=LA), id="la-zone"),
        pytest.param(_at("2026-05-08T01:00:00+00:00"), id="utc"),
        pytest.param(datetime(2026, 5, 7, 23, 59, 59, tzinfo=LA), id="la-23:59:59"),
    ],
)
def test_us_pacific_evening_is_already_tomorrow_in_utc(requested_at: datetime) -> None:
    # Thursday evening in LA is Friday in UTC; the client's Thursday decides: Fri, Mon.
    _assert_deadline(client_deadline(requested_at, US_LA), US_LA, "2026-05-11T23:59:59-07:00")


def test_us_pacific_midnight_starts_the_next_day() -> None:
    requested_at = datetime(2026, 5, 8, 0, 0, tzinfo=LA)  # Friday 00:00 local, 07:00 UTC
    _assert_deadline(client_deadline(requested_at, US_LA), US_LA, "2026-05-12T23:59:59-07:00")


@pytest.mark.parametrize(
    ("requested_at", "expected"),
    [
        pytest.param("2026-05-09T00:00:00+02:00", "2026-05-12T23:59:59+02:00", id="sat-00:00"),
        pytest.param("2026-05-09T10:00:00+02:00", "2026-05-12T23:59:59+02:00", id="sat"),
        pytest.param("2026-05-10T10:00:00+02:00", "2026-05-12T23:59:59+02:00", id="sun"),
        pytest.param("2026-05-10T23:59:00+02:00", "2026-05-12T23:59:59+02:00", id="sun-23:59"),
        # 22:00 UTC Sunday is Monday 00:00 in Copenhagen: Monday is the request day.
        pytest.param("2026-05-10T22:00:00+00:00", "2026-05-13T23:59:59+02:00", id="sun-utc"),
        pytest.param("2027-01-09T12:00:00+01:00", "2027-01-12T23:59:59+01:00", id="sat-2027"),
    ],
)
def test_weekend_requests(requested_at: str, expected: str) -> None:
    _assert_deadline(client_deadline(_at(requested_at), DK), DK, expected)


@pytest.mark.parametrize(
    ("requested_at", "expected"),
    [
        # Christmas Day (Fri), then Second Day of Christmas (Sat) and Sunday: Mon 28, Tue 29.
        pytest.param("2026-12-25T10:00:00+01:00", "2026-12-29T23:59:59+01:00", id="christmas"),
        # Easter Monday itself: Tue 7, Wed 8.
        pytest.param("2026-04-06T10:00:00+02:00", "2026-04-08T23:59:59+02:00", id="easter-mon"),
        pytest.param("2027-03-29T10:00:00+02:00", "2027-03-31T23:59:59+02:00", id="easter-2027"),
        # Good Friday: Sat, Sun, Easter Monday skipped: Tue 7, Wed 8.
        pytest.param("2026-04-03T10:00:00+02:00", "2026-04-08T23:59:59+02:00", id="good-fri"),
        # Ascension Day (Thu): Fri 15, Mon 18.
        pytest.param("2026-05-14T10:00:00+02:00", "2026-05-18T23:59:59+02:00", id="ascension"),
    ],
)
def test_request_on_a_public_holiday(requested_at: str, expected: str) -> None:
    _assert_deadline(client_deadline(_at(requested_at), DK), DK, expected)


@pytest.mark.parametrize(
    ("requested_at", "expected"),
    [
        # 2026: Wed 1 Apr; Maundy Thu 2, Good Fri 3, weekend, Easter Mon 6; Tue 7, Wed 8.
        pytest.param("2026-04-01T10:00:00+02:00", "2026-04-08T23:59:59+02:00", id="2026"),
        pytest.param("2026-04-01T23:59:00+02:00", "2026-04-08T23:59:59+02:00", id="2026-late"),
        # 2027: Wed 24 Mar (+01:00) ... Tue 30, Wed 31 Mar, after the spring-forward (+02:00).
        pytest.param("2027-03-24T10:00:00+01:00", "2027-03-31T23:59:59+02:00", id="2027"),
    ],
)
def test_wednesday_before_easter_in_denmark(requested_at: str, expected: str) -> None:
    _assert_deadline(client_deadline(_at(requested_at), DK), DK, expected)


@pytest.mark.parametrize(
    ("calendar", "requested_at", "expected"),
    [
        # Epiphany, Tue 6 Jan 2026: a holiday in Bavaria, a working day in Berlin.
        pytest.param(DE_BY, "2026-01-05T10:00:00+01:00", "2026-01-08T23:59:59+01:00", id="epi-BY"),
        pytest.param(DE_BE, "2026-01-05T10:00:00+01:00", "2026-01-07T23:59:59+01:00", id="epi-BE"),
        pytest.param(DE, "2026-01-05T10:00:00+01:00", "2026-01-07T23:59:59+01:00", id="epi-DE"),
        # Epiphany, Wed 6 Jan 2027.
        pytest.param(DE_BY, "2027-01-05T10:00:00+01:00", "2027-01-08T23:59:59+01:00", id="e27-BY"),
        pytest.param(DE_BE, "2027-01-05T10:00:00+01:00", "2027-01-07T23:59:59+01:00", id="e27-BE"),
        # Corpus Christi, Thu 4 Jun 2026.
        pytest.param(DE_BY, "2026-06-03T10:00:00+02:00", "2026-06-08T23:59:59+02:00", id="cc-BY"),
        pytest.param(DE_BE, "2026-06-03T10:00:00+02:00", "2026-06-05T23:59:59+02:00", id="cc-BE"),
        # And the other way round: Women's Day, Mon 8 Mar 2027, is a Berlin holiday only.
        pytest.param(DE_BY, "2027-03-05T10:00:00+01:00", "2027-03-09T23:59:59+01:00", id="wd-BY"),
        pytest.param(DE_BE, "2027-03-05T10:00:00+01:00", "2027-03-10T23:59:59+01:00", id="wd-BE"),
        # Nationwide holidays apply everywhere: Good Friday + Easter Monday 2026.
        pytest.param(DE_BY, "2026-04-02T10:00:00+02:00", "2026-04-08T23:59:59+02:00", id="gf-BY"),
        pytest.param(DE_BE, "2026-04-02T10:00:00+02:00", "2026-04-08T23:59:59+02:00", id="gf-BE"),
    ],
)
def test_german_regions(calendar: ClientCalendar, requested_at: str, expected: str) -> None:
    _assert_deadline(client_deadline(_at(requested_at), calendar), calendar, expected)


@pytest.mark.parametrize(
    ("calendar", "requested_at", "expected"),
    [
        # Wednesday before Thanksgiving (Thu 26 Nov 2026): Fri 27, Mon 30.
        pytest.param(US_NY, "2026-11-25T10:00:00-05:00", "2026-11-30T23:59:59-05:00", id="ny-26"),
        pytest.param(US_LA, "2026-11-25T10:00:00-08:00", "2026-11-30T23:59:59-08:00", id="la-26"),
        # Thanksgiving Thu 25 Nov 2027, requested from a UTC timestamp.
        pytest.param(US_LA, "2027-11-24T18:00:00+00:00", "2027-11-29T23:59:59-08:00", id="la-27"),
        # Thanksgiving Day itself: Fri 27, Mon 30.
        pytest.param(US_NY, "2026-11-26T10:00:00-05:00", "2026-11-30T23:59:59-05:00", id="on-tg"),
        # Independence Day 2026 is Saturday; the library observes it on Friday 3 July.
        pytest.param(US_NY, "2026-07-02T10:00:00-04:00", "2026-07-07T23:59:59-04:00", id="jul4"),
    ],
)
def test_us_federal_holidays(calendar: ClientCalendar, requested_at: str, expected: str) -> None:
    _assert_deadline(client_deadline(_at(requested_at), calendar), calendar, expected)


@pytest.mark.parametrize(
    ("requested_at", "expected"),
    [
        # Wednesday: Thu 16 counts, Fri 17 + Sat 18 are the weekend, Sun 19 counts.
        # (A Sat/Sun weekend would have given Friday.)
        pytest.param("2026-04-15T10:00:00+03:00", "2026-04-19T23:59:59+03:00", id="wed"),
        # Friday (weekend) request: Sun 19, Mon 20. (Sat/Sun weekend would give Tuesday.)
        pytest.param("2026-04-17T10:00:00+03:00", "2026-04-20T23:59:59+03:00", id="fri"),
        # Thursday: Sun 19, Mon 20.
        pytest.param("2026-04-16T10:00:00+03:00", "2026-04-20T23:59:59+03:00", id="thu"),
        # Eid al-Adha 2026: Tue 26 - Fri 29 May, Sat weekend, Sun 31 observed; Mon 1, Tue 2 Jun.
        pytest.param("2026-05-25T10:00:00+03:00", "2026-06-02T23:59:59+03:00", id="eid"),
    ],
)
def test_saudi_arabia_weekend_is_friday_saturday(requested_at: str, expected: str) -> None:
    _assert_deadline(client_deadline(_at(requested_at), SA), SA, expected)


def test_saudi_weekend_comes_from_the_library() -> None:
    weekend = holidays.country_holidays("SA").weekend
    assert weekend == {4, 5}  # Friday, Saturday
    week = [date(2026, 4, 12) + timedelta(days=i) for i in range(7)]  # Sun 12 .. Sat 18 Apr
    assert [SA.is_business_day(d) for d in week] == [d.weekday() not in weekend for d in week]
    assert [SA.is_business_day(d) for d in week] == [True, True, True, True, True, False, False]


@pytest.mark.parametrize(
    ("calendar", "requested_at", "expected"),
    [
        # Europe spring-forward Sun 29 Mar 2026: request at +01:00, deadline at +02:00.
        pytest.param(DK, "2026-03-27T15:00:00+01:00", "2026-03-31T23:59:59+02:00", id="cph-spring"),
        # Europe fall-back Sun 25 Oct 2026: request at +02:00, deadline at +01:00.
        pytest.param(DK, "2026-10-23T15:00:00+02:00", "2026-10-27T23:59:59+01:00", id="cph-fall"),
        # 2027: Fri 26 Mar is Good Friday, then spring-forward on Easter Sunday 28 Mar and
        # Easter Monday: Tue 30, Wed 31 Mar. Fall-back Sun 31 Oct 2027.
        pytest.param(DK, "2027-03-26T15:00:00+01:00", "2027-03-31T23:59:59+02:00", id="cph-sp27"),
        pytest.param(DK, "2027-10-29T15:00:00+02:00", "2027-11-02T23:59:59+01:00", id="cph-fa27"),
        # US spring-forward Sun 8 Mar 2026: -05:00 -> -04:00.
        pytest.param(
            US_NY, "2026-03-06T15:00:00-05:00", "2026-03-10T23:59:59-04:00", id="ny-spring"
        ),
        # US fall-back Sun 1 Nov 2026: -04:00 -> -05:00.
        pytest.param(US_NY, "2026-10-29T10:00:00-04:00", "2026-11-02T23:59:59-05:00", id="ny-fall"),
        pytest.param(US_NY, "2027-03-12T15:00:00-05:00", "2027-03-16T23:59:59-04:00", id="ny-sp27"),
        pytest.param(US_NY, "2027-11-05T15:00:00-04:00", "2027-11-09T23:59:59-05:00", id="ny-fa27"),
        # Requested during the skipped/repeated hour itself (given in UTC).
        pytest.param(DK, "2026-03-29T01:30:00+00:00", "2026-03-31T23:59:59+02:00", id="cph-gap"),
        pytest.param(US_NY, "2026-11-01T05:30:00+00:00", "2026-11-03T23:59:59-05:00", id="ny-fold"),
    ],
)
def test_daylight_saving_changes(
    calendar: ClientCalendar, requested_at: str, expected: str
) -> None:
    _assert_deadline(client_deadline(_at(requested_at), calendar), calendar, expected)


def test_deadline_across_dst_is_not_a_fixed_duration() -> None:
    # Fri 15:00 -> Tue 23:59:59 is 104h59m59s of wall time but one hour less across spring-forward.
    requested_at = _at("2026-03-27T15:00:00+01:00")
    result = client_deadline(requested_at, DK)
    assert result - requested_at == timedelta(hours=103, minutes=59, seconds=59)


@pytest.mark.parametrize(
    ("calendar", "requested_at", "expected"),
    [
        # Wed 30 Dec: Thu 31 counts, Fri 1 Jan is New Year's Day, weekend, Mon 4 Jan.
        pytest.param(DK, "2026-12-30T10:00:00+01:00", "2027-01-04T23:59:59+01:00", id="dk-30dec"),
        # Thu 31 Dec: Mon 4, Tue 5.
        pytest.param(DK, "2026-12-31T10:00:00+01:00", "2027-01-05T23:59:59+01:00", id="dk-31dec"),
        # 23:30 UTC on 30 Dec is already 31 Dec in Copenhagen (the UTC date would give 4 Jan).
        pytest.param(DK, "2026-12-30T23:30:00+00:00", "2027-01-05T23:59:59+01:00", id="dk-utc"),
        # US: New Year's Day 2028 is Saturday, observed Fri 31 Dec 2027 (filed under 2027).
        # Thu 30 Dec 2027: Fri 31 skipped, weekend, Mon 3, Tue 4 Jan 2028.
        pytest.param(US_NY, "2027-12-30T10:00:00-05:00", "2028-01-04T23:59:59-05:00", id="us-obs"),
        # Christmas 2027 is Saturday, observed Fri 24 Dec: Thu 23 -> Mon 27, Tue 28.
        pytest.param(US_NY, "2027-12-23T10:00:00-05:00", "2027-12-28T23:59:59-05:00", id="us-xmas"),
        # Bavaria: Wed 30 Dec 2026 -> Thu 31, (New Year, weekend), Mon 4 Jan 2027.
        pytest.param(DE_BY, "2026-12-30T10:00:00+01:00", "2027-01-04T23:59:59+01:00", id="by"),
    ],
)
def test_year_boundary(calendar: ClientCalendar, requested_at: str, expected: str) -> None:
    _assert_deadline(client_deadline(_at(requested_at), calendar), calendar, expected)


@pytest.mark.parametrize(
    ("calendar", "requested_at", "business_days", "expected"),
    [
        pytest.param(DK, "2026-05-08T15:00:00+02:00", 1, "2026-05-11T23:59:59+02:00", id="1-fri"),
        pytest.param(DK, "2026-05-11T15:00:00+02:00", 1, "2026-05-12T23:59:59+02:00", id="1-mon"),
        pytest.param(
            DK, "2026-04-01T10:00:00+02:00", 1, "2026-04-07T23:59:59+02:00", id="1-easter"
        ),
        pytest.param(SA, "2026-04-16T10:00:00+03:00", 1, "2026-04-19T23:59:59+03:00", id="1-sa"),
        # Fri 8 May: Mon 11, Tue 12, Wed 13, (Ascension Thu 14), Fri 15, Mon 18.
        pytest.param(DK, "2026-05-08T15:00:00+02:00", 5, "2026-05-18T23:59:59+02:00", id="5-asc"),
        # Mon 28 Dec 2026: Tue 29, Wed 30, Thu 31, (New Year), Mon 4, Tue 5 Jan 2027.
        pytest.param(DK, "2026-12-28T10:00:00+01:00", 5, "2027-01-05T23:59:59+01:00", id="5-year"),
        # Mon 5 Jan 2026 in Bavaria: (Epiphany Tue 6), Wed 7 .. Tue 13 Jan.
        pytest.param(DE_BY, "2026-01-05T10:00:00+01:00", 5, "2026-01-13T23:59:59+01:00", id="5-by"),
        pytest.param(DE_BE, "2026-01-05T10:00:00+01:00", 5, "2026-01-12T23:59:59+01:00", id="5-be"),
        # Thu 31 Dec 2026 in Bavaria, over New Year and Epiphany (Wed 6 Jan 2027):
        # Mon 4, Tue 5, Thu 7, Fri 8, Mon 11 Jan.
        pytest.param(
            DE_BY, "2026-12-31T10:00:00+01:00", 5, "2027-01-11T23:59:59+01:00", id="5-by-ny"
        ),
        pytest.param(DK, "2026-05-06T10:00:00+02:00", 10, "2026-05-21T23:59:59+02:00", id="10"),
    ],
)
def test_other_business_day_counts(
    calendar: ClientCalendar, requested_at: str, business_days: int, expected: str
) -> None:
    result = client_deadline(_at(requested_at), calendar, business_days)
    _assert_deadline(result, calendar, expected)


def test_default_is_two_business_days() -> None:
    requested_at = _at("2026-05-06T10:00:00+02:00")
    assert client_deadline(requested_at, DK) == client_deadline(requested_at, DK, 2)
    assert client_deadline(requested_at, DK).date() == date(2026, 5, 8)


# --- ClientCalendar methods -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("calendar", "day", "expected"),
    [
        (DK, date(2026, 5, 8), True),  # Friday
        (DK, date(2026, 5, 9), False),  # Saturday
        (DK, date(2026, 5, 10), False),  # Sunday
        (DK, date(2026, 5, 14), False),  # Ascension Day
        (DK, date(2026, 12, 24), True),  # Christmas Eve: not a DK public holiday
        (DE_BY, date(2026, 1, 6), False),
        (DE_BE, date(2026, 1, 6), True),
        (US_NY, date(2026, 7, 3), False),  # Independence Day observed
        (US_NY, date(2026, 11, 26), False),
        (SA, date(2026, 4, 17), False),  # Friday
        (SA, date(2026, 4, 18), False),  # Saturday
        (SA, date(2026, 4, 19), True),  # Sunday
    ],
)
def test_is_business_day(calendar: ClientCalendar, day: date, expected: bool) -> None:
    assert calendar.is_business_day(day) is expected


@pytest.mark.parametrize(
    ("day", "n", "expected"),
    [
        (date(2026, 5, 8), 1, date(2026, 5, 11)),
        (date(2026, 5, 8), 2, date(2026, 5, 12)),
        (date(2026, 5, 9), 1, date(2026, 5, 11)),
        (date(2026, 5, 13), 1, date(2026, 5, 15)),  # skips Ascension Day
        (date(2026, 12, 31), 1, date(2027, 1, 4)),
        (date(2026, 1, 1), 1, date(2026, 1, 2)),  # a holiday start day does not count
    ],
)
def test_add_business_days(day: date, n: int, expected: date) -> None:
    assert DK.add_business_days(day, n) == expected


def test_local_date() -> None:
    instant = _at("2026-05-07T22:30:00+00:00")
    assert DK.local_date(instant) == date(2026, 5, 8)
    assert US_LA.local_date(instant) == date(2026, 5, 7)
    assert SA.local_date(instant) == date(2026, 5, 8)
    assert US_LA.local_date(_at("2026-05-08T06:59:59+00:00")) == date(2026, 5, 7)
    assert US_LA.local_date(_at("2026-05-08T07:00:00+00:00")) == date(2026, 5, 8)


@pytest.mark.parametrize(
    ("calendar", "day", "expected"),
    [
        (DK, date(2026, 1, 15), "2026-01-15T23:59:59+01:00"),
        (DK, date(2026, 7, 15), "2026-07-15T23:59:59+02:00"),
        (DK, date(2026, 3, 29), "2026-03-29T23:59:59+02:00"),  # the spring-forward day
        (DK, date(2026, 10, 25), "2026-10-25T23:59:59+01:00"),  # the fall-back day
        (US_NY, date(2026, 3, 8), "2026-03-08T23:59:59-04:00"),
        (US_NY, date(2026, 11, 1), "2026-11-01T23:59:59-05:00"),
        (SA, date(2026, 4, 19), "2026-04-19T23:59:59+03:00"),
        # Santiago falls back at midnight Sat 4 -> Sun 5 Apr 2026, so 23:59:59 Saturday happens
        # twice (-03:00 then -04:00); the end of the day is the second one.
        (CL, date(2026, 4, 4), "2026-04-04T23:59:59-04:00"),
    ],
)
def test_end_of_local_day(calendar: ClientCalendar, day: date, expected: str) -> None:
    _assert_deadline(calendar.end_of_local_day(day), calendar, expected)


def test_end_of_local_day_at_santiago_fall_back_is_the_later_instant() -> None:
    result = CL.end_of_local_day(date(2026, 4, 4))
    assert result.astimezone(UTC) == datetime(2026, 4, 5, 3, 59, 59, tzinfo=UTC)
    # One second later it is already the next local day.
    assert CL.local_date(result + timedelta(seconds=1)) == date(2026, 4, 5)


# --- agreement with the library, day by day over 2026-2027 ----------------------------------

_ALL_DAYS = [date(2026, 1, 1) + timedelta(days=i) for i in range(730)]
_LIBRARY_CASES = [
    (DK, "DK", None),
    (DE_BY, "DE", "BY"),
    (DE_BE, "DE", "BE"),
    (US_NY, "US", None),
    (SA, "SA", None),
]


@pytest.mark.parametrize(("calendar", "country", "subdiv"), _LIBRARY_CASES)
def test_is_business_day_matches_library_weekend_and_holidays(
    calendar: ClientCalendar, country: str, subdiv: str | None
) -> None:
    lib = holidays.country_holidays(country, subdiv=subdiv)
    for day in _ALL_DAYS:
        expected = day.weekday() not in lib.weekend and day not in lib
        assert calendar.is_business_day(day) is expected, day


@pytest.mark.parametrize("n", [1, 2, 5])
@pytest.mark.parametrize(("calendar", "country", "subdiv"), _LIBRARY_CASES)
def test_add_business_days_matches_library(
    calendar: ClientCalendar, country: str, subdiv: str | None, n: int
) -> None:
    lib = holidays.country_holidays(country, subdiv=subdiv)
    for day in _ALL_DAYS:
        result = calendar.add_business_days(day, n)
        assert result == lib.get_nth_working_day(day, n), day
        # Independently: strictly later, a business day, with exactly n business days in
        # (day, result].
        assert result > day
        assert calendar.is_business_day(result)
        span = [day + timedelta(days=i) for i in range(1, (result - day).days + 1)]
        assert sum(calendar.is_business_day(d) for d in span) == n, day


# --- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        pytest.param(("XX", None, "UTC"), ["unknown country 'XX'", "DK", "DE", "US"], id="country"),
        pytest.param(("dk", None, "UTC"), ["'dk'", "did you mean 'DK'"], id="country-case"),
        pytest.param(("UK", None, "UTC"), ["'UK'", "GB"], id="country-alias"),
        pytest.param(("", None, "UTC"), ["unknown country ''"], id="country-empty"),
        pytest.param(
            ("DE", "XX", "Europe/Berlin"),
            ["unknown subdivision 'XX' for country DE; known: ", "BB, BE", "BY"],
            id="subdiv",
        ),
        pytest.param(
            ("DE", "Bayern", "Europe/Berlin"), ["'Bayern'", "did you mean 'BY'"], id="subdiv-name"
        ),
        pytest.param(
            ("DE", "by", "Europe/Berlin"), ["'by'", "did you mean 'BY'"], id="subdiv-case"
        ),
        pytest.param(("DK", "84", "Europe/Copenhagen"), ["'84'", "country DK"], id="subdiv-none"),
        pytest.param(
            ("DK", "", "Europe/Copenhagen"), ["unknown subdivision ''"], id="subdiv-empty"
        ),
        pytest.param(
            ("DK", None, "Mars/Olympus"), ["unknown time zone 'Mars/Olympus'", "IANA"], id="tz"
        ),
        pytest.param(
            ("DK", None, "europe/copenhagen"),
            ["'europe/copenhagen'", "'Europe/Copenhagen'"],
            id="tz-case",
        ),
        pytest.param(("DK", None, ""), ["unknown time zone ''"], id="tz-empty"),
        pytest.param(("DK", None, "../etc/passwd"), ["'../etc/passwd'"], id="tz-path"),
        pytest.param(("DK", None, "CET+1"), ["'CET+1'"], id="tz-junk"),
    ],
)
def test_calendar_validation(args: tuple[str, str | None, str], fragments: list[str]) -> None:
    with pytest.raises(CalendarError) as excinfo:
        ClientCalendar(*args)
    message = str(excinfo.value)
    for fragment in fragments:
        assert fragment in message


def test_calendar_error_is_a_value_error() -> None:
    assert issubclass(CalendarError, ValueError)
    with pytest.raises(ValueError, match="unknown country 'ZZ'"):
        ClientCalendar("ZZ", None, "UTC")


def test_valid_calendars_construct() -> None:
    assert ClientCalendar("DE", "Augsburg", "Europe/Berlin").subdivision == "Augsburg"
    assert ClientCalendar("US", "CA", "America/Los_Angeles").country == "US"
    assert ClientCalendar("GB", None, "Europe/London").time_zone == "Europe/London"


@pytest.mark.parametrize(
    "requested_at",
    [
        pytest.param(datetime(2026, 5, 8, 15, 0), id="naive"),
        pytest.param(datetime(2026, 5, 8), id="naive-midnight"),
    ],
)
def test_naive_requested_at_is_rejected(requested_at: datetime) -> None:
    with pytest.raises(CalendarError, match=r"requested_at must be timezone-aware.*2026-05-08T"):
        client_deadline(requested_at, DK)


def test_naive_instant_is_rejected_by_local_date() -> None:
    with pytest.raises(CalendarError, match=r"instant must be timezone-aware.*2026-05-08T15:00"):
        DK.local_date(datetime(2026, 5, 8, 15, 0))


@pytest.mark.parametrize("business_days", [0, -1, -5])
def test_business_days_below_one_is_rejected(business_days: int) -> None:
    with pytest.raises(CalendarError, match=rf"business_days must be >= 1.*got {business_days}"):
        client_deadline(_at("2026-05-08T15:00:00+02:00"), DK, business_days)


@pytest.mark.parametrize("business_days", [True, 2.0, "2"])
def test_business_days_must_be_an_int(business_days: object) -> None:
    with pytest.raises(CalendarError, match=r"business_days must be an int >= 1, got"):
        client_deadline(_at("2026-05-08T15:00:00+02:00"), DK, business_days)  # type: ignore[arg-type]


@pytest.mark.parametrize("n", [0, -1])
def test_add_business_days_rejects_n_below_one(n: int) -> None:
    with pytest.raises(CalendarError, match=rf"n must be >= 1.*got {n}"):
        DK.add_business_days(date(2026, 5, 8), n)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: DK.is_business_day(datetime(2026, 5, 8, 23, 0, tzinfo=UTC)), id="is"),
        pytest.param(lambda: DK.add_business_days(datetime(2026, 5, 8, 23, 0), 2), id="add"),
        pytest.param(lambda: DK.end_of_local_day(datetime(2026, 5, 8, 23, 0)), id="end"),
    ],
)
def test_datetime_where_a_local_date_is_expected_is_rejected(call: Callable[[], object]) -> None:
    # A datetime is a date subclass; silently taking its (probably UTC) date is the bug.
    with pytest.raises(CalendarError, match=r"must be a plain date, got datetime 2026-05-08T23"):
        call()


def test_non_datetime_requested_at_is_rejected() -> None:
    with pytest.raises(CalendarError, match=r"requested_at must be a datetime, got date"):
        client_deadline(date(2026, 5, 8), DK)  # type: ignore[arg-type]


# --- value semantics and caching -------------------------------------------------------------


def test_calendar_is_frozen_and_hashable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DK.country = "SE"  # type: ignore[misc]
    assert ClientCalendar("DK", None, "Europe/Copenhagen") == DK
    assert len({DK, ClientCalendar("DK", None, "Europe/Copenhagen"), DE_BY}) == 2


def test_holiday_objects_are_cached_per_country_and_subdivision() -> None:
    first = deadlines._country_holidays("DE", "BY")
    ClientCalendar("DE", "BY", "Europe/Berlin")
    assert deadlines._country_holidays("DE", "BY") is first
    assert deadlines._country_holidays("DE", "BE") is not first
    before = deadlines._year_holidays.cache_info()
    for _ in range(50):
        client_deadline(_at("2026-01-05T10:00:00+01:00"), DE_BY)
    after = deadlines._year_holidays.cache_info()
    assert after.misses - before.misses <= 1  # 2026 at most, once
    assert after.hits - before.hits >= 50


def test_concurrent_use_gives_consistent_results() -> None:
    # Activities may share calendars across threads; cached data must never be half-built.
    deadlines._year_holidays.cache_clear()
    calendar = ClientCalendar("DE", "BY", "Europe/Berlin")
    requested_at = _at("2029-01-05T10:00:00+01:00")  # Friday; Epiphany 2029 is Saturday
    results: list[datetime] = []
    lock = threading.Lock()

    def work() -> None:
        result = client_deadline(requested_at, calendar)
        with lock:
            results.append(result)

    threads = [threading.Thread(target=work) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {r.isoformat() for r in results} == {"2029-01-09T23:59:59+01:00"}


def test_result_zone_is_the_clients_whatever_the_input_zone() -> None:
    # 10:00 at UTC-03:00 = 16:00 Friday in Riyadh (weekend): Sun 10, Mon 11 May.
    requested_at = datetime(2026, 5, 8, 10, 0, tzinfo=timezone(timedelta(hours=-3)))
    _assert_deadline(client_deadline(requested_at, SA), SA, "2026-05-11T23:59:59+03:00")
