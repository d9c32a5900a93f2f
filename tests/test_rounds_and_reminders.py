"""Issue #5: the rules of rounds, reminders, bundling, deadline changes and withdrawal, each on
the time-skipping server with the real worker and the real store (SQLite and PostgreSQL).

Time moves only by `env.sleep` (`skip_to`); the worker's writes are awaited with `wait_for`.
The test server does not advance its clock while a workflow task is outstanding, so a count
taken right after a skip is what the workflow did up to that instant.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

import starter
import workflows.search_attributes as sa
from domain.deadlines import ClientCalendar
from domain.ids import info_request_workflow_id
from domain.models import (
    CaseStatus,
    ClientReply,
    CloseCode,
    Decision,
    DecisionOutcome,
    ExtendDeadline,
    FollowUp,
    ItemKind,
    ItemReview,
    ItemStatus,
    PartnerMessage,
    Phase,
    RequestedItem,
    RequestOutcome,
    RequestPolicy,
    RequestState,
    ReviewItems,
    TaskOutcome,
    Withdrawal,
)
from store.views import EmailView
from tests.conftest import CLIENT_DK, CLIENT_USER, PARTNER_USER, Stack, add_case
from tests.test_workflow import CPH, next_local, skip_to, wait_for

CALENDAR_DK = ClientCalendar(CLIENT_DK.country, CLIENT_DK.subdivision, CLIENT_DK.time_zone)
ITEMS = [
    RequestedItem(kind=ItemKind.INVOICE_OR_CONTRACT, reason="The claim amount must be proven"),
    RequestedItem(kind=ItemKind.PROOF_OF_DELIVERY, reason="The debtor says nothing arrived"),
]
INVOICE_LABEL = "Original invoice or signed contract"
DELIVERY_LABEL = "Proof of delivery or of the service being completed"
MINUTE = timedelta(minutes=1)


# ---- helpers ------------------------------------------------------------------------------


async def quiet_start(env: WorkflowEnvironment, weekday: int, at: time, days: int) -> datetime:
    """The next given weekday at a Copenhagen time after which every weekday of the following
    `days` days is a Danish business day (no holiday moves the expected dates)."""
    start = await next_local(env, weekday, at)

    def quiet(first: date) -> bool:
        days_ahead = (first + timedelta(days=n) for n in range(days))
        return all(CALENDAR_DK.is_business_day(d) for d in days_ahead if d.weekday() < 5)

    while not quiet(start.date()):
        start += timedelta(days=7)
    return start


def local(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=CPH)


async def open_request(
    stack: Stack,
    *,
    items: list[RequestedItem] = ITEMS,
    policy: RequestPolicy | None = None,
) -> tuple[str, RequestState]:
    case_id = add_case(stack.store)
    request = starter.new_request(
        case_id=case_id,
        partner_user_id=PARTNER_USER,
        items=items,
        message="Please send the signed contract and the delivery note.",
        policy=policy or RequestPolicy(),  # the defaults, whatever the environment says
    )
    opened = await starter.request_info(stack.client, request, task_queue=stack.task_queue)
    assert opened.task is not None and opened.phase is Phase.WAITING_FOR_CLIENT
    return case_id, opened


def handle_of(stack: Stack, case_id: str) -> WorkflowHandle[Any, Any]:
    return stack.client.get_workflow_handle(info_request_workflow_id(case_id))


WORKFLOW_TASK_EVENTS = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
}


async def settled(stack: Stack, case_id: str) -> None:
    """Wait until the latest run has no workflow task in flight. A query that reaches a run
    in the workflow task that continues it as new is never answered by the time-skipping
    server (it times out), so a test queries only a settled run."""

    async def idle() -> bool:
        run_id = (await handle_of(stack, case_id).describe()).run_id
        history = await stack.client.get_workflow_handle(
            info_request_workflow_id(case_id), run_id=run_id
        ).fetch_history()
        tasks = [e.event_type for e in history.events if e.event_type in WORKFLOW_TASK_EVENTS]
        return bool(tasks) and tasks[-1] == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED

    for _ in range(200):
        if await idle():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the run on case {case_id} did not settle")


def reply(reply_id: str, covers: list[str] | None = None) -> ClientReply:
    return ClientReply(
        reply_id=reply_id,
        client_user_id=CLIENT_USER,
        message=f"Reply {reply_id}: attached.",
        covers=covers or [],
    )


def accept() -> Decision:
    return Decision(outcome=DecisionOutcome.ACCEPT, decided_by=PARTNER_USER)


def close(code: CloseCode = CloseCode.PAID) -> Decision:
    return Decision(outcome=DecisionOutcome.CLOSE, close_code=code, decided_by=PARTNER_USER)


def partner_message(message_id: str, text: str) -> PartnerMessage:
    return PartnerMessage(message_id=message_id, author_user_id=PARTNER_USER, message=text)


async def refusal(action: Awaitable[object]) -> starter.RequestError:
    with pytest.raises(starter.RequestError) as refused:
        await action
    return refused.value


def emails(stack: Stack, case_id: str, subject_part: str) -> list[EmailView]:
    return [e for e in stack.store.emails(case_id) if subject_part in e.subject]


def reminder_emails(stack: Stack, case_id: str) -> list[EmailView]:
    return [e for e in stack.store.emails(case_id) if e.subject.startswith("Reminder ")]


def reminder_notes(stack: Stack, case_id: str) -> list[str]:
    return [
        m.body
        for m in stack.store.chat(case_id)
        if m.kind == "system" and m.body.startswith("Reminder ")
    ]


def bundles(stack: Stack, case_id: str) -> list[EmailView]:
    """Partner-message emails ("<partner>: 3 new messages on case ...", "a new message")."""
    return emails(stack, case_id, "new message")


def chat_bodies(stack: Stack, case_id: str, author: str) -> list[str]:
    return [m.body for m in stack.store.chat(case_id) if m.author_user_id == author]


async def expect_reminder_at(
    env: WorkflowEnvironment, stack: Stack, case_id: str, at: datetime, number: int
) -> None:
    """None of reminder `number` a minute before `at`; it (email and chat note) a minute after."""
    await skip_to(env, at - MINUTE)
    assert len(reminder_emails(stack, case_id)) == number - 1
    assert len(reminder_notes(stack, case_id)) == number - 1
    await skip_to(env, at + MINUTE)
    await wait_for(
        lambda: (
            len(reminder_emails(stack, case_id)) == number
            and len(reminder_notes(stack, case_id)) == number
        ),
        f"reminder {number}",
    )
    assert reminder_emails(stack, case_id)[-1].subject.startswith(f"Reminder {number}: ")
    assert reminder_emails(stack, case_id)[-1].to_email == CLIENT_DK.email
    assert reminder_notes(stack, case_id)[-1].startswith(f"Reminder {number} sent ")


def task_status(stack: Stack, case_id: str, index: int = 0) -> str:
    return stack.store.tasks(case_id=case_id)[index].status


# ---- reminders ----------------------------------------------------------------------------


async def test_default_reminders_due_morning_then_every_two_business_days_three_at_most(
    stack: Stack, time_skipping_env: WorkflowEnvironment
) -> None:
    env = time_skipping_env
    friday = await quiet_start(env, weekday=4, at=time(15, 0), days=18)
    await skip_to(env, friday)
    case_id, opened = await open_request(stack)
    tuesday, thursday, next_monday = (friday.date() + timedelta(days=n) for n in (4, 6, 10))
    due = local(tuesday, time(23, 59, 59))
    assert opened.task is not None and opened.task.due_at == due
    expected = [local(d, time(9, 0)) for d in (tuesday, thursday, next_monday)]
    assert opened.task.reminders_at == expected

    # One reminder before the deadline: the morning of the due day.
    await expect_reminder_at(env, stack, case_id, expected[0], 1)
    assert task_status(stack, case_id) == "open"
    assert emails(stack, case_id, "No reply from") == []
    assert opened.task.due_local.split(" (")[0] in reminder_emails(stack, case_id)[0].subject

    await skip_to(env, due + MINUTE)
    await wait_for(lambda: task_status(stack, case_id) == "expired", "the task to expire")
    await wait_for(lambda: len(emails(stack, case_id, "No reply from")) == 1, "expiry email")
    assert len(reminder_emails(stack, case_id)) == 1

    # While overdue: due day + 2 and + 4 business days, then no more.
    await expect_reminder_at(env, stack, case_id, expected[1], 2)
    await expect_reminder_at(env, stack, case_id, expected[2], 3)
    await env.sleep(timedelta(weeks=2))
    state = await starter.get_state(stack.client, case_id)
    assert state.reminders_sent == 3 and state.phase is Phase.WAITING_FOR_DECISION
    assert [e.subject.split(":")[0] for e in reminder_emails(stack, case_id)] == [
        "Reminder 1",
        "Reminder 2",
        "Reminder 3",
    ]
    notes = reminder_notes(stack, case_id)
    assert [n.split(" sent ")[0] for n in notes] == ["Reminder 1", "Reminder 2", "Reminder 3"]
    subjects = [e.subject for e in stack.store.emails(case_id)]
    assert len(subjects) == 5, subjects  # request, R1, expiry (to the partner), R2, R3
    assert subjects[0].startswith("Information needed") and subjects[2].startswith("No reply")


async def test_no_reminder_after_the_reply(
    stack: Stack, time_skipping_env: WorkflowEnvironment
) -> None:
    env = time_skipping_env
    friday = await quiet_start(env, weekday=4, at=time(15, 0), days=18)
    await skip_to(env, friday)
    case_id, opened = await open_request(stack)
    assert opened.task is not None and len(opened.task.reminders_at) == 3

    await skip_to(env, local(friday.date() + timedelta(days=3), time(10, 0)))  # Monday
    await starter.send_client_reply(stack.client, case_id, reply("r-monday"))
    await wait_for(lambda: task_status(stack, case_id) == "replied", "the task to close")
    await skip_to(env, opened.task.reminders_at[-1] + timedelta(weeks=2))

    state = await starter.get_state(stack.client, case_id)
    assert state.reminders_sent == 0 and state.phase is Phase.WAITING_FOR_DECISION
    assert reminder_emails(stack, case_id) == [] and reminder_notes(stack, case_id) == []
    assert task_status(stack, case_id) == "replied"
    subjects = [e.subject for e in stack.store.emails(case_id)]
    assert len(subjects) == 2 and "replied" in subjects[1], subjects  # request, reply


# ---- deadline extension -------------------------------------------------------------------


async def test_extension_moves_the_running_timer_the_task_the_reminders_and_the_attribute(
    stack: Stack, time_skipping_env: WorkflowEnvironment
) -> None:
    env = time_skipping_env
    friday = await quiet_start(env, weekday=4, at=time(15, 0), days=18)
    await skip_to(env, friday)
    case_id, opened = await open_request(stack)
    assert opened.task is not None
    handle = handle_of(stack, case_id)
    day = {n: friday.date() + timedelta(days=n) for n in range(15)}
    tuesday_end = local(day[4], time(23, 59, 59))
    thursday_end = local(day[6], time(23, 59, 59))
    latest = local(day[14], time(23, 59, 59))  # 10 business days after the Friday
    assert opened.task.due_at == tuesday_end and opened.task.latest_due_at == latest

    await skip_to(env, local(day[3], time(10, 0)))  # Monday
    for new_due_at, code in [
        (local(day[3], time(9, 0)), "deadline_in_past"),
        (local(day[4], time(12, 0)), "deadline_not_later"),
        (tuesday_end, "deadline_not_later"),
        (latest + timedelta(seconds=1), "deadline_too_late"),
    ]:
        refused = await refusal(
            starter.extend_deadline(
                stack.client,
                case_id,
                ExtendDeadline(requested_by=PARTNER_USER, new_due_at=new_due_at),
            )
        )
        assert refused.code == code, (new_due_at, refused.code, refused.message)
        assert case_id in refused.message
    with pytest.raises(ValidationError, match="needs a time zone"):
        ExtendDeadline(requested_by=PARTNER_USER, new_due_at=datetime(2030, 1, 1))
    # Nothing changed.
    assert (await starter.get_state(stack.client, case_id)).task == opened.task
    assert stack.store.tasks(case_id=case_id)[0].due_at == tuesday_end
    # The time-skipping server answers describe with the upserted search attributes.
    attributes = (await handle.describe()).typed_search_attributes
    assert attributes.get(sa.CLIENT_DEADLINE) == tuesday_end
    assert not any("extended" in m.body for m in stack.store.chat(case_id))

    moved = await starter.extend_deadline(
        stack.client, case_id, ExtendDeadline(requested_by=PARTNER_USER, new_due_at=thursday_end)
    )
    assert moved.task is not None
    assert moved.task.due_at == thursday_end and moved.task.outcome is TaskOutcome.OPEN
    # The reminders follow: Thursday morning, then + 2 and + 4 business days.
    assert moved.task.reminders_at == [local(day[n], time(9, 0)) for n in (6, 10, 12)]
    assert moved.task.latest_due_at == latest  # counted from the round's request, unchanged
    assert stack.store.tasks(case_id=case_id)[0].due_at == thursday_end
    assert len([m for m in stack.store.chat(case_id) if "Deadline extended" in m.body]) == 1
    attributes = (await handle.describe()).typed_search_attributes
    assert attributes.get(sa.CLIENT_DEADLINE) == thursday_end

    # The old Tuesday reminder and deadline pass without effect.
    await skip_to(env, tuesday_end + MINUTE)
    assert task_status(stack, case_id) == "open"
    assert emails(stack, case_id, "No reply from") == [] and reminder_emails(stack, case_id) == []
    state = await starter.get_state(stack.client, case_id)
    assert state.phase is Phase.WAITING_FOR_CLIENT and state.task == moved.task

    # Validated against the moved deadline: Wednesday is later than the old one, not the new.
    refused = await refusal(
        starter.extend_deadline(
            stack.client,
            case_id,
            ExtendDeadline(requested_by=PARTNER_USER, new_due_at=local(day[5], time(23, 0))),
        )
    )
    assert refused.code == "deadline_not_later"

    await expect_reminder_at(env, stack, case_id, local(day[6], time(9, 0)), 1)
    assert moved.task.due_local.split(" (")[0] in reminder_emails(stack, case_id)[0].subject
    await skip_to(env, thursday_end - MINUTE)
    assert task_status(stack, case_id) == "open"
    await skip_to(env, thursday_end + MINUTE)
    await wait_for(lambda: task_status(stack, case_id) == "expired", "the task to expire")
    await wait_for(lambda: len(emails(stack, case_id, "No reply from")) == 1, "expiry email")
    assert stack.store.tasks(case_id=case_id)[0].due_at == thursday_end
    refused = await refusal(
        starter.extend_deadline(
            stack.client, case_id, ExtendDeadline(requested_by=PARTNER_USER, new_due_at=latest)
        )
    )
    assert refused.code == "no_open_task"


# ---- withdraw -----------------------------------------------------------------------------


async def test_withdraw_between_reminder_and_deadline_stops_everything(
    stack: Stack, time_skipping_env: WorkflowEnvironment
) -> None:
    env = time_skipping_env
    friday = await quiet_start(env, weekday=4, at=time(15, 0), days=18)
    await skip_to(env, friday)
    case_id, opened = await open_request(stack)
    assert opened.task is not None
    await expect_reminder_at(env, stack, case_id, opened.task.reminders_at[0], 1)
    await skip_to(env, opened.task.reminders_at[0] + timedelta(hours=1))  # Tuesday 10:00

    summary = await starter.withdraw(
        stack.client,
        case_id,
        Withdrawal(requested_by=PARTNER_USER, reason="The debtor paid in full."),
    )
    assert summary.outcome is RequestOutcome.WITHDRAWN
    assert summary.final_status is CaseStatus.PENDING_VERIFICATION
    assert summary.task_outcome is TaskOutcome.CANCELLED and summary.close_code is None
    assert stack.store.case_status(case_id) is CaseStatus.PENDING_VERIFICATION
    assert task_status(stack, case_id) == "cancelled"
    last = stack.store.emails(case_id)[-1]
    assert "withdrawn" in last.subject and last.to_email == CLIENT_DK.email
    assert "The debtor paid in full." in last.body
    assert [(c.from_status, c.to_status) for c in stack.store.status_history(case_id)][-1] == (
        CaseStatus.MORE_INFO_REQUIRED,
        CaseStatus.PENDING_VERIFICATION,
    )

    await env.sleep(timedelta(weeks=2))
    assert len(reminder_emails(stack, case_id)) == 1 and len(reminder_notes(stack, case_id)) == 1
    assert emails(stack, case_id, "No reply from") == []
    assert len(stack.store.emails(case_id)) == 3  # request, reminder 1, withdrawal
    state = await starter.get_state(stack.client, case_id)
    assert state.withdrawn and state.phase is Phase.DONE and state.reminders_sent == 1

    for again in (
        starter.withdraw(stack.client, case_id, Withdrawal(requested_by=PARTNER_USER)),
        starter.decide(stack.client, case_id, close()),
    ):
        assert (await refusal(again)).code in {"request_closed", "already_withdrawn"}
    assert stack.store.case_status(case_id) is CaseStatus.PENDING_VERIFICATION
    assert len(stack.store.emails(case_id)) == 3


# ---- checklist and rounds -----------------------------------------------------------------


async def test_checklist_review_and_follow_up_round(
    stack: Stack, time_skipping_env: WorkflowEnvironment
) -> None:
    env = time_skipping_env
    monday = await quiet_start(env, weekday=0, at=time(10, 0), days=7)
    await skip_to(env, monday)
    case_id, opened = await open_request(stack)
    request_id = opened.request_id
    assert [(i.item_id, i.status) for i in opened.items] == [
        ("i1", ItemStatus.REQUESTED),
        ("i2", ItemStatus.REQUESTED),
    ]

    def stored() -> dict[str, tuple[str, str | None]]:
        return {
            i["item_id"]: (i["status"], i.get("rejection_reason"))
            for i in stack.store.checklist(request_id)
        }

    assert stored() == {"i1": ("requested", None), "i2": ("requested", None)}
    follow = FollowUp(requested_by=PARTNER_USER, message="Please send the signed delivery note.")
    assert (await refusal(starter.follow_up(stack.client, case_id, follow))).code == (
        "round_still_open"
    )

    await starter.send_client_reply(stack.client, case_id, reply("r-1", covers=["i1"]))
    await wait_for(lambda: stored()["i1"][0] == "received", "i1 received in the store")
    assert stored()["i2"] == ("requested", None)
    assert task_status(stack, case_id) == "replied"  # the task closes at any reply
    state = await starter.get_state(stack.client, case_id)
    assert {i.item_id: i.status for i in state.items} == {
        "i1": ItemStatus.RECEIVED,
        "i2": ItemStatus.REQUESTED,
    }

    with pytest.raises(ValidationError, match="needs a reason"):
        ItemReview(item_id="i2", accepted=False)
    # A caller in another language skips the model: the workflow refuses the same way.
    with pytest.raises(WorkflowUpdateFailedError) as raw:
        await handle_of(stack, case_id).execute_update(
            "review_items",
            {"reviewed_by": PARTNER_USER, "reviews": [{"item_id": "i2", "accepted": False}]},
        )
    assert "needs a reason" in str(raw.value.cause)
    unknown = await refusal(
        starter.review_items(
            stack.client,
            case_id,
            ReviewItems(
                reviewed_by=PARTNER_USER, reviews=[ItemReview(item_id="i9", accepted=True)]
            ),
        )
    )
    assert unknown.code == "unknown_item" and "i9" in unknown.message
    assert stored()["i1"][0] == "received"

    reason = "The delivery note is not signed."
    reviewed = await starter.review_items(
        stack.client,
        case_id,
        ReviewItems(
            reviewed_by=PARTNER_USER,
            reviews=[
                ItemReview(item_id="i1", accepted=True),
                ItemReview(item_id="i2", accepted=False, reason=reason),
            ],
        ),
    )
    assert {i.item_id: (i.status, i.rejection_reason) for i in reviewed.items} == {
        "i1": (ItemStatus.ACCEPTED, None),
        "i2": (ItemStatus.REJECTED, reason),
    }
    await wait_for(lambda: stored()["i2"][0] == "rejected", "the review in the store")
    assert stored() == {"i1": ("accepted", None), "i2": ("rejected", reason)}
    assert any(
        "Checklist reviewed by" in m.body and reason in m.body for m in stack.store.chat(case_id)
    )

    wednesday = monday + timedelta(days=2, hours=1)  # round 1 was due tonight
    await skip_to(env, wednesday)
    round_2 = await starter.follow_up(stack.client, case_id, follow)
    assert round_2.round == 2 and round_2.phase is Phase.WAITING_FOR_CLIENT
    assert round_2.task is not None and round_2.task.round == 2
    friday_end = local(monday.date() + timedelta(days=4), time(23, 59, 59))
    assert round_2.task.due_at == friday_end  # two business days after the follow-up
    tasks = stack.store.tasks(case_id=case_id)
    assert [(t.status, t.due_at) for t in tasks] == [
        ("replied", opened.task.due_at if opened.task else None),
        ("open", friday_end),
    ]
    # The rejected item is still outstanding, with its reason; the accepted one is done.
    assert {i.item_id: (i.status, i.rejection_reason) for i in round_2.items} == {
        "i1": (ItemStatus.ACCEPTED, None),
        "i2": (ItemStatus.REJECTED, reason),
    }
    assert stored() == {"i1": ("accepted", None), "i2": ("rejected", reason)}
    [mail] = emails(stack, case_id, "More information still needed")
    assert mail.to_email == CLIENT_DK.email
    assert DELIVERY_LABEL in mail.body and reason in mail.body
    assert INVOICE_LABEL not in mail.body
    [chat_round_2] = [
        m.body for m in stack.store.chat(case_id) if "Still needed (round 2)" in m.body
    ]
    assert DELIVERY_LABEL in chat_round_2 and reason in chat_round_2
    assert INVOICE_LABEL not in chat_round_2
    again = await refusal(starter.follow_up(stack.client, case_id, follow))
    assert again.code == "round_still_open"

    # A reply naming nothing covers what is open; the accepted item stays accepted.
    await starter.send_client_reply(stack.client, case_id, reply("r-2"))
    await wait_for(lambda: stored()["i2"][0] == "received", "i2 received in round 2")
    assert stored()["i1"][0] == "accepted"
    assert task_status(stack, case_id, 1) == "replied"


async def test_twenty_five_rounds_continue_as_new_and_lose_nothing(stack: Stack) -> None:
    rounds_per_run, follow_ups = 5, 25
    case_id, _ = await open_request(
        stack, items=ITEMS[:1], policy=RequestPolicy(rounds_per_run=rounds_per_run)
    )
    handle = handle_of(stack, case_id)
    first_run_id = (await handle.describe()).run_id
    assert first_run_id is not None
    boundary = {1 + rounds_per_run * n for n in range(1, follow_ups // rounds_per_run + 1)}

    for k in range(1, follow_ups + 1):
        if k in boundary:
            # The round after a run's last follow-up: a message still in its quiet period
            # when the run continues as new is emailed, not lost.
            await starter.send_partner_message(
                stack.client, case_id, partner_message(f"m-{k}", f"Partner note in round {k}.")
            )
        await starter.send_client_reply(stack.client, case_id, reply(f"r-{k}"))
        await wait_for(
            lambda k=k: len(emails(stack, case_id, "replied on case")) == k,
            f"reply {k} recorded",
        )
        await settled(stack, case_id)  # the reply may end the run (continue-as-new)
        reviewed = await starter.review_items(
            stack.client,
            case_id,
            ReviewItems(
                reviewed_by=PARTNER_USER, reviews=[ItemReview(item_id=f"i{k}", accepted=True)]
            ),
        )
        assert reviewed.round == k
        state = await starter.follow_up(
            stack.client,
            case_id,
            FollowUp(
                requested_by=PARTNER_USER,
                message=f"Round {k + 1}: one more document.",
                new_items=[
                    RequestedItem(
                        kind=ItemKind.OTHER,
                        reason=f"Asked in round {k + 1}",
                        description=f"Document {k + 1}",
                    )
                ],
            ),
        )
        assert state.round == k + 1 and state.task is not None and state.task.round == k + 1
        assert [i.item_id for i in state.items] == [f"i{n}" for n in range(1, k + 2)]

    rounds = follow_ups + 1
    await starter.send_partner_message(
        stack.client, case_id, partner_message(f"m-{rounds}", f"Partner note in round {rounds}.")
    )
    await starter.send_client_reply(stack.client, case_id, reply(f"r-{rounds}"))
    await wait_for(lambda: len(emails(stack, case_id, "replied on case")) == rounds, "last reply")
    await settled(stack, case_id)

    state = await starter.get_state(stack.client, case_id)
    assert state.round == rounds and state.phase is Phase.WAITING_FOR_DECISION
    assert [r.reply_id for r in state.replies] == [f"r-{k}" for k in range(1, rounds + 1)]
    expected_items = {f"i{n}": (ItemStatus.ACCEPTED, n) for n in range(1, rounds)}
    expected_items[f"i{rounds}"] = (ItemStatus.RECEIVED, rounds)
    assert {i.item_id: (i.status, i.round) for i in state.items} == expected_items
    tasks = stack.store.tasks(case_id=case_id)
    assert len(tasks) == rounds and {t.status for t in tasks} == {"replied"}
    assert [t.title.split(" (")[-1] for t in tasks[1:]] == [
        f"round {n})" for n in range(2, rounds + 1)
    ]
    assert (await handle.describe()).run_id != first_run_id

    summary = await starter.decide(stack.client, case_id, accept())
    assert summary.outcome is RequestOutcome.ACCEPTED and summary.rounds == rounds
    assert summary.replies == rounds and summary.task_outcome is TaskOutcome.REPLIED
    assert {i.item_id: (i.status, i.round) for i in summary.items} == expected_items
    assert stack.store.case_status(case_id) is CaseStatus.ACTIVE

    # Every message in the chat, each once: the request and 25 follow-ups, 5 partner notes,
    # 26 replies; and one review note per review.
    partner = chat_bodies(stack, case_id, PARTNER_USER)
    notes = sorted(boundary | {rounds})
    assert len(partner) == 1 + follow_ups + len(notes)
    assert sum(b.startswith("Round ") for b in partner) == follow_ups
    assert [b for b in partner if b.startswith("Partner note")] == [
        f"Partner note in round {k}." for k in notes
    ]
    assert chat_bodies(stack, case_id, CLIENT_USER) == [
        f"Reply r-{k}: attached." for k in range(1, rounds + 1)
    ]
    system = [m.body for m in stack.store.chat(case_id) if m.kind == "system"]
    assert sum(b.startswith("Checklist reviewed by") for b in system) == follow_ups
    # Every partner note was emailed exactly once (at the run's end or in its quiet period).
    mailed = "\n".join(e.body for e in bundles(stack, case_id))
    for k in notes:
        assert mailed.count(f"Partner note in round {k}.") == 1, k
    assert len(emails(stack, case_id, "More information still needed")) == follow_ups

    # The run continued as new every 5 follow-ups: a chain of 6 runs, each history short.
    runs, run_id, lengths = 0, first_run_id, []
    while True:
        history = await stack.client.get_workflow_handle(
            info_request_workflow_id(case_id), run_id=run_id
        ).fetch_history()
        runs += 1
        lengths.append(len(history.events))
        last = history.events[-1]
        if not last.HasField("workflow_execution_continued_as_new_event_attributes"):
            assert last.HasField("workflow_execution_completed_event_attributes")
            break
        run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    assert runs == 1 + follow_ups // rounds_per_run, lengths
    assert max(lengths) < sum(lengths) / 3, lengths  # no run holds much of the request


async def test_accept_after_the_reply_in_round_two(stack: Stack) -> None:
    case_id, _ = await open_request(stack)
    await starter.send_client_reply(stack.client, case_id, reply("r-1"))
    await wait_for(lambda: task_status(stack, case_id) == "replied", "round 1 reply")
    round_2 = await starter.follow_up(
        stack.client, case_id, FollowUp(requested_by=PARTNER_USER, message="One more look.")
    )
    assert round_2.round == 2
    too_early = await refusal(starter.decide(stack.client, case_id, accept()))
    assert too_early.code == "too_early_to_accept"  # round 2 has no reply yet

    await starter.send_client_reply(stack.client, case_id, reply("r-2"))
    await wait_for(lambda: task_status(stack, case_id, 1) == "replied", "round 2 reply")
    summary = await starter.decide(stack.client, case_id, accept())
    assert summary.outcome is RequestOutcome.ACCEPTED and summary.rounds == 2
    assert summary.final_status is CaseStatus.ACTIVE and summary.replies == 2
    assert summary.task_outcome is TaskOutcome.REPLIED
    assert stack.store.case_status(case_id) is CaseStatus.ACTIVE
    assert "accepted" in stack.store.emails(case_id)[-1].subject


# ---- bundling -----------------------------------------------------------------------------


async def test_partner_messages_are_bundled_and_counted_exactly(
    stack: Stack, time_skipping_env: WorkflowEnvironment
) -> None:
    env = time_skipping_env
    monday = await quiet_start(env, weekday=0, at=time(10, 0), days=3)
    await skip_to(env, monday)
    case_id, _ = await open_request(stack)
    texts = [f"Message {n}: see the attached ledger, page {n}." for n in range(1, 6)]

    def in_chat() -> list[str]:
        return [b for b in chat_bodies(stack, case_id, PARTNER_USER) if b.startswith("Message ")]

    # Three messages within five minutes: each in the chat at once, no email yet.
    for n in range(3):
        if n:
            await env.sleep(timedelta(minutes=2, seconds=30))
        await starter.send_partner_message(
            stack.client, case_id, partner_message(f"m{n}", texts[n])
        )
        await wait_for(lambda n=n: len(in_chat()) == n + 1, f"message {n + 1} in the chat")
    assert in_chat() == texts[:3] and bundles(stack, case_id) == []

    # The quiet period counts from the last message.
    await env.sleep(timedelta(minutes=9))
    assert bundles(stack, case_id) == []
    await env.sleep(2 * MINUTE)
    await wait_for(lambda: len(bundles(stack, case_id)) == 1, "the bundled email")
    [first] = bundles(stack, case_id)
    assert "3 new messages" in first.subject and first.to_email == CLIENT_DK.email
    positions = [first.body.index(t) for t in texts[:3]]
    assert positions == sorted(positions)

    await env.sleep(timedelta(minutes=30))
    assert len(bundles(stack, case_id)) == 1
    await starter.send_partner_message(stack.client, case_id, partner_message("m3", texts[3]))
    await wait_for(lambda: len(in_chat()) == 4, "message 4 in the chat")
    assert in_chat() == texts[:4] and len(bundles(stack, case_id)) == 1  # before its quiet end
    for repeated in ("m0", "m3"):  # an ID seen before changes nothing, whatever the text
        await starter.send_partner_message(
            stack.client, case_id, partner_message(repeated, "Repeated delivery.")
        )
    await env.sleep(timedelta(minutes=11))
    await wait_for(lambda: len(bundles(stack, case_id)) == 2, "the second email")
    second = bundles(stack, case_id)[1]
    assert "a new message" in second.subject and texts[3] in second.body
    assert not any(t in second.body for t in texts[:3]) and "Repeated" not in second.body
    assert in_chat() == texts[:4]
    await env.sleep(timedelta(minutes=30))
    assert len(bundles(stack, case_id)) == 2

    # A message still in its quiet period when the partner decides goes out before the end.
    await starter.send_partner_message(stack.client, case_id, partner_message("m4", texts[4]))
    await wait_for(lambda: len(in_chat()) == 5, "message 5 in the chat")
    summary = await starter.decide(stack.client, case_id, close(CloseCode.PAID))
    assert summary.outcome is RequestOutcome.CLOSED
    assert len(bundles(stack, case_id)) == 3
    third = bundles(stack, case_id)[2]
    assert "a new message" in third.subject and texts[4] in third.body
    decided = stack.store.emails(case_id)[-1]
    assert "closed" in decided.subject and third.id < decided.id  # before the decision's email
    assert len(in_chat()) == 5
