"""The info-request workflow's steps. Each does I/O and is idempotent by its key.

A key is `<request ID>:<step>`: a retry, a replay of a local activity after a crash, or a
duplicate delivery finds the row the first attempt wrote and returns it unchanged.
Errors a retry cannot fix (unknown case, a transition the lifecycle forbids, a missing file, an
email SendGrid rejects) are raised as non-retryable ApplicationErrors whose message names the
case and the rule; everything else is retried by Temporal.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.deadlines import CalendarError, ClientCalendar, client_deadline
from domain.lifecycle import STATUS_LABELS, TransitionError
from domain.models import (
    CaseStatus,
    ChecklistItem,
    CloseCode,
    FileRef,
    RequestedItem,
    RequestOutcome,
    RequestPolicy,
    TaskOutcome,
    TaskView,
)
from domain.reminders import latest_deadline, reminder_times
from mail import templates
from mail.mailer import EmailOutcome, Mailer
from mail.message import OutgoingEmail
from store.cases import CaseStore, RequestIdReused, RequestRecord, UnknownCase, UnknownTask
from store.files import FileMissing, FileStore


class _Input(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OpenRequest(_Input):
    """What the status change that opens a request records with it."""

    request_id: str
    requested_at: datetime
    items: list[ChecklistItem]
    attachments: list[FileRef] = []


class EndRequest(_Input):
    """How the request ends, recorded with the status change that ends it (for metrics)."""

    request_id: str
    outcome: RequestOutcome


class SetStatusInput(_Input):
    case_id: str
    new_status: CaseStatus
    close_code: CloseCode | None = None
    changed_by: str
    idempotency_key: str
    opens: OpenRequest | None = None
    ends: EndRequest | None = None


class PostMessageInput(_Input):
    case_id: str
    kind: str  # message | system
    author_user_id: str | None
    body: str
    attachments: list[FileRef] = []
    idempotency_key: str
    # A client's reply is never refused for a file that did not arrive: it is posted without
    # it, with a line saying so. A partner's request is refused before anything changes.
    drop_missing_attachments: bool = False
    # Set on a client's reply: the request whose first-reply time it may be (metrics).
    reply_to_request: str | None = None


class CreateTaskInput(_Input):
    case_id: str
    request_id: str
    requested_by: str
    requested_at: datetime
    items: list[RequestedItem]
    idempotency_key: str
    round: int = 1
    policy: RequestPolicy = RequestPolicy()


class MoveDeadlineInput(_Input):
    case_id: str
    task: TaskView
    round_requested_at: datetime
    new_due_at: datetime
    requested_by: str
    policy: RequestPolicy = RequestPolicy()


class ChecklistInput(_Input):
    case_id: str
    request_id: str
    items: list[ChecklistItem]
    note: str | None
    idempotency_key: str


class ClientTaskCreated(_Input):
    task: TaskView
    client_country: str  # for the ClientCountry search attribute
    partner_id: str


class CloseTaskInput(_Input):
    case_id: str
    task_key: str
    outcome: TaskOutcome


class EmailKind(StrEnum):
    INFO_REQUESTED = "info_requested"
    CLIENT_REPLIED = "client_replied"
    REQUEST_EXPIRED = "request_expired"
    CASE_DECIDED = "case_decided"
    FOLLOW_UP = "follow_up"
    REMINDER = "reminder"
    PARTNER_MESSAGES = "partner_messages"
    REQUEST_WITHDRAWN = "request_withdrawn"


# Emails for the partner who asked; every other kind goes to the client.
TO_PARTNER = frozenset({EmailKind.CLIENT_REPLIED, EmailKind.REQUEST_EXPIRED})


class SendEmailInput(_Input):
    kind: EmailKind
    case_id: str
    partner_user_id: str
    idempotency_key: str
    items: list[RequestedItem] = []
    message: str = ""
    due_at: datetime | None = None
    replied_at: datetime | None = None
    close_code: CloseCode | None = None
    note: str | None = None
    checklist: list[ChecklistItem] = []
    messages: list[str] = []
    reminder_number: int = 0


def _refuse(error: Exception, kind: str) -> ApplicationError:
    return ApplicationError(str(error), type=kind, non_retryable=True)


class InfoRequestActivities:
    """Activities bound to the stores and the mailer they write to."""

    def __init__(self, store: CaseStore, files: FileStore, mailer: Mailer) -> None:
        self.store = store
        self.files = files
        self.mailer = mailer

    @activity.defn(name="set_case_status")
    def set_case_status(self, step: SetStatusInput) -> CaseStatus:
        note = f"Status changed to {STATUS_LABELS[step.new_status]}"
        if step.close_code:
            note += f" (close code: {step.close_code.value})"
        opens = None
        if step.opens is not None:
            opens = RequestRecord(
                request_id=step.opens.request_id,
                run_id=activity.info().workflow_run_id or "",
                requested_by=step.changed_by,
                items=[item.model_dump(mode="json") for item in step.opens.items],
                requested_at=step.opens.requested_at,
            )
        try:
            if step.opens is not None:
                self.files.check(step.opens.attachments)
            return self.store.change_status(
                case_id=step.case_id,
                new_status=step.new_status,
                close_code=step.close_code,
                changed_by=step.changed_by,
                idempotency_key=step.idempotency_key,
                note=f"{note}, by {step.changed_by}.",
                opens=opens,
                ends_request=(step.ends.request_id, step.ends.outcome.value) if step.ends else None,
            )
        except UnknownCase as e:
            raise _refuse(e, "UnknownCase") from e
        except TransitionError as e:
            raise _refuse(e, "InvalidTransition") from e
        except RequestIdReused as e:
            raise _refuse(e, "RequestIdReused") from e
        except FileMissing as e:
            raise _refuse(e, "FileMissing") from e

    @activity.defn(name="post_chat_message")
    def post_chat_message(self, step: PostMessageInput) -> int:
        attachments, body = list(step.attachments), step.body
        if step.drop_missing_attachments:
            missing = [ref for ref in attachments if not self.files.exists(ref.sha256)]
            attachments = [ref for ref in attachments if ref not in missing]
            body += "".join(
                f"\n\n[Attachment {ref.filename!r} did not arrive; please upload it again.]"
                for ref in missing
            )
        try:
            self.files.check(attachments)
            message_id = self.store.post_message(
                case_id=step.case_id,
                kind=step.kind,
                author_user_id=step.author_user_id,
                body=body,
                attachments=attachments,
                idempotency_key=step.idempotency_key,
                first_reply_to=step.reply_to_request,
            )
        except UnknownCase as e:
            raise _refuse(e, "UnknownCase") from e
        except FileMissing as e:
            raise _refuse(e, "FileMissing") from e
        return message_id

    @activity.defn(name="create_client_task")
    def create_client_task(self, step: CreateTaskInput) -> ClientTaskCreated:
        """Compute the deadline once (so a replay never moves it) and create the task."""
        try:
            case, client, _partner = self.store.case_parties(step.case_id)
            calendar = ClientCalendar(client.country, client.subdivision, client.time_zone)
            due_at = client_deadline(
                step.requested_at, calendar, step.policy.business_days_to_reply
            )
        except UnknownCase as e:
            raise _refuse(e, "UnknownCase") from e
        except CalendarError as e:
            raise _refuse(e, "InvalidClientCalendar") from e
        due_text = templates.local_time_text(due_at, client.time_zone)
        round_text = f" (round {step.round})" if step.round > 1 else ""
        task = self.store.create_task(
            case_id=step.case_id,
            request_id=step.request_id,
            title=f"Send the information requested on case {case.reference}{round_text}",
            due_at=due_at,
            idempotency_key=step.idempotency_key,
            note=f"Task created for {client.name}{round_text}: reply by {due_text}.",
            requested_at=step.requested_at,
            assignee_party_id=client.id,
        )
        requested_at = task.requested_at or step.requested_at  # a retry keeps the first
        view = TaskView(
            task_id=step.idempotency_key,
            due_at=task.due_at.astimezone(UTC),
            due_local=templates.local_time_text(task.due_at, client.time_zone),
            outcome=TaskOutcome(task.status),
            round=step.round,
            reminders_at=[
                t.astimezone(UTC)
                for t in reminder_times(task.due_at, requested_at, calendar, step.policy)
            ],
            latest_due_at=latest_deadline(requested_at, calendar, step.policy).astimezone(UTC),
        )
        return ClientTaskCreated(
            task=view, client_country=client.country, partner_id=case.partner_id
        )

    @activity.defn(name="move_task_deadline")
    def move_task_deadline(self, step: MoveDeadlineInput) -> TaskView:
        """Extend the open task's deadline; the reminders follow the new deadline."""
        try:
            _case, client, _partner = self.store.case_parties(step.case_id)
            calendar = ClientCalendar(client.country, client.subdivision, client.time_zone)
        except UnknownCase as e:
            raise _refuse(e, "UnknownCase") from e
        except CalendarError as e:
            raise _refuse(e, "InvalidClientCalendar") from e
        new_due_text = templates.local_time_text(step.new_due_at, client.time_zone)
        try:
            task = self.store.move_task_deadline(
                idempotency_key=step.task.task_id,
                due_at=step.new_due_at,
                note=f"Deadline extended to {new_due_text}, by {step.requested_by}.",
                note_key=f"{step.task.task_id}:due:{step.new_due_at.astimezone(UTC).isoformat()}",
            )
        except UnknownTask as e:
            raise _refuse(e, "UnknownTask") from e
        return step.task.model_copy(
            update={
                "due_at": task.due_at.astimezone(UTC),
                "due_local": templates.local_time_text(task.due_at, client.time_zone),
                "reminders_at": [
                    t.astimezone(UTC)
                    for t in reminder_times(
                        task.due_at, step.round_requested_at, calendar, step.policy
                    )
                ],
            }
        )

    @activity.defn(name="record_checklist")
    def record_checklist(self, step: ChecklistInput) -> None:
        """Keep the checklist in the case store current (what the API and CLI show)."""
        self.store.record_checklist(
            request_id=step.request_id,
            items=[item.model_dump(mode="json") for item in step.items],
            note=step.note,
            note_key=step.idempotency_key,
        )

    @activity.defn(name="close_client_task")
    def close_client_task(self, step: CloseTaskInput) -> TaskOutcome:
        notes = {
            TaskOutcome.REPLIED: "The client replied; their task closed by itself.",
            TaskOutcome.EXPIRED: (
                "The client did not reply by the deadline; their task expired. Accept the case "
                "or close it (for example as unresponsive_client)."
            ),
            TaskOutcome.CANCELLED: "The client's task was cancelled.",
        }
        try:
            task = self.store.close_task(
                idempotency_key=step.task_key,
                outcome=step.outcome.value,
                note=notes.get(step.outcome),
            )
        except UnknownTask as e:
            raise _refuse(e, "UnknownTask") from e
        return TaskOutcome(task.status)

    @activity.defn(name="send_email")
    def send_email(self, step: SendEmailInput) -> EmailOutcome:
        try:
            case, client, partner, partner_user = self.store.email_parties(
                step.case_id, step.partner_user_id
            )
        except UnknownCase as e:
            raise _refuse(e, "UnknownCase") from e
        partner_name, partner_email = partner_user or (partner.name, partner.email)
        match step.kind:
            case EmailKind.INFO_REQUESTED:
                assert step.due_at is not None
                rendered = templates.info_requested(
                    case_reference=case.reference,
                    client_name=client.name,
                    partner_name=partner.name,
                    items=step.items,
                    message=step.message,
                    due_at=step.due_at,
                    time_zone=client.time_zone,
                )
            case EmailKind.CLIENT_REPLIED:
                assert step.replied_at is not None
                rendered = templates.client_replied(
                    case_reference=case.reference,
                    partner_name=partner_name,
                    client_name=client.name,
                    replied_at=step.replied_at,
                    time_zone=partner.time_zone,
                )
            case EmailKind.REQUEST_EXPIRED:
                assert step.due_at is not None
                rendered = templates.request_expired(
                    case_reference=case.reference,
                    partner_name=partner_name,
                    client_name=client.name,
                    due_at=step.due_at,
                    time_zone=partner.time_zone,
                )
            case EmailKind.FOLLOW_UP:
                assert step.due_at is not None
                rendered = templates.follow_up(
                    case_reference=case.reference,
                    client_name=client.name,
                    partner_name=partner.name,
                    items=step.checklist,
                    message=step.message,
                    due_at=step.due_at,
                    time_zone=client.time_zone,
                )
            case EmailKind.REMINDER:
                assert step.due_at is not None
                rendered = templates.reminder(
                    case_reference=case.reference,
                    client_name=client.name,
                    partner_name=partner.name,
                    items=step.checklist,
                    due_at=step.due_at,
                    time_zone=client.time_zone,
                    number=step.reminder_number,
                )
            case EmailKind.PARTNER_MESSAGES:
                rendered = templates.partner_messages(
                    case_reference=case.reference,
                    client_name=client.name,
                    partner_name=partner.name,
                    messages=step.messages,
                )
            case EmailKind.REQUEST_WITHDRAWN:
                rendered = templates.request_withdrawn(
                    case_reference=case.reference,
                    client_name=client.name,
                    partner_name=partner.name,
                    reason=step.note,
                )
            case EmailKind.CASE_DECIDED:
                rendered = templates.case_decided(
                    case_reference=case.reference,
                    client_name=client.name,
                    partner_name=partner.name,
                    close_code=step.close_code,
                    note=step.note,
                )
        to_email, to_name = (
            (partner_email, partner_name)
            if step.kind in TO_PARTNER
            else (client.email, client.name)
        )
        return self.mailer.deliver(
            OutgoingEmail(
                idempotency_key=step.idempotency_key,
                to_email=to_email,
                to_name=to_name,
                subject=rendered.subject,
                text_body=rendered.body,
                case_id=step.case_id,
            )
        )

    def all(self) -> list[Callable[..., Any]]:
        return [
            self.set_case_status,
            self.post_chat_message,
            self.create_client_task,
            self.close_client_task,
            self.send_email,
            self.move_task_deadline,
            self.record_checklist,
        ]
