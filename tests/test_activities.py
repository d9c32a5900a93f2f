"""The real activities against real SQLite and PostgreSQL, run through ActivityEnvironment.

Every test uses the `store` fixture, so each runs on both databases. Assertions are on what a
user would notice: the case chat, the client's tasks, the status history and the emails.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import holidays
import pytest
from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import IntegrityError
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.info_request import (
    CloseTaskInput,
    CreateTaskInput,
    EmailKind,
    InfoRequestActivities,
    PostMessageInput,
    SendEmailInput,
    SetStatusInput,
)
from domain.models import (
    CaseStatus,
    CloseCode,
    FileRef,
    ItemKind,
    RequestedItem,
    TaskOutcome,
    TaskView,
)
from mail.mailer import EmailOutcome
from store.cases import CaseStore
from store.files import FileStore
from tests.conftest import (
    CLIENT_DK,
    CLIENT_USER,
    PARTNER,
    PARTNER_USER,
    add_case,
    make_activities,
)

CPH = ZoneInfo("Europe/Copenhagen")
THREADS = 8
ITEMS = [
    RequestedItem(kind=ItemKind.INVOICE_OR_CONTRACT, reason="The claim amount must be proven"),
    RequestedItem(kind=ItemKind.PROOF_OF_DELIVERY, reason="The debtor says nothing arrived"),
]
# A Friday 15:00 in Copenhagen with no Danish holiday on the following Monday or Tuesday.
FRIDAY_3PM = datetime(2026, 3, 6, 15, 0, tzinfo=CPH)
TUESDAY_END = datetime(2026, 3, 10, 23, 59, 59, tzinfo=CPH)
TUESDAY_END_TEXT = "Tuesday 10 March 2026, 23:59 (Europe/Copenhagen)"

In = TypeVar("In")
Out = TypeVar("Out")


def run(fn: Callable[[In], Out], step: In) -> Out:
    """One activity attempt, as a Temporal worker would run it."""
    return ActivityEnvironment().run(fn, step)


def run_concurrently(store: CaseStore, fn: Callable[[In], Out], step: In) -> list[Out]:
    """The same step from THREADS threads released at the same moment."""
    # Open the connections first, so no thread is still connecting when the others write.
    warm = [store.engine.connect() for _ in range(THREADS)]
    for connection in warm:
        connection.close()
    start = threading.Barrier(THREADS)

    def attempt() -> Out:
        start.wait(timeout=30)
        return run(fn, step)

    with ThreadPoolExecutor(THREADS) as pool:
        futures = [pool.submit(attempt) for _ in range(THREADS)]
        return [f.result(timeout=120) for f in futures]


def racing_cases(store: CaseStore, table: str, rounds: int = 5) -> Iterator[str]:
    """Fresh cases to race on, until two attempts collided on `table`'s idempotency key.

    On PostgreSQL the losers of a race get a unique violation (IntegrityError) and must answer
    with the winner's row; a round where the threads happened not to overlap proves nothing,
    so another round is run. SQLite takes its write lock at BEGIN, so attempts queue instead
    of colliding: one round is the whole test there.
    """
    collisions: list[str] = []

    def on_error(context: ExceptionContext) -> None:
        if isinstance(context.sqlalchemy_exception, IntegrityError) and (
            f"INSERT INTO {table} " in (context.statement or "")
        ):
            collisions.append(table)

    event.listen(store.engine, "handle_error", on_error)
    try:
        for _ in range(rounds):
            yield add_case(store)
            if collisions or store.engine.dialect.name == "sqlite":
                return
        pytest.fail(f"no two attempts collided on {table} in {rounds} rounds")
    finally:
        event.remove(store.engine, "handle_error", on_error)


def refused(fn: Callable[[In], Any], step: In) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        run(fn, step)
    return caught.value


def snapshot(store: CaseStore, case_id: str) -> tuple[Any, ...]:
    """Everything about a case a user could see."""
    return (
        store.status_history(case_id),
        store.chat(case_id),
        store.tasks(case_id=case_id),
        store.emails(case_id),
    )


@pytest.fixture
def acts(store: CaseStore, files: FileStore) -> InfoRequestActivities:
    return make_activities(store, files)  # no SendGrid: emails go to the outbox


def ask_for_info(case_id: str, key: str) -> SetStatusInput:
    return SetStatusInput(
        case_id=case_id,
        new_status=CaseStatus.MORE_INFO_REQUIRED,
        changed_by=PARTNER_USER,
        idempotency_key=key,
    )


def task_input(case_id: str, requested_at: datetime = FRIDAY_3PM) -> CreateTaskInput:
    return CreateTaskInput(
        case_id=case_id,
        request_id=f"req-{case_id}",
        requested_by=PARTNER_USER,
        requested_at=requested_at,
        items=ITEMS,
        idempotency_key=f"req-{case_id}:task",
    )


def info_email(case_id: str, due_at: datetime = TUESDAY_END) -> SendEmailInput:
    return SendEmailInput(
        kind=EmailKind.INFO_REQUESTED,
        case_id=case_id,
        partner_user_id=PARTNER_USER,
        idempotency_key=f"req-{case_id}:email-requested",
        items=ITEMS,
        message="Please send the signed contract and the delivery note.",
        due_at=due_at,
    )


def system_notes(store: CaseStore, case_id: str) -> list[str]:
    return [m.body for m in store.chat(case_id) if m.kind == "system"]


# ---- the same key twice writes once -------------------------------------------------------


def test_set_case_status_twice_changes_the_status_once(
    store: CaseStore, acts: InfoRequestActivities
) -> None:
    case_id = add_case(store)
    step = ask_for_info(case_id, f"req-{case_id}:status")

    first = run(acts.set_case_status, step)
    second = run(acts.set_case_status, step)  # a retry: MIR -> MIR would be refused if re-done

    assert first is second is CaseStatus.MORE_INFO_REQUIRED
    assert store.case_status(case_id) is CaseStatus.MORE_INFO_REQUIRED
    history = [(c.from_status, c.to_status) for c in store.status_history(case_id)]
    assert history == [
        (None, CaseStatus.PENDING_VERIFICATION),
        (CaseStatus.PENDING_VERIFICATION, CaseStatus.MORE_INFO_REQUIRED),
    ]
    assert system_notes(store, case_id) == [
        f"Status changed to More Info Required, by {PARTNER_USER}."
    ]


def test_post_chat_message_twice_posts_once_with_its_attachments(
    store: CaseStore, files: FileStore, acts: InfoRequestActivities
) -> None:
    case_id = add_case(store)
    contract = files.put_bytes(b"%PDF signed", filename="contract.pdf", content_type="text/pdf")
    note = files.put_bytes(b"delivered 2 May", filename="delivery.txt", content_type="text/plain")
    step = PostMessageInput(
        case_id=case_id,
        kind="message",
        author_user_id=CLIENT_USER,
        body="Attached: the contract and the delivery note.",
        attachments=[contract, note],
        idempotency_key=f"req-{case_id}:reply:r-1",
    )

    first = run(acts.post_chat_message, step)
    second = run(acts.post_chat_message, step)

    assert first == second
    [message] = store.chat(case_id)
    assert message.id == first
    assert message.author_user_id == CLIENT_USER and message.kind == "message"
    assert message.body == "Attached: the contract and the delivery note."
    assert message.attachments == [contract, note]


def test_create_client_task_twice_keeps_the_first_deadline(
    store: CaseStore, acts: InfoRequestActivities
) -> None:
    case_id = add_case(store)

    first = run(acts.create_client_task, task_input(case_id))
    # A retry whose input carries a later clock must not move the deadline.
    retry = run(acts.create_client_task, task_input(case_id, FRIDAY_3PM + timedelta(days=3)))

    assert retry == first
    assert first.task.due_at == TUESDAY_END and first.task.outcome is TaskOutcome.OPEN
    assert first.client_country == CLIENT_DK.country and first.partner_id == PARTNER.id
    [task] = store.tasks(case_id=case_id)
    assert task.due_at == TUESDAY_END and task.status == "open"
    assert len(system_notes(store, case_id)) == 1


def test_close_client_task_keeps_the_first_outcome(
    store: CaseStore, acts: InfoRequestActivities
) -> None:
    case_id = add_case(store)
    task = run(acts.create_client_task, task_input(case_id)).task
    replied = CloseTaskInput(case_id=case_id, task_key=task.task_id, outcome=TaskOutcome.REPLIED)
    expired = CloseTaskInput(case_id=case_id, task_key=task.task_id, outcome=TaskOutcome.EXPIRED)

    assert run(acts.close_client_task, replied) is TaskOutcome.REPLIED
    assert run(acts.close_client_task, replied) is TaskOutcome.REPLIED
    # The deadline timer firing after the reply does not turn the task into "expired".
    assert run(acts.close_client_task, expired) is TaskOutcome.REPLIED

    [row] = store.tasks(case_id=case_id)
    assert row.status == "replied" and row.closed_at is not None
    notes = system_notes(store, case_id)
    assert notes[1:] == ["The client replied; their task closed by itself."]
    assert not any("expired" in n for n in notes)


def test_send_email_twice_records_one_email(store: CaseStore, acts: InfoRequestActivities) -> None:
    case_id = add_case(store)

    first = run(acts.send_email, info_email(case_id))
    second = run(acts.send_email, info_email(case_id))

    assert first == second == EmailOutcome(status="outbox", transport="outbox")
    [email] = store.emails(case_id)
    assert email.status == "outbox" and email.to_email == CLIENT_DK.email


# ---- the same key from 8 threads at once writes once ----------------------------------------


def test_concurrent_status_changes_with_one_key_change_once(
    store: CaseStore, acts: InfoRequestActivities
) -> None:
    # Same-case status changes queue on the case row's lock (no unique violation to race on).
    case_id = add_case(store)

    results = run_concurrently(store, acts.set_case_status, ask_for_info(case_id, f"{case_id}:mir"))

    assert results == [CaseStatus.MORE_INFO_REQUIRED] * THREADS
    assert [c.to_status for c in store.status_history(case_id)] == [
        CaseStatus.PENDING_VERIFICATION,
        CaseStatus.MORE_INFO_REQUIRED,
    ]
    assert system_notes(store, case_id) == [
        f"Status changed to More Info Required, by {PARTNER_USER}."
    ]


def test_concurrent_chat_messages_with_one_key_post_once(
    store: CaseStore, files: FileStore, acts: InfoRequestActivities
) -> None:
    ref = files.put_bytes(b"invoice 17", filename="invoice.pdf", content_type="application/pdf")
    for case_id in racing_cases(store, "chat_messages"):
        step = PostMessageInput(
            case_id=case_id,
            kind="message",
            author_user_id=CLIENT_USER,
            body="Here is the invoice.",
            attachments=[ref],
            idempotency_key=f"{case_id}:reply:r-1",
        )

        ids = run_concurrently(store, acts.post_chat_message, step)

        [message] = store.chat(case_id)
        assert ids == [message.id] * THREADS
        assert message.attachments == [ref]


def test_concurrent_task_creation_with_one_key_creates_one_task(
    store: CaseStore, acts: InfoRequestActivities
) -> None:
    for case_id in racing_cases(store, "tasks"):
        created = run_concurrently(store, acts.create_client_task, task_input(case_id))

        [task] = store.tasks(case_id=case_id)
        assert created == [created[0]] * THREADS
        assert created[0].task.due_at == task.due_at == TUESDAY_END
        assert len(system_notes(store, case_id)) == 1


def test_concurrent_emails_with_one_key_record_one_email(
    store: CaseStore, acts: InfoRequestActivities
) -> None:
    for case_id in racing_cases(store, "emails"):
        outcomes = run_concurrently(store, acts.send_email, info_email(case_id))

        assert outcomes == [EmailOutcome(status="outbox", transport="outbox")] * THREADS
        assert len(store.emails(case_id)) == 1


# ---- refusals write nothing ---------------------------------------------------------------


def test_more_info_required_on_an_active_case_is_refused(
    store: CaseStore, acts: InfoRequestActivities
) -> None:
    case_id = add_case(store)
    accept = SetStatusInput(
        case_id=case_id,
        new_status=CaseStatus.ACTIVE,
        changed_by=PARTNER_USER,
        idempotency_key=f"{case_id}:accept",
    )
    run(acts.set_case_status, accept)
    before = snapshot(store, case_id)

    error = refused(acts.set_case_status, ask_for_info(case_id, f"{case_id}:late-mir"))

    assert error.type == "InvalidTransition" and error.non_retryable
    assert f"case {case_id} is Active" in error.message
    assert "More Info Required can be set only from Pending Verification" in error.message
    assert store.case_status(case_id) is CaseStatus.ACTIVE
    assert snapshot(store, case_id) == before


def test_status_change_on_an_unknown_case_is_refused(
    store: CaseStore, acts: InfoRequestActivities
) -> None:
    error = refused(acts.set_case_status, ask_for_info("C-NOPE", "C-NOPE:mir"))

    assert error.type == "UnknownCase" and error.non_retryable
    assert "'C-NOPE'" in error.message and "no case has that ID" in error.message
    assert snapshot(store, "C-NOPE") == ([], [], [], [])


def test_close_without_a_close_code_is_refused(
    store: CaseStore, acts: InfoRequestActivities
) -> None:
    case_id = add_case(store)
    before = snapshot(store, case_id)
    close = SetStatusInput(
        case_id=case_id,
        new_status=CaseStatus.CLOSED,
        changed_by=PARTNER_USER,
        idempotency_key=f"{case_id}:close",
    )

    error = refused(acts.set_case_status, close)

    assert error.type == "InvalidTransition" and error.non_retryable
    assert error.message == f"case {case_id} cannot be closed without a close code"
    assert store.case_status(case_id) is CaseStatus.PENDING_VERIFICATION
    assert snapshot(store, case_id) == before

    # The same key with a code is a fresh attempt, not a replay of the refusal.
    with_code = close.model_copy(update={"close_code": CloseCode.PAID})
    assert run(acts.set_case_status, with_code) is CaseStatus.CLOSED
    assert store.case_detail(case_id).case.close_code is CloseCode.PAID


def test_message_with_an_attachment_never_uploaded_is_refused(
    store: CaseStore, files: FileStore, acts: InfoRequestActivities
) -> None:
    case_id = add_case(store)
    stored = files.put_bytes(b"real", filename="real.txt", content_type="text/plain")
    missing_sha = hashlib.sha256(b"never uploaded").hexdigest()
    missing = FileRef(sha256=missing_sha, filename="ghost.pdf", content_type="text/pdf", size=14)
    step = PostMessageInput(
        case_id=case_id,
        kind="message",
        author_user_id=CLIENT_USER,
        body="See attached.",
        attachments=[stored, missing],
        idempotency_key=f"{case_id}:reply:ghost",
    )

    error = refused(acts.post_chat_message, step)

    assert error.type == "FileMissing" and error.non_retryable
    assert missing_sha in error.message
    assert store.chat(case_id) == []


# ---- the deadline in the client's calendar, and what the client is told ----------------------


@pytest.mark.parametrize(
    ("friday", "tuesday_end_utc", "text"),
    [
        pytest.param(
            FRIDAY_3PM,
            datetime(2026, 3, 10, 22, 59, 59, tzinfo=UTC),
            TUESDAY_END_TEXT,
            id="winter-time",
        ),
        pytest.param(  # Copenhagen moves to summer time on Sunday 29 March
            datetime(2026, 3, 27, 15, 0, tzinfo=CPH),
            datetime(2026, 3, 31, 21, 59, 59, tzinfo=UTC),
            "Tuesday 31 March 2026, 23:59 (Europe/Copenhagen)",
            id="across-dst",
        ),
    ],
)
def test_friday_afternoon_request_is_due_end_of_tuesday_in_copenhagen(
    store: CaseStore,
    acts: InfoRequestActivities,
    friday: datetime,
    tuesday_end_utc: datetime,
    text: str,
) -> None:
    dk = holidays.country_holidays("DK", years=friday.year)
    assert friday.weekday() == 4
    assert not any(friday.date() + timedelta(days=n) in dk for n in range(5))
    case_id = add_case(store, CLIENT_DK)

    view = run(acts.create_client_task, task_input(case_id, friday.astimezone(UTC))).task

    local_due = view.due_at.astimezone(CPH)
    assert local_due.date() == friday.date() + timedelta(days=4)
    assert local_due.time() == time(23, 59, 59)
    assert view.due_at == tuesday_end_utc
    assert view.due_local == text
    [task] = store.tasks(case_id=case_id)
    assert task.due_at == tuesday_end_utc
    assert task.assignee_party_id == CLIENT_DK.id and task.status == "open"
    assert system_notes(store, case_id) == [f"Task created for {CLIENT_DK.name}: reply by {text}."]


def test_info_request_email_says_what_why_and_by_when(
    store: CaseStore, acts: InfoRequestActivities
) -> None:
    case_id = add_case(store, CLIENT_DK)
    reference = store.case_parties(case_id)[0].reference
    task: TaskView = run(acts.create_client_task, task_input(case_id)).task

    outcome = run(acts.send_email, info_email(case_id, task.due_at))

    assert outcome == EmailOutcome(status="outbox", transport="outbox")
    [email] = store.emails(case_id)
    assert email.to_email == CLIENT_DK.email and email.to_name == CLIENT_DK.name
    assert email.transport == "outbox" and email.status == "outbox"
    assert email.subject == f"Information needed for case {reference} by {TUESDAY_END_TEXT}"
    assert "1. Original invoice or signed contract\n   Why: The claim amount must be proven" in (
        email.body
    )
    assert (
        "2. Proof of delivery or of the service being completed\n"
        "   Why: The debtor says nothing arrived"
    ) in email.body
    assert "Please send the signed contract and the delivery note." in email.body
    assert f"Please reply in the case chat by {TUESDAY_END_TEXT}." in email.body
    assert "UTC" not in email.subject + email.body


def test_client_replied_email_goes_to_the_partner_user(
    store: CaseStore, acts: InfoRequestActivities
) -> None:
    case_id = add_case(store, CLIENT_DK)
    step = SendEmailInput(
        kind=EmailKind.CLIENT_REPLIED,
        case_id=case_id,
        partner_user_id=PARTNER_USER,
        idempotency_key=f"{case_id}:email-replied:r-1",
        replied_at=datetime(2026, 3, 9, 9, 30, tzinfo=UTC),
    )

    run(acts.send_email, step)

    [email] = store.emails(case_id)
    assert (email.to_email, email.to_name) == ("pia@test-collect.example", "Pia Partner")
    assert "Monday 9 March 2026, 10:30 (Europe/Copenhagen)" in email.body
