"""Read models of the case store: what the command line and the API show people."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from domain.models import CaseStatus, CloseCode, FileRef


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class PartyView(_View):
    id: str
    kind: str
    name: str
    email: str
    country: str
    subdivision: str | None
    time_zone: str


class CaseSummaryView(_View):
    id: str
    reference: str
    client_id: str
    client_name: str
    partner_id: str
    status: CaseStatus
    close_code: CloseCode | None
    amount_minor: int
    currency: str
    created_at: datetime
    updated_at: datetime


class CaseFileView(_View):
    file: FileRef
    uploaded_by: str
    created_at: datetime


class CaseDetailView(_View):
    case: CaseSummaryView
    debtor_name: str
    description: str
    client: PartyView
    files: list[CaseFileView]


class ChatMessageView(_View):
    id: int
    case_id: str
    kind: str  # message | system
    author_user_id: str | None
    body: str
    attachments: list[FileRef]
    created_at: datetime


class TaskRecordView(_View):
    id: int
    case_id: str
    request_id: str
    assignee_party_id: str
    title: str
    due_at: datetime
    status: str
    created_at: datetime
    closed_at: datetime | None
    requested_at: datetime | None = None


class StatusChangeView(_View):
    case_id: str
    from_status: CaseStatus | None
    to_status: CaseStatus
    close_code: CloseCode | None
    changed_by: str
    created_at: datetime


class EmailView(_View):
    id: int
    case_id: str
    to_email: str
    to_name: str
    subject: str
    body: str
    transport: str
    status: str
    provider_message_id: str | None
    error: str | None
    created_at: datetime
    sent_at: datetime | None
