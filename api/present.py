"""Store views to response bodies."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from api.schemas import CaseDetailOut, CaseFileOut, ChatMessageOut, FileOut, TaskOut
from domain.models import ChecklistItem
from mail.templates import local_time_text
from store.queries import TaskRow
from store.views import CaseDetailView, ChatMessageView


def chat_out(message: ChatMessageView) -> ChatMessageOut:
    return ChatMessageOut(
        id=message.id,
        kind=message.kind,
        author_user_id=message.author_user_id,
        body=message.body,
        attachments=[FileOut.of(message.case_id, ref) for ref in message.attachments],
        created_at=message.created_at,
    )


def case_files_out(detail: CaseDetailView) -> list[CaseFileOut]:
    return [
        CaseFileOut(
            **FileOut.of(detail.case.id, f.file).model_dump(),
            uploaded_by=f.uploaded_by,
            created_at=f.created_at,
        )
        for f in detail.files
    ]


def detail_out(detail: CaseDetailView, chat: list[ChatMessageView]) -> CaseDetailOut:
    return CaseDetailOut(
        case=detail.case,
        debtor_name=detail.debtor_name,
        description=detail.description,
        client=detail.client,
        files=case_files_out(detail),
        chat=[chat_out(m) for m in chat],
    )


def task_out(row: TaskRow) -> TaskOut:
    task = row.task
    return TaskOut(
        id=task.id,
        case_id=task.case_id,
        case_reference=row.case_reference,
        client_name=row.client_name,
        title=task.title,
        status=task.status,
        items=[ChecklistItem.model_validate(item) for item in row.items],
        due_at=task.due_at,
        due_local=task.due_at.astimezone(ZoneInfo(row.client_time_zone)),
        due_local_text=local_time_text(task.due_at, row.client_time_zone),
        time_zone=row.client_time_zone,
        created_at=task.created_at,
        closed_at=task.closed_at,
    )
