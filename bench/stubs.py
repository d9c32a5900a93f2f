"""InfoRequestWorkflow's steps with empty bodies (same names, same payloads in and out).

A diagnostic: our workflow on these runs the same Temporal steps with the same payloads as
with the real steps, minus the database, the email templates and the calendar. The difference
to the real thing is what the steps' bodies cost; the difference to baseline (b) is what our
workflow code and its payloads cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import activity

from activities.info_request import (
    ChecklistInput,
    ClientTaskCreated,
    CloseTaskInput,
    CreateTaskInput,
    MoveDeadlineInput,
    PostMessageInput,
    SendEmailInput,
    SetStatusInput,
)
from domain.models import CaseStatus, TaskOutcome, TaskView
from mail.mailer import EmailOutcome
from tests.conftest import PARTNER

# case ID -> wall-clock time the task was closed (this process's workers only).
STUB_TASK_CLOSED_AT: dict[str, float] = {}


class StubActivities:
    @activity.defn(name="set_case_status")
    def set_case_status(self, step: SetStatusInput) -> CaseStatus:
        return step.new_status

    @activity.defn(name="post_chat_message")
    def post_chat_message(self, step: PostMessageInput) -> int:
        return 1

    @activity.defn(name="create_client_task")
    def create_client_task(self, step: CreateTaskInput) -> ClientTaskCreated:
        due = step.requested_at + timedelta(days=4)
        task = TaskView(
            task_id=step.idempotency_key,
            due_at=due,
            due_local="Tuesday 8 December 2026, 23:59 (Europe/Copenhagen)",
            outcome=TaskOutcome.OPEN,
            round=step.round,
            reminders_at=[due - timedelta(hours=15)],
            latest_due_at=due + timedelta(days=8),
        )
        return ClientTaskCreated(task=task, client_country="DK", partner_id=PARTNER.id)

    @activity.defn(name="close_client_task")
    def close_client_task(self, step: CloseTaskInput) -> TaskOutcome:
        STUB_TASK_CLOSED_AT[step.case_id] = time.time()
        return step.outcome

    @activity.defn(name="send_email")
    def send_email(self, step: SendEmailInput) -> EmailOutcome:
        return EmailOutcome(status="outbox", transport="outbox")

    @activity.defn(name="move_task_deadline")
    def move_task_deadline(self, step: MoveDeadlineInput) -> TaskView:
        return step.task

    @activity.defn(name="record_checklist")
    def record_checklist(self, step: ChecklistInput) -> None:
        return None

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
