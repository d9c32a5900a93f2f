"""Read queries of the HTTP API beyond `CaseStore`'s: pages of cases, who may see a case, a
case's files by hash, tasks with their client's time zone, the recorded info requests.

Visibility is decided here by party (a client sees the cases it submitted, a partner the cases
it received), in SQL, so a page or a count never includes another party's case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, func, select, union_all

from domain.models import CaseStatus, FileRef
from store import views
from store.cases import CaseStore, _case_summary, _task_view
from store.schema import (
    Case,
    CaseFile,
    ChatAttachment,
    ChatMessage,
    ClientTask,
    InfoRequest,
    Party,
)


class CaseSort(StrEnum):
    """How a list of cases is ordered; a leading '-' means newest/largest first."""

    CREATED_DESC = "-created_at"
    CREATED = "created_at"
    UPDATED_DESC = "-updated_at"
    UPDATED = "updated_at"
    REFERENCE = "reference"
    REFERENCE_DESC = "-reference"
    AMOUNT = "amount"
    AMOUNT_DESC = "-amount"


_SORT_COLUMNS: dict[CaseSort, Any] = {
    CaseSort.CREATED_DESC: Case.created_at.desc(),
    CaseSort.CREATED: Case.created_at.asc(),
    CaseSort.UPDATED_DESC: Case.updated_at.desc(),
    CaseSort.UPDATED: Case.updated_at.asc(),
    CaseSort.REFERENCE: Case.reference.asc(),
    CaseSort.REFERENCE_DESC: Case.reference.desc(),
    CaseSort.AMOUNT: Case.amount_minor.asc(),
    CaseSort.AMOUNT_DESC: Case.amount_minor.desc(),
}


@dataclass(frozen=True)
class PartyScope:
    """The cases a party may see: the ones it submitted (client) or received (partner)."""

    party_id: str
    party_kind: str

    def condition(self) -> ColumnElement[bool]:
        column = Case.partner_id if self.party_kind == "partner" else Case.client_id
        return column == self.party_id


@dataclass(frozen=True)
class TaskRow:
    task: views.TaskRecordView
    case_reference: str
    client_name: str
    client_time_zone: str
    items: list[dict[str, Any]]


@dataclass(frozen=True)
class InfoRequestRow:
    request_id: str
    requested_by: str
    requested_at: datetime
    items: list[dict[str, Any]]


def page_cases(
    store: CaseStore,
    scope: PartyScope,
    *,
    status: CaseStatus | None,
    sort: CaseSort,
    limit: int,
    offset: int,
) -> tuple[list[views.CaseSummaryView], int]:
    """One page of the cases the party may see, and how many there are in all."""
    where = [scope.condition()]
    if status is not None:
        where.append(Case.status == status.value)
    with store.reading() as s:
        total = s.scalar(select(func.count()).select_from(Case).where(*where)) or 0
        rows = s.execute(
            select(Case, Party)
            .join(Party, Party.id == Case.client_id)
            .where(*where)
            .order_by(_SORT_COLUMNS[sort], Case.id)  # the ID keeps pages stable on ties
            .limit(limit)
            .offset(offset)
        ).all()
        return [_case_summary(case, client) for case, client in rows], total


def can_see_case(store: CaseStore, scope: PartyScope, case_id: str) -> bool:
    with store.reading() as s:
        found = s.scalar(select(Case.id).where(Case.id == case_id, scope.condition()))
        return found is not None


def case_file(store: CaseStore, case_id: str, sha256: str) -> FileRef | None:
    """A file of the case (submitted with it, or attached in its chat), by content hash.

    The file store is shared by all cases, so a hash alone grants nothing: it must belong to
    this case."""
    with store.reading() as s:
        submitted = select(
            CaseFile.sha256, CaseFile.filename, CaseFile.content_type, CaseFile.size
        ).where(CaseFile.case_id == case_id, CaseFile.sha256 == sha256)
        attached = (
            select(
                ChatAttachment.sha256,
                ChatAttachment.filename,
                ChatAttachment.content_type,
                ChatAttachment.size,
            )
            .join(ChatMessage, ChatMessage.id == ChatAttachment.message_id)
            .where(ChatMessage.case_id == case_id, ChatAttachment.sha256 == sha256)
        )
        row = s.execute(union_all(submitted, attached).limit(1)).first()
        if row is None:
            return None
        return FileRef(sha256=row[0], filename=row[1], content_type=row[2], size=row[3])


def message_by_key(store: CaseStore, idempotency_key: str) -> views.ChatMessageView | None:
    with store.reading() as s:
        m = s.scalar(select(ChatMessage).where(ChatMessage.idempotency_key == idempotency_key))
        if m is None:
            return None
        return views.ChatMessageView(
            id=m.id,
            case_id=m.case_id,
            kind=m.kind,
            author_user_id=m.author_user_id,
            body=m.body,
            attachments=[
                FileRef(
                    sha256=a.sha256, filename=a.filename, content_type=a.content_type, size=a.size
                )
                for a in m.attachments
            ],
            created_at=m.created_at,
        )


def tasks_for(
    store: CaseStore,
    scope: PartyScope,
    *,
    status: str | None,
    case_id: str | None = None,
) -> list[TaskRow]:
    """The clients' tasks on the cases the party may see, oldest deadline first."""
    where = [scope.condition()]
    if status is not None:
        where.append(ClientTask.status == status)
    if case_id is not None:
        where.append(ClientTask.case_id == case_id)
    with store.reading() as s:
        rows = s.execute(
            select(ClientTask, Case.reference, Party.name, Party.time_zone, InfoRequest.items)
            .join(Case, Case.id == ClientTask.case_id)
            .join(Party, Party.id == Case.client_id)
            .outerjoin(InfoRequest, InfoRequest.id == ClientTask.request_id)
            .where(*where)
            .order_by(ClientTask.due_at, ClientTask.id)
        ).all()
        return [
            TaskRow(
                task=_task_view(task),
                case_reference=reference,
                client_name=client_name,
                client_time_zone=time_zone,
                items=list(items or []),
            )
            for task, reference, client_name, time_zone, items in rows
        ]


def info_requests(store: CaseStore, case_id: str) -> list[InfoRequestRow]:
    with store.reading() as s:
        rows = s.scalars(
            select(InfoRequest)
            .where(InfoRequest.case_id == case_id)
            .order_by(InfoRequest.requested_at, InfoRequest.id)
        ).all()
        return [
            InfoRequestRow(
                request_id=r.id,
                requested_by=r.requested_by,
                requested_at=r.requested_at,
                items=list(r.items),
            )
            for r in rows
        ]
