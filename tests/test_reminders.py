"""Tests for the reminder schedule and the latest deadline (domain/reminders.py).

Expected dates were worked out by hand from the `holidays` 0.109 data for 2026, which was
printed and checked while writing these tests; `test_fixture_holidays_are_what_the_tests_assume`
pins the holidays the cases rely on, so a library data change fails there first.

Expected times are ISO strings with the UTC offset: comparing aware datetimes that share a tzinfo
ignores the offset, so `==` alone could not catch a DST mistake; the string can.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest

from domain.deadlines import CalendarError, ClientCalendar, client_deadline
from domain.models import RequestPolicy
from domain.reminders import latest_deadline, reminder_times

DK = ClientCalendar("DK", None, "Europe/Copenhagen")
DE_BY = ClientCalendar("DE", "BY", "Europe/Berlin")
DE_BE = ClientCalendar("DE", "BE", "Europe/Berlin")
US_NY = ClientCalendar("US", None, "America/New_York")
SA = ClientCalendar("SA", None, "Asia/Riyadh")
# Saudi business days (Sunday works) on a Copenhagen clock: an artificial pairing, but the only
# way to get a business day on which a European DST change happens (those are all Sundays).
SA_ON_CPH_CLOCK = ClientCalendar("SA", None, "Europe/Copenhagen")

CPH = ZoneInfo("Europe/Copenhagen")
DEFAULT = RequestPolicy()


def _at(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def _due(calendar: ClientCalendar, day: date) -> datetime:
    return calendar.end_of_local_day(day)


def _assert_times(result: list[datetime], calendar: ClientCalendar, expected: list[str]) -> None:
    assert [t.isoformat() for t in result] == expected
    for t in result:
        assert isinstance(t.tzinfo, ZoneInfo)
        assert t.tzinfo.key == calendar.time_zone
    # The instants themselves, independently of how they are displayed.
    assert [t.astimezone(UTC) for t in result] == [_at(e).astimezone(UTC) for e in expected]


# --- the library data the cases below rely on -------------------------------------------------


@pytest.mark.parametrize(
    ("country", "subdiv", "day", "name"),
    [
        ("DK", None, date(2026, 4, 2), "Maundy Thursday"),
        ("DK", None, date(2026, 4, 3), "Good Friday"),
        ("DK", None, date(2026, 4, 6), "Easter Monday"),
        ("DK", None, date(2026, 5, 14), "Ascension Day"),
        ("DE", "BY", date(2026, 6, 4), "Corpus Christi"),
        ("SA", None, date(2026, 5, 26), "Day of Arafah"),
        ("SA", None, date(2026, 5, 27), "Eid al-Adha Holiday"),
        ("SA", None, date(2026, 5, 28), "Eid al-Adha Holiday"),
        ("SA", None, date(2026, 5, 31), "Eid al-Adha Holiday (observed)"),
    ],
)
def test_fixture_holidays_are_what_the_tests_assume(
    country: str, subdiv: str | None, day: date, name: str
) -> None:
    assert holidays.country_holidays(country, subdiv=subdiv).get(day) == name


@pytest.mark.parametrize(
    ("country", "subdiv", "first", "last"),
    [
        # Weeks the plain cases use: no holidays at all.
        ("DK", None, date(2026, 3, 2), date(2026, 3, 31)),
        ("DK", None, date(2026, 10, 19), date(2026, 10, 30)),
        ("US", None, date(2026, 3, 2), date(2026, 3, 13)),
        ("SA", None, date(2026, 4, 12), date(2026, 4, 23)),
        ("DE", "BE", date(2026, 6, 1), date(2026, 6, 12)),  # Corpus Christi is not Berlin's
    ],
)
def test_fixture_holiday_free_stretches(
    country: str, subdiv: str | None, first: date, last: date
) -> None:
    lib = holidays.country_holidays(country, subdiv=subdiv)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    assert [d for d in days if d in lib] == []


# --- the default policy ------------------------------------------------------------------------


def test_default_policy_values() -> None:
    # The cases below assume these; a changed default should fail here, not downstream.
    assert DEFAULT.reminder_local_time == time(9, 0)
    assert DEFAULT.first_reminder_business_days_before_due == 0
    assert DEFAULT.reminder_every_business_days == 2
    assert DEFAULT.max_reminders == 3


@pytest.mark.parametrize(
    "requested_at",
    [
        pytest.param("2026-03-06T15:00:00+01:00", id="local"),
        pytest.param("2026-03-06T14:00:00+00:00", id="utc"),
    ],
)
def test_danish_friday_request_with_the_default_policy(requested_at: str) -> None:
    # Friday 6 Mar -> due Tuesday 10 Mar. Reminders: the due morning, then +2 business days
    # (Thursday 12), then +4 (Friday 13, weekend, Monday 16).
    request = _at(requested_at)
    due_at = client_deadline(request, DK)
    assert due_at.isoformat() == "2026-03-10T23:59:59+01:00"
    _assert_times(
        reminder_times(due_at, request, DK, DEFAULT),
        DK,
        ["2026-03-10T09:00:00+01:00", "2026-03-12T09:00:00+01:00", "2026-03-16T09:00:00+01:00"],
    )


def test_due_at_given_in_utc_uses_the_clients_local_due_day() -> None:
    # 23:30 UTC Monday 9 Mar is already Tuesday 10 Mar in Copenhagen: Tuesday is the due day.
    result = reminder_times(
        _at("2026-03-09T23:30:00+00:00"), _at("2026-03-05T12:00:00+00:00"), DK, DEFAULT
    )
    _assert_times(
        result,
        DK,
        ["2026-03-10T09:00:00+01:00", "2026-03-12T09:00:00+01:00", "2026-03-16T09:00:00+01:00"],
    )


# --- holidays in the overdue period ----------------------------------------------------------


@pytest.mark.parametrize(
    ("calendar", "due_day", "expected"),
    [
        # Due Tue 12 May: Wed 13, (Ascension Thu 14), Fri 15; Mon 18, Tue 19.
        pytest.param(
            DK,
            date(2026, 5, 12),
            ["2026-05-12T09:00:00+02:00", "2026-05-15T09:00:00+02:00", "2026-05-19T09:00:00+02:00"],
            id="dk-ascension",
        ),
        # Due Wed 1 Apr: (Maundy Thu, Good Fri, weekend, Easter Mon) Tue 7, Wed 8; Thu 9, Fri 10.
        pytest.param(
            DK,
            date(2026, 4, 1),
            ["2026-04-01T09:00:00+02:00", "2026-04-08T09:00:00+02:00", "2026-04-10T09:00:00+02:00"],
            id="dk-easter",
        ),
        # Due Wed 3 Jun: (Corpus Christi Thu 4 in Bavaria) Fri 5, Mon 8; Tue 9, Wed 10.
        pytest.param(
            DE_BY,
            date(2026, 6, 3),
            ["2026-06-03T09:00:00+02:00", "2026-06-08T09:00:00+02:00", "2026-06-10T09:00:00+02:00"],
            id="de-by-corpus-christi",
        ),
        # The same dates in Berlin, where Thursday 4 June is a working day.
        pytest.param(
            DE_BE,
            date(2026, 6, 3),
            ["2026-06-03T09:00:00+02:00", "2026-06-05T09:00:00+02:00", "2026-06-09T09:00:00+02:00"],
            id="de-be-no-holiday",
        ),
        # Due Mon 25 May: Arafah Tue 26, Eid Wed 27 - Fri 29, Sat weekend, Sun 31 observed;
        # Mon 1, Tue 2 Jun; Wed 3, Thu 4.
        pytest.param(
            SA,
            date(2026, 5, 25),
            ["2026-05-25T09:00:00+03:00", "2026-06-02T09:00:00+03:00", "2026-06-04T09:00:00+03:00"],
            id="sa-eid",
        ),
    ],
)
def test_holidays_in_the_overdue_period_are_skipped(
    calendar: ClientCalendar, due_day: date, expected: list[str]
) -> None:
    requested_at = _due(calendar, due_day) - timedelta(days=5)
    result = reminder_times(_due(calendar, due_day), requested_at, calendar, DEFAULT)
    _assert_times(result, calendar, expected)
    for t in result:
        assert calendar.is_business_day(t.date())


# --- max_reminders -------------------------------------------------------------------------------

_TUE_10_MAR = _due(DK, date(2026, 3, 10))
_EARLY = _at("2026-03-06T15:00:00+01:00")


def test_max_reminders_zero_means_none() -> None:
    policy = RequestPolicy(max_reminders=0)
    assert reminder_times(_TUE_10_MAR, _EARLY, DK, policy) == []
    policy = RequestPolicy(max_reminders=0, first_reminder_business_days_before_due=2)
    assert reminder_times(_TUE_10_MAR, _EARLY, DK, policy) == []


def test_max_reminders_one_is_only_the_first() -> None:
    result = reminder_times(_TUE_10_MAR, _EARLY, DK, RequestPolicy(max_reminders=1))
    _assert_times(result, DK, ["2026-03-10T09:00:00+01:00"])


def test_max_reminders_one_dropped_is_not_replaced() -> None:
    # Requested after the due-morning reminder: with one reminder allowed, there is none left.
    late = _at("2026-03-10T14:00:00+01:00")
    assert reminder_times(_TUE_10_MAR, late, DK, RequestPolicy(max_reminders=1)) == []


@pytest.mark.parametrize(
    ("max_reminders", "expected"),
    [
        (2, ["2026-03-10T09:00:00+01:00", "2026-03-12T09:00:00+01:00"]),
        (
            5,
            [
                "2026-03-10T09:00:00+01:00",
                "2026-03-12T09:00:00+01:00",
                "2026-03-16T09:00:00+01:00",
                "2026-03-18T09:00:00+01:00",
                "2026-03-20T09:00:00+01:00",
            ],
        ),
    ],
)
def test_max_reminders_caps_the_count(max_reminders: int, expected: list[str]) -> None:
    result = reminder_times(_TUE_10_MAR, _EARLY, DK, RequestPolicy(max_reminders=max_reminders))
    _assert_times(result, DK, expected)


def test_every_n_business_days() -> None:
    # Every 3 business days after Tue 10 Mar: Fri 13, Wed 18.
    policy = RequestPolicy(reminder_every_business_days=3)
    result = reminder_times(_TUE_10_MAR, _EARLY, DK, policy)
    _assert_times(
        result,
        DK,
        ["2026-03-10T09:00:00+01:00", "2026-03-13T09:00:00+01:00", "2026-03-18T09:00:00+01:00"],
    )


def test_reminder_local_time_is_used_to_the_second() -> None:
    policy = RequestPolicy(reminder_local_time=time(16, 45, 30))
    result = reminder_times(_TUE_10_MAR, _EARLY, DK, policy)
    _assert_times(
        result,
        DK,
        ["2026-03-10T16:45:30+01:00", "2026-03-12T16:45:30+01:00", "2026-03-16T16:45:30+01:00"],
    )


# --- the first reminder before the due day -------------------------------------------------------


@pytest.mark.parametrize(
    ("calendar", "due_day", "before", "expected_first"),
    [
        # Due Mon 16 Mar, one business day before: Friday 13 (over the weekend).
        pytest.param(DK, date(2026, 3, 16), 1, "2026-03-13T09:00:00+01:00", id="dk-1-weekend"),
        # Due Thu 12 Mar, one before: Wednesday 11.
        pytest.param(DK, date(2026, 3, 12), 1, "2026-03-11T09:00:00+01:00", id="dk-1"),
        # Due Tue 7 Apr, one before: Easter Mon, Sun, Sat, Good Fri, Maundy Thu -> Wed 1 Apr.
        pytest.param(DK, date(2026, 4, 7), 1, "2026-04-01T09:00:00+02:00", id="dk-1-easter"),
        # Due Mon 18 May, two before: Fri 15, (Ascension Thu 14), Wed 13.
        pytest.param(DK, date(2026, 5, 18), 2, "2026-05-13T09:00:00+02:00", id="dk-2-asc"),
        # Saudi: due Sun 19 Apr, one before: Sat, Fri are the weekend -> Thursday 16.
        pytest.param(SA, date(2026, 4, 19), 1, "2026-04-16T09:00:00+03:00", id="sa-1-weekend"),
    ],
)
def test_first_reminder_business_days_before_due(
    calendar: ClientCalendar, due_day: date, before: int, expected_first: str
) -> None:
    policy = RequestPolicy(first_reminder_business_days_before_due=before, max_reminders=2)
    requested_at = _due(calendar, due_day) - timedelta(days=14)
    result = reminder_times(_due(calendar, due_day), requested_at, calendar, policy)
    # The second is still counted from the due day (+2 business days), not from the first.
    expected_second = calendar.add_business_days(due_day, 2)
    assert [t.isoformat() for t in result][:1] == [expected_first]
    assert len(result) == 2
    assert result[1].date() == expected_second
    assert result[1].timetz().replace(tzinfo=None) == time(9, 0)


def test_first_reminder_one_before_due_full_schedule() -> None:
    policy = RequestPolicy(first_reminder_business_days_before_due=1)
    result = reminder_times(_TUE_10_MAR, _EARLY, DK, policy)
    # Mon 9 (one before Tue 10), then Thu 12, Mon 16: nothing on the due morning itself.
    _assert_times(
        result,
        DK,
        ["2026-03-09T09:00:00+01:00", "2026-03-12T09:00:00+01:00", "2026-03-16T09:00:00+01:00"],
    )


def test_first_reminder_before_the_request_is_dropped_not_replaced() -> None:
    # Three business days before Tue 10 Mar is Thu 5 Mar, before the Friday request: dropped,
    # and the schedule is not topped up with a fourth reminder.
    policy = RequestPolicy(first_reminder_business_days_before_due=3)
    result = reminder_times(_TUE_10_MAR, _EARLY, DK, policy)
    _assert_times(result, DK, ["2026-03-12T09:00:00+01:00", "2026-03-16T09:00:00+01:00"])


# --- requests on the due day ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested_at", "expected"),
    [
        # The due day's afternoon: no same-morning reminder.
        pytest.param(
            "2026-03-10T14:00:00+01:00",
            ["2026-03-12T09:00:00+01:00", "2026-03-16T09:00:00+01:00"],
            id="afternoon",
        ),
        # Exactly at the reminder time: not strictly after, so dropped.
        pytest.param(
            "2026-03-10T09:00:00+01:00",
            ["2026-03-12T09:00:00+01:00", "2026-03-16T09:00:00+01:00"],
            id="at-09:00",
        ),
        pytest.param(
            "2026-03-10T08:00:00+00:00",
            ["2026-03-12T09:00:00+01:00", "2026-03-16T09:00:00+01:00"],
            id="at-09:00-in-utc",
        ),
        # One second earlier: kept.
        pytest.param(
            "2026-03-10T08:59:59+01:00",
            ["2026-03-10T09:00:00+01:00", "2026-03-12T09:00:00+01:00", "2026-03-16T09:00:00+01:00"],
            id="08:59:59",
        ),
        pytest.param(
            "2026-03-10T07:59:59+00:00",
            ["2026-03-10T09:00:00+01:00", "2026-03-12T09:00:00+01:00", "2026-03-16T09:00:00+01:00"],
            id="08:59:59-in-utc",
        ),
        # After the second overdue reminder: only the last one is left.
        pytest.param("2026-03-13T10:00:00+01:00", ["2026-03-16T09:00:00+01:00"], id="overdue"),
        pytest.param("2026-03-16T09:00:01+01:00", [], id="after-all"),
    ],
)
def test_reminders_not_after_the_request_are_dropped(
    requested_at: str, expected: list[str]
) -> None:
    _assert_times(reminder_times(_TUE_10_MAR, _at(requested_at), DK, DEFAULT), DK, expected)


# --- DST ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("calendar", "due_day", "expected", "expected_utc_hours"),
    [
        # Spring-forward Sun 29 Mar 2026: Wed 25, Fri 27 at +01:00; Tue 31 at +02:00.
        pytest.param(
            DK,
            date(2026, 3, 25),
            ["2026-03-25T09:00:00+01:00", "2026-03-27T09:00:00+01:00", "2026-03-31T09:00:00+02:00"],
            [8, 8, 7],
            id="cph-spring",
        ),
        # Fall-back Sun 25 Oct 2026: Thu 22 at +02:00; Mon 26, Wed 28 at +01:00.
        pytest.param(
            DK,
            date(2026, 10, 22),
            ["2026-10-22T09:00:00+02:00", "2026-10-26T09:00:00+01:00", "2026-10-28T09:00:00+01:00"],
            [7, 8, 8],
            id="cph-fall",
        ),
        # US spring-forward Sun 8 Mar 2026: Thu 5 at -05:00; Mon 9, Wed 11 at -04:00.
        pytest.param(
            US_NY,
            date(2026, 3, 5),
            ["2026-03-05T09:00:00-05:00", "2026-03-09T09:00:00-04:00", "2026-03-11T09:00:00-04:00"],
            [14, 13, 13],
            id="ny-spring",
        ),
    ],
)
def test_dst_change_keeps_the_local_time(
    calendar: ClientCalendar, due_day: date, expected: list[str], expected_utc_hours: list[int]
) -> None:
    requested_at = _due(calendar, due_day) - timedelta(days=5)
    result = reminder_times(_due(calendar, due_day), requested_at, calendar, DEFAULT)
    _assert_times(result, calendar, expected)
    assert [t.astimezone(UTC).hour for t in result] == expected_utc_hours


def test_local_time_in_the_spring_forward_gap_resolves_forward() -> None:
    # 02:30 does not exist in Copenhagen on Sun 29 Mar 2026 (02:00 -> 03:00): it becomes 03:30
    # summer time (01:30 UTC). The other days are ordinary 02:30.
    policy = RequestPolicy(
        reminder_local_time=time(2, 30), first_reminder_business_days_before_due=1
    )
    due_at = _due(SA_ON_CPH_CLOCK, date(2026, 3, 30))  # Monday; Sunday is the business day before
    result = reminder_times(due_at, _at("2026-03-20T12:00:00+01:00"), SA_ON_CPH_CLOCK, policy)
    _assert_times(
        result,
        SA_ON_CPH_CLOCK,
        ["2026-03-29T03:30:00+02:00", "2026-04-01T02:30:00+02:00", "2026-04-05T02:30:00+02:00"],
    )
    assert result[0].astimezone(UTC) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def test_ambiguous_local_time_at_fall_back_is_the_first_occurrence() -> None:
    # 02:30 happens twice in Copenhagen on Sun 25 Oct 2026 (+02:00, then +01:00).
    policy = RequestPolicy(
        reminder_local_time=time(2, 30), first_reminder_business_days_before_due=1, max_reminders=1
    )
    due_at = _due(SA_ON_CPH_CLOCK, date(2026, 10, 26))
    result = reminder_times(due_at, _at("2026-10-20T12:00:00+02:00"), SA_ON_CPH_CLOCK, policy)
    _assert_times(result, SA_ON_CPH_CLOCK, ["2026-10-25T02:30:00+02:00"])


# --- Saudi Arabia ------------------------------------------------------------------------------


def test_saudi_weekend_is_friday_saturday() -> None:
    # Request Mon 13 Apr -> due Wed 15. Then +2: Thu 16, (Fri 17, Sat 18) Sun 19 - with a
    # Sat/Sun weekend it would have been Friday 17; +4: Mon 20, Tue 21.
    request = _at("2026-04-13T10:00:00+03:00")
    due_at = client_deadline(request, SA)
    assert due_at.isoformat() == "2026-04-15T23:59:59+03:00"
    result = reminder_times(due_at, request, SA, DEFAULT)
    _assert_times(
        result,
        SA,
        ["2026-04-15T09:00:00+03:00", "2026-04-19T09:00:00+03:00", "2026-04-21T09:00:00+03:00"],
    )
    assert [t.strftime("%a") for t in result] == ["Wed", "Sun", "Tue"]


# --- the schedule's shape over a whole year --------------------------------------------------


def _business_days_between(calendar: ClientCalendar, start: date, end: date) -> int:
    """Business days in (start, end]."""
    return sum(
        calendar.is_business_day(start + timedelta(days=i))
        for i in range(1, (end - start).days + 1)
    )


@pytest.mark.parametrize(
    "policy",
    [
        pytest.param(DEFAULT, id="default"),
        pytest.param(
            RequestPolicy(
                reminder_local_time=time(7, 15),
                first_reminder_business_days_before_due=1,
                reminder_every_business_days=3,
                max_reminders=4,
            ),
            id="custom",
        ),
    ],
)
@pytest.mark.parametrize("calendar", [DK, DE_BY, SA, US_NY], ids=["dk", "de-by", "sa", "us-ny"])
def test_schedule_shape_for_every_request_day_of_2026(
    calendar: ClientCalendar, policy: RequestPolicy
) -> None:
    before = policy.first_reminder_business_days_before_due
    every = policy.reminder_every_business_days
    for offset in range(365):
        day = date(2026, 1, 1) + timedelta(days=offset)
        # Early morning: every reminder is after the request (the first is >= 1 day later).
        requested_at = datetime.combine(day, time(0, 30), tzinfo=calendar.zone)
        due_at = client_deadline(requested_at, calendar, 3)
        due_day = due_at.date()
        result = reminder_times(due_at, requested_at, calendar, policy)
        assert len(result) == policy.max_reminders, day
        assert result == sorted(result)
        days = [t.date() for t in result]
        for t in result:
            assert t > requested_at
            assert (t.hour, t.minute, t.second) == (
                policy.reminder_local_time.hour,
                policy.reminder_local_time.minute,
                0,
            )
            assert calendar.is_business_day(t.date()), t
        # The first: exactly `before` business days before the due day (or the due day itself).
        if before == 0:
            assert days[0] == due_day
        else:
            assert days[0] < due_day
            assert _business_days_between(calendar, days[0], due_day) == before, day
        # The rest: k * every business days after the due day.
        for k, reminder_day in enumerate(days[1:], start=1):
            assert _business_days_between(calendar, due_day, reminder_day) == k * every, day


# --- the latest deadline -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("calendar", "requested_at", "policy", "expected"),
    [
        # Wed 6 May 2026, 10 business days (Ascension Thu 14 skipped): Thu 21 May.
        pytest.param(
            DK, "2026-05-06T10:00:00+02:00", DEFAULT, "2026-05-21T23:59:59+02:00", id="10"
        ),
        # 5 business days from Friday 6 Mar: Mon 9 .. Fri 13.
        pytest.param(
            DK,
            "2026-03-06T15:00:00+01:00",
            RequestPolicy(max_deadline_business_days=5),
            "2026-03-13T23:59:59+01:00",
            id="5",
        ),
        # Saudi, from Monday 13 Apr: Tue 14 .. Thu 16, Sun 19, Mon 20.
        pytest.param(
            SA,
            "2026-04-13T10:00:00+03:00",
            RequestPolicy(business_days_to_reply=1, max_deadline_business_days=5),
            "2026-04-20T23:59:59+03:00",
            id="sa-5",
        ),
        # Over the spring-forward: Fri 27 Mar + 3 -> Mon 30, Tue 31, Wed 1 Apr at +02:00.
        pytest.param(
            DK,
            "2026-03-27T15:00:00+01:00",
            RequestPolicy(max_deadline_business_days=3),
            "2026-04-01T23:59:59+02:00",
            id="dst",
        ),
    ],
)
def test_latest_deadline(
    calendar: ClientCalendar, requested_at: str, policy: RequestPolicy, expected: str
) -> None:
    request = _at(requested_at)
    result = latest_deadline(request, calendar, policy)
    assert result.isoformat() == expected
    assert result == client_deadline(request, calendar, policy.max_deadline_business_days)
    assert isinstance(result.tzinfo, ZoneInfo)
    assert result.tzinfo.key == calendar.time_zone


def test_latest_deadline_uses_max_deadline_not_business_days_to_reply() -> None:
    request = _at("2026-03-06T15:00:00+01:00")
    policy = RequestPolicy(business_days_to_reply=2, max_deadline_business_days=4)
    assert latest_deadline(request, DK, policy) == client_deadline(request, DK, 4)
    assert latest_deadline(request, DK, policy) != client_deadline(request, DK, 2)


# --- validation and purity -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("due_at", "requested_at", "message"),
    [
        pytest.param(datetime(2026, 3, 10, 23, 59, 59), _EARLY, "due_at must be", id="due"),
        pytest.param(_TUE_10_MAR, datetime(2026, 3, 6, 15, 0), "requested_at must be", id="req"),
    ],
)
def test_naive_datetimes_are_rejected(
    due_at: datetime, requested_at: datetime, message: str
) -> None:
    with pytest.raises(CalendarError, match=rf"{message} timezone-aware.*2026-03-"):
        reminder_times(due_at, requested_at, DK, DEFAULT)


def test_naive_requested_at_is_rejected_by_latest_deadline() -> None:
    with pytest.raises(CalendarError, match="requested_at must be timezone-aware"):
        latest_deadline(datetime(2026, 3, 6, 15, 0), DK, DEFAULT)


def test_results_are_in_the_clients_zone_whatever_the_input_zones() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")
    result = reminder_times(_TUE_10_MAR.astimezone(tokyo), _EARLY.astimezone(UTC), DK, DEFAULT)
    assert {t.tzinfo for t in result} == {CPH}
    assert reminder_times(_TUE_10_MAR, _EARLY, DK, DEFAULT) == result


def test_same_inputs_same_result() -> None:
    first = reminder_times(_TUE_10_MAR, _EARLY, DK, DEFAULT)
    second = reminder_times(_TUE_10_MAR, _EARLY, DK, DEFAULT)
    assert [t.isoformat() for t in first] == [t.isoformat() for t in second]
    assert first is not second
