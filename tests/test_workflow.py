"""InfoRequestWorkflow on the time-skipping test server, with the real activities and stores."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from pydantic import ValidationError
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

import starter
from domain.ids import info_request_workflow_id
from domain.models import (
    CaseStatus,
    ClientReply,
    CloseCode,
    Decision,
    DecisionOutcome,
    FileRef,
    InfoRequestInput,
    ItemKind,
    Phase,
    RequestedItem,
    TaskOutcome,
)
from tests.conftest import CLIENT_DE_BY, CLIENT_USER, PARTNER_USER, Stack, add_case

CPH = ZoneInfo("Europe/Copenhagen")
ITEMS = [
    RequestedItem(kind=ItemKind.INVOICE_OR_CONTRACT, reason="The claim amount must be proven"),
    RequestedItem(kind=ItemKind.PROOF_OF_DELIVERY, reason="The debtor says nothing arrived"),
]


def request_for(case_id: str) -> InfoRequestInput:
    return starter.new_request(
        case_id=case_id,
        partner_user_id=PARTNER_USER,
        items=ITEMS,
        message="Please send the signed contract and the delivery note.",
    )


def reply(reply_id: str = "r-1", message: str = "Attached, see the delivery note.") -> ClientReply:
    return ClientReply(reply_id=reply_id, client_user_id=CLIENT_USER, message=message)


def accept() -> Decision:
    return Decision(outcome=DecisionOutcome.ACCEPT, decided_by=PARTNER_USER)


def close(code: CloseCode) -> Decision:
    return Decision(outcome=DecisionOutcome.CLOSE, close_code=code, decided_by=PARTNER_USER)


async def wait_for(predicate: object, what: str, seconds: float = 10.0) -> None:
    """Replies are signals: the worker records them a moment later."""
    assert callable(predicate)
    for _ in range(int(seconds / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def skip_to(env: WorkflowEnvironment, local: datetime) -> None:
    now = await env.get_current_time()
    assert local > now, f"test clock is already past {local}"
    await env.sleep(local - now)


async def next_local(env: WorkflowEnvironment, weekday: int, at: time) -> datetime:
    """The next given weekday (Monday=0) at a local Copenhagen time, after the test clock."""
    today = (await env.get_current_time()).astimezone(CPH).date() + timedelta(days=1)
    day = today + timedelta(days=(weekday - today.weekday()) % 7)
    return datetime.combine(day, at, tzinfo=CPH)


async def test_reply_path_from_request_to_active(stack: Stack) -> None:
    case_id = add_case(stack.store)
    opened = await starter.request_info(
        stack.client, request_for(case_id), task_queue=stack.task_queue
    )

    assert opened.phase is Phase.WAITING_FOR_CLIENT
    assert opened.case_status is CaseStatus.MORE_INFO_REQUIRED
    assert stack.store.case_status(case_id) is CaseStatus.MORE_INFO_REQUIRED
    [task] = stack.store.tasks(case_id=case_id)
    assert task.status == "open" and opened.task is not None
    assert task.due_at == opened.task.due_at
    [email] = stack.store.emails(case_id)
    assert email.to_email == "finance@dansk-kunde.example" and email.status == "outbox"
    assert "Original invoice or signed contract" in email.body
    assert "The debtor says nothing arrived" in email.body
    assert opened.task.due_local.split(" (")[0] in email.subject
    partner_messages = [m for m in stack.store.chat(case_id) if m.kind == "message"]
    assert [m.author_user_id for m in partner_messages] == [PARTNER_USER]
    assert "Please send the signed contract" in partner_messages[0].body

    await starter.send_client_reply(stack.client, case_id, reply())
    await wait_for(
        lambda: stack.store.tasks(case_id=case_id)[0].status == "replied",
        "the task to close on the reply",
    )
    state = await starter.get_state(stack.client, case_id)
    assert state.phase is Phase.WAITING_FOR_DECISION
    assert [r.reply_id for r in state.replies] == ["r-1"]

    summary = await starter.decide(stack.client, case_id, accept())
    assert summary.final_status is CaseStatus.ACTIVE
    assert summary.task_outcome is TaskOutcome.REPLIED and summary.replies == 1
    assert stack.store.case_status(case_id) is CaseStatus.ACTIVE
    history = [(c.from_status, c.to_status) for c in stack.store.status_history(case_id)]
    assert history == [
        (None, CaseStatus.PENDING_VERIFICATION),
        (CaseStatus.PENDING_VERIFICATION, CaseStatus.MORE_INFO_REQUIRED),
        (CaseStatus.MORE_INFO_REQUIRED, CaseStatus.ACTIVE),
    ]
    subjects = [e.subject for e in stack.store.emails(case_id)]
    assert len(subjects) == 3  # request to client, reply to partner, decision to client
    assert "replied" in subjects[1] and "accepted" in subjects[2]
    chat = stack.store.chat(case_id)
    assert [m.author_user_id for m in chat if m.kind == "message"] == [PARTNER_USER, CLIENT_USER]
    notes = " | ".join(m.body for m in chat if m.kind == "system")
    assert "More Info Required" in notes and "closed by itself" in notes and "Active" in notes


async def test_friday_request_expires_after_tuesday_and_tells_the_partner(
    stack: Stack, time_skipping_env: WorkflowEnvironment
) -> None:
    env = time_skipping_env
    friday = await next_local(env, weekday=4, at=time(15, 0))
    if any(friday.date() + timedelta(days=n) in holidays.country_holidays("DK") for n in range(6)):
        friday += timedelta(days=7 * 3)  # keep the example free of holidays
    await skip_to(env, friday)
    case_id = add_case(stack.store)
    opened = await starter.request_info(
        stack.client, request_for(case_id), task_queue=stack.task_queue
    )

    assert opened.task is not None
    tuesday_end = datetime.combine(friday.date() + timedelta(days=4), time(23, 59, 59), CPH)
    assert opened.task.due_at == tuesday_end

    with pytest.raises(starter.RequestError) as too_early:
        await starter.decide(stack.client, case_id, accept())
    assert too_early.value.code == "too_early_to_accept"
    assert "has not replied" in too_early.value.message

    await env.sleep(tuesday_end - await env.get_current_time() - timedelta(minutes=1))
    assert stack.store.tasks(case_id=case_id)[0].status == "open"
    await env.sleep(timedelta(minutes=2))
    await wait_for(
        lambda: stack.store.tasks(case_id=case_id)[0].status == "expired", "the task to expire"
    )
    await wait_for(lambda: len(stack.store.emails(case_id)) == 3, "the partner's email")
    _request_mail, reminder_mail, expired_mail = stack.store.emails(case_id)
    assert reminder_mail.subject.startswith("Reminder 1:")  # the morning of the due day
    assert expired_mail.to_email == "pia@test-collect.example"
    assert "did not reply" in expired_mail.body
    assert any("expired" in m.body for m in stack.store.chat(case_id) if m.kind == "system")

    summary = await starter.decide(stack.client, case_id, accept())
    assert summary.task_outcome is TaskOutcome.EXPIRED and summary.replies == 0
    assert stack.store.case_status(case_id) is CaseStatus.ACTIVE


async def test_request_before_a_regional_holiday_skips_it(
    stack: Stack, time_skipping_env: WorkflowEnvironment
) -> None:
    """Bavaria (BY) keeps holidays Berlin does not; the deadline must skip the client's."""
    env = time_skipping_env
    now_local = (await env.get_current_time()).astimezone(ZoneInfo("Europe/Berlin"))
    by = holidays.country_holidays("DE", subdiv="BY", years=[now_local.year, now_local.year + 1])
    # A weekday holiday whose eve is a weekday: the request is made on the eve at noon.
    holiday = min(
        d
        for d in by
        if d > now_local.date() + timedelta(days=1)
        and d.weekday() < 5
        and (d - timedelta(days=1)).weekday() < 5
        and d - timedelta(days=1) not in by
    )
    eve = datetime.combine(holiday - timedelta(days=1), time(12, 0), ZoneInfo("Europe/Berlin"))
    await skip_to(env, eve)
    case_id = add_case(stack.store, CLIENT_DE_BY)
    opened = await starter.request_info(
        stack.client, request_for(case_id), task_queue=stack.task_queue
    )

    expected_day: date = eve.date()
    counted = 0
    while counted < 2:
        expected_day += timedelta(days=1)
        if expected_day.weekday() < 5 and expected_day not in by:
            counted += 1
    assert opened.task is not None
    local_due = opened.task.due_at.astimezone(ZoneInfo("Europe/Berlin"))
    assert local_due.date() == expected_day and local_due.time() == time(23, 59, 59)
    assert local_due.date() > holiday + timedelta(days=1)


async def test_duplicate_reply_changes_nothing(stack: Stack) -> None:
    case_id = add_case(stack.store)
    await starter.request_info(stack.client, request_for(case_id), task_queue=stack.task_queue)
    for _ in range(3):
        await starter.send_client_reply(stack.client, case_id, reply("same-id"))
    await wait_for(
        lambda: stack.store.tasks(case_id=case_id)[0].status == "replied", "the task to close"
    )
    state = await starter.get_state(stack.client, case_id)
    assert [r.reply_id for r in state.replies] == ["same-id"]
    client_messages = [m for m in stack.store.chat(case_id) if m.author_user_id == CLIENT_USER]
    assert len(client_messages) == 1
    assert len(stack.store.emails(case_id)) == 2  # the request, and one "client replied"

    await starter.send_client_reply(stack.client, case_id, reply("second", "One more file."))
    await wait_for(lambda: len(stack.store.emails(case_id)) == 3, "the second reply's email")
    assert [r.reply_id for r in (await starter.get_state(stack.client, case_id)).replies] == [
        "same-id",
        "second",
    ]


async def test_second_request_on_an_open_case_is_refused(stack: Stack) -> None:
    case_id = add_case(stack.store)
    await starter.request_info(stack.client, request_for(case_id), task_queue=stack.task_queue)
    with pytest.raises(starter.RequestError) as refused:
        await starter.request_info(stack.client, request_for(case_id), task_queue=stack.task_queue)
    assert refused.value.code == "request_already_open"
    assert case_id in refused.value.message
    assert len(stack.store.tasks(case_id=case_id)) == 1
    assert len(stack.store.emails(case_id)) == 1
    assert len(stack.store.status_history(case_id)) == 2


async def test_close_while_waiting_ends_the_wait(stack: Stack) -> None:
    case_id = add_case(stack.store)
    await starter.request_info(stack.client, request_for(case_id), task_queue=stack.task_queue)
    summary = await starter.decide(stack.client, case_id, close(CloseCode.WITHDRAWN_BY_CLIENT))
    assert summary.final_status is CaseStatus.CLOSED
    assert summary.close_code is CloseCode.WITHDRAWN_BY_CLIENT
    assert summary.task_outcome is TaskOutcome.CANCELLED
    detail = stack.store.case_detail(case_id)
    assert detail.case.status is CaseStatus.CLOSED
    assert detail.case.close_code is CloseCode.WITHDRAWN_BY_CLIENT
    assert stack.store.tasks(case_id=case_id)[0].status == "cancelled"
    assert "closed" in stack.store.emails(case_id)[-1].subject


async def test_decision_rules(stack: Stack) -> None:
    case_id = add_case(stack.store)
    await starter.request_info(stack.client, request_for(case_id), task_queue=stack.task_queue)
    handle = stack.client.get_workflow_handle(info_request_workflow_id(case_id))

    # Other languages send JSON; the workflow itself refuses what the model forbids.
    for bad, words in [
        ({"outcome": "close", "decided_by": PARTNER_USER}, "a close needs a close code"),
        (
            {"outcome": "close", "close_code": "bankrupt", "decided_by": PARTNER_USER},
            "unknown close code 'bankrupt'",
        ),
    ]:
        with pytest.raises(Exception) as refused:
            await handle.execute_update("decide", bad)
        assert words in str(getattr(refused.value, "cause", refused.value))
    with pytest.raises(ValidationError, match="a close needs a close code"):
        Decision(outcome=DecisionOutcome.CLOSE, decided_by=PARTNER_USER)

    await starter.send_client_reply(stack.client, case_id, reply())
    await wait_for(lambda: stack.store.tasks(case_id=case_id)[0].status == "replied", "reply")
    first, second = await asyncio.gather(
        starter.decide(stack.client, case_id, accept()),
        starter.decide(stack.client, case_id, close(CloseCode.PAID)),
        return_exceptions=True,
    )
    outcomes = [first, second]
    refused_decisions = [o for o in outcomes if isinstance(o, starter.RequestError)]
    assert len(refused_decisions) == 1, outcomes
    assert refused_decisions[0].code in {"already_decided", "request_closed"}
    assert (
        len(
            [
                c
                for c in stack.store.status_history(case_id)
                if c.from_status is CaseStatus.MORE_INFO_REQUIRED
            ]
        )
        == 1
    )

    with pytest.raises(starter.RequestError) as late:
        await starter.decide(stack.client, case_id, close(CloseCode.PAID))
    assert late.value.code == "request_closed"


async def test_unknown_case_is_refused_and_nothing_is_written(stack: Stack) -> None:
    with pytest.raises(starter.RequestError) as refused:
        await starter.request_info(
            stack.client, request_for("C-DOES-NOT-EXIST"), task_queue=stack.task_queue
        )
    assert refused.value.code == "unknown_case"
    assert "C-DOES-NOT-EXIST" in refused.value.message
    assert stack.store.emails("C-DOES-NOT-EXIST") == []
    assert stack.store.tasks(case_id="C-DOES-NOT-EXIST") == []


async def test_wrong_status_is_refused_and_nothing_changes(stack: Stack) -> None:
    case_id = add_case(stack.store)
    stack.store.change_status(
        case_id=case_id,
        new_status=CaseStatus.ACTIVE,
        close_code=None,
        changed_by=PARTNER_USER,
        idempotency_key=f"{case_id}:accept",
    )
    chat_before = stack.store.chat(case_id)
    with pytest.raises(starter.RequestError) as refused:
        await starter.request_info(stack.client, request_for(case_id), task_queue=stack.task_queue)
    assert refused.value.code == "invalid_transition"
    assert "is Active" in refused.value.message
    assert "only from Pending Verification" in refused.value.message
    assert stack.store.case_status(case_id) is CaseStatus.ACTIVE
    assert stack.store.chat(case_id) == chat_before
    assert stack.store.tasks(case_id=case_id) == [] and stack.store.emails(case_id) == []


async def test_empty_checklist_is_refused_before_and_inside_temporal(stack: Stack) -> None:
    case_id = add_case(stack.store)
    with pytest.raises(ValidationError, match="the checklist is empty"):
        starter.new_request(
            case_id=case_id, partner_user_id=PARTNER_USER, items=[], message="Send everything"
        )
    # A caller in another language skips our model: the run fails with the same words.
    raw = {
        "request_id": uuid.uuid4().hex,
        "case_id": case_id,
        "partner_user_id": PARTNER_USER,
        "items": [],
        "message": "Send everything",
    }
    with pytest.raises(WorkflowFailureError) as failed:
        await stack.client.execute_workflow(
            "InfoRequestWorkflow",
            raw,
            id=info_request_workflow_id(case_id),
            task_queue=stack.task_queue,
        )
    assert isinstance(failed.value.cause, ApplicationError)
    assert "the checklist is empty" in failed.value.cause.message
    assert stack.store.case_status(case_id) is CaseStatus.PENDING_VERIFICATION
    assert stack.store.tasks(case_id=case_id) == []


async def test_reply_to_a_closed_request_is_refused(stack: Stack) -> None:
    case_id = add_case(stack.store)
    await starter.request_info(stack.client, request_for(case_id), task_queue=stack.task_queue)
    await starter.decide(stack.client, case_id, close(CloseCode.INVALID_CASE_DATA))
    chat_before = stack.store.chat(case_id)
    with pytest.raises(starter.RequestError) as refused:
        await starter.send_client_reply(stack.client, case_id, reply("late"))
    assert refused.value.code == "request_closed"
    assert stack.store.chat(case_id) == chat_before

    with pytest.raises(starter.RequestError) as none:
        await starter.send_client_reply(stack.client, "C-NEVER-ASKED", reply())
    assert none.value.code == "no_request"


async def test_request_with_a_file_not_in_the_store_is_refused_and_nothing_changes(
    stack: Stack,
) -> None:
    case_id = add_case(stack.store)
    stored = stack.files.put_bytes(
        b"%PDF-1.4 example", filename="example.pdf", content_type="application/pdf"
    )
    missing = FileRef(
        sha256="0" * 64, filename="never-uploaded.pdf", content_type="application/pdf", size=10
    )
    request = starter.new_request(
        case_id=case_id,
        partner_user_id=PARTNER_USER,
        items=ITEMS,
        message="See the examples.",
        attachments=[stored, missing],
    )
    with pytest.raises(starter.RequestError) as refused:
        await starter.request_info(stack.client, request, task_queue=stack.task_queue)
    assert refused.value.code == "file_missing"
    assert "0" * 64 in refused.value.message
    assert stack.store.case_status(case_id) is CaseStatus.PENDING_VERIFICATION
    assert len(stack.store.chat(case_id)) == 0 and stack.store.tasks(case_id=case_id) == []

    # With only the stored file, the request opens and the file is in the chat.
    request = starter.new_request(
        case_id=case_id,
        partner_user_id=PARTNER_USER,
        items=ITEMS,
        message="See the example.",
        attachments=[stored],
    )
    await starter.request_info(stack.client, request, task_queue=stack.task_queue)
    [message] = [m for m in stack.store.chat(case_id) if m.kind == "message"]
    assert message.attachments == [stored]


async def test_a_reused_request_id_is_refused_not_taken_for_a_retry(stack: Stack) -> None:
    first_case, second_case = add_case(stack.store), add_case(stack.store)
    first = request_for(first_case)
    await starter.request_info(stack.client, first, task_queue=stack.task_queue)
    reused = first.model_copy(update={"case_id": second_case})
    with pytest.raises(starter.RequestError) as refused:
        await starter.request_info(stack.client, reused, task_queue=stack.task_queue)
    assert refused.value.code == "request_id_reused"
    assert stack.store.case_status(second_case) is CaseStatus.PENDING_VERIFICATION


async def test_a_reply_whose_file_did_not_arrive_still_closes_the_task(stack: Stack) -> None:
    case_id = add_case(stack.store)
    await starter.request_info(stack.client, request_for(case_id), task_queue=stack.task_queue)
    kept = stack.files.put_bytes(b"delivery note", filename="note.txt", content_type="text/plain")
    lost = FileRef(sha256="f" * 64, filename="contract.pdf", content_type="application/pdf", size=1)
    await starter.send_client_reply(
        stack.client,
        case_id,
        ClientReply(
            reply_id="r-files",
            client_user_id=CLIENT_USER,
            message="Two files attached.",
            attachments=[kept, lost],
        ),
    )
    await wait_for(
        lambda: stack.store.tasks(case_id=case_id)[0].status == "replied", "the task to close"
    )
    [client_message] = [m for m in stack.store.chat(case_id) if m.author_user_id == CLIENT_USER]
    assert client_message.attachments == [kept]
    assert "'contract.pdf' did not arrive" in client_message.body
