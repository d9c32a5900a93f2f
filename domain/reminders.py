"""When the client is reminded of an open task, and how late its deadline may be extended.

The reminder rule, all in the client's calendar (`ClientCalendar`: its business days and its
time zone) and at `policy.reminder_local_time` on the client's wall clock:

1. The first reminder goes out on the business day that lies
   `policy.first_reminder_business_days_before_due` business days before the due day (the
   client-local date of `due_at`); 0 means the morning of the due day itself.
2. After that, while the task is overdue, one every `policy.reminder_every_business_days`
   business days counted from the due day: due day + N, due day + 2N, ... business days.
3. `policy.max_reminders` in all (0: no reminders). The schedule is cut to its first
   `max_reminders` entries *before* anything is dropped.
4. Then every time not strictly after `requested_at` is dropped: a request made on the due
   day's afternoon gets no reminder that same morning, and a dropped reminder is not replaced
   by a later one.

Reminder times are tz-aware datetimes in the client's zone, sorted. Across a DST change the
wall-clock time stays the same and the UTC offset follows the zone. A local time that does
not exist that day (the spring-forward gap) resolves forward, e.g. 02:30 becomes 03:30; one
that occurs twice (fall-back) is the first of the two.

Everything here is pure and deterministic, like `domain.deadlines`, so it is safe to call
from Temporal workflow code.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from domain.deadlines import ClientCalendar, check_aware, client_deadline
from domain.models import RequestPolicy

__all__ = ["latest_deadline", "reminder_times"]


def _local_instant(calendar: ClientCalendar, day: date, policy: RequestPolicy) -> datetime:
    """`policy.reminder_local_time` on `day` in the client's zone, as a real instant.

    Built with fold=0 and normalised through UTC: a time in the spring-forward gap takes the
    offset from before the change and so comes out that much later on the new offset (02:30
    -> 03:30); an ambiguous time at fall-back is the first occurrence.
    """
    wall = policy.reminder_local_time.replace(tzinfo=None, fold=0)
    zone = calendar.zone
    return datetime.combine(day, wall, tzinfo=zone).astimezone(UTC).astimezone(zone)


def reminder_times(
    due_at: datetime, requested_at: datetime, calendar: ClientCalendar, policy: RequestPolicy
) -> list[datetime]:
    """When the client is reminded of a task due at `due_at`; see the module doc for the rule.

    In short: the first at `reminder_local_time` on the business day
    `first_reminder_business_days_before_due` business days before the due day (0: the due
    day itself), then due day + N, + 2N, ... business days (N = `reminder_every_business_days`);
    the first `max_reminders` of those, keeping only the ones strictly after `requested_at`.
    Tz-aware, in the client's zone, sorted.
    """
    check_aware(due_at, "due_at")
    check_aware(requested_at, "requested_at")
    if policy.max_reminders <= 0:
        return []
    due_day = calendar.local_date(due_at)
    days = [calendar.business_days_before(due_day, policy.first_reminder_business_days_before_due)]
    every = policy.reminder_every_business_days
    for k in range(1, policy.max_reminders):
        days.append(calendar.add_business_days(due_day, k * every))
    times = (_local_instant(calendar, day, policy) for day in days)
    return sorted(t for t in times if t > requested_at)


def latest_deadline(
    requested_at: datetime, calendar: ClientCalendar, policy: RequestPolicy
) -> datetime:
    """The latest a deadline may be extended to: the end of the client-local day
    `policy.max_deadline_business_days` business days after the request day."""
    return client_deadline(requested_at, calendar, policy.max_deadline_business_days)
