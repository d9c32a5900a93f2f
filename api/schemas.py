"""Request and response bodies of the HTTP API.

Text from callers is checked for characters no database or person wants (NUL, other control
characters, lone surrogates) here, at the edge: PostgreSQL refuses NUL in text, and a string
that cannot be stored must be a 422, never a failed write deep in a workflow step.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from domain.models import (
    CaseStatus,
    ChecklistItem,
    CloseCode,
    DecisionOutcome,
    FileRef,
    Identifier,
    RequestedItem,
    RequestState,
    RequestSummary,
)
from store.views import (
    CaseSummaryView,
    EmailView,
    PartyView,
    StatusChangeView,
)


def clean_text(value: str) -> str:
    """Refuse control characters (tab and line breaks are fine) and lone surrogates."""
    for c in value:
        if c not in "\t\n\r" and unicodedata.category(c) in ("Cc", "Cs"):
            raise ValueError(f"contains a control character (U+{ord(c):04X}); remove it")
    return value


def _check_strings(value: Any) -> Any:
    """clean_text on every string inside a nested structure (for domain models)."""
    if isinstance(value, str):
        clean_text(value)
    elif isinstance(value, BaseModel):
        for item in value.__dict__.values():
            _check_strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_strings(item)
    return value


def _strip(min_length: int, max_length: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length)


Message = Annotated[str, _strip(1, 10_000), AfterValidator(clean_text)]
Note = Annotated[str, _strip(1, 1_000), AfterValidator(clean_text)]
Reference = Annotated[str, _strip(1, 128), AfterValidator(clean_text)]
Name = Annotated[str, _strip(1, 255), AfterValidator(clean_text)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
# The column is a 32-bit integer on both databases.
AmountMinor = Annotated[int, Field(ge=1, le=2_147_483_647)]
CheckedItems = Annotated[
    list[RequestedItem], Field(min_length=1, max_length=50), AfterValidator(_check_strings)
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- requests ----------------------------------------------------------------------------


class NewCaseForm(BaseModel):
    """The form fields of a case submission (the files travel beside them as `files`)."""

    partner_id: Identifier = Field(description="The collection partner that receives the case")
    reference: Reference = Field(description="The client's own reference for the claim")
    debtor_name: Name
    amount_minor: AmountMinor = Field(description="The claim in minor units (cents, øre)")
    currency: Currency = Field(description="ISO 4217 code, e.g. DKK")
    description: Message


class ReplyForm(BaseModel):
    """The client's reply in the case chat (files travel beside it as `files`)."""

    message: Message


class InfoRequestBody(_Body):
    items: CheckedItems = Field(description="One item per document, each with its reason")
    message: Message = Field(description="What is needed and why, as the client will read it")


class DecisionBody(_Body):
    outcome: DecisionOutcome
    close_code: CloseCode | None = Field(default=None, description="Required with 'close'")
    note: Note | None = None


# ---- responses ---------------------------------------------------------------------------


class FileOut(BaseModel):
    sha256: str
    filename: str = Field(description="The client's name for it, cleaned; never a path")
    content_type: str = Field(description="Decided from the content, not the name")
    size: int
    download_url: str

    @classmethod
    def of(cls, case_id: str, ref: FileRef) -> FileOut:
        return cls(**ref.model_dump(), download_url=f"/cases/{case_id}/files/{ref.sha256}")


class CaseFileOut(FileOut):
    uploaded_by: str
    created_at: datetime


class ChatMessageOut(BaseModel):
    id: int
    kind: str = Field(description="'message' (a person) or 'system' (status and task notes)")
    author_user_id: str | None
    body: str
    attachments: list[FileOut]
    created_at: datetime


class CasePage(BaseModel):
    items: list[CaseSummaryView]
    total: int = Field(description="How many cases match, on all pages")
    limit: int
    offset: int
    next_offset: int | None = Field(description="The offset of the next page; null on the last")


class CaseDetailOut(BaseModel):
    case: CaseSummaryView
    debtor_name: str
    description: str
    client: PartyView
    files: list[CaseFileOut]
    chat: list[ChatMessageOut] = Field(description="The client's comments and the whole chat")


class TaskOut(BaseModel):
    id: int
    case_id: str
    case_reference: str
    client_name: str
    title: str
    status: str = Field(description="open | replied | expired | cancelled")
    items: list[ChecklistItem] = Field(
        description="The request's checklist: each item with its status"
    )
    due_at: datetime = Field(description="The deadline as a UTC instant")
    due_local: datetime = Field(description="The same instant in the client's time zone")
    due_local_text: str = Field(description="The deadline for people, in the client's time")
    time_zone: str = Field(description="The client's time zone (IANA name)")
    created_at: datetime
    closed_at: datetime | None


class ReplyOut(BaseModel):
    reply_id: str
    replayed: bool = Field(description="True when this Idempotency-Key was seen before")
    message: ChatMessageOut


class DecisionOut(BaseModel):
    case_id: str
    status: CaseStatus
    close_code: CloseCode | None
    summary: RequestSummary


class InfoRequestOut(BaseModel):
    state: RequestState
    task: TaskOut | None


class InfoRequestRecord(BaseModel):
    request_id: str
    requested_by: str
    requested_at: datetime
    items: list[ChecklistItem]


class HistoryOut(BaseModel):
    """A case's whole history, for export: everything the audit trail holds."""

    exported_at: datetime
    case: CaseSummaryView
    debtor_name: str
    description: str
    client: PartyView
    files: list[CaseFileOut]
    chat: list[ChatMessageOut]
    info_requests: list[InfoRequestRecord]
    tasks: list[TaskOut]
    status_history: list[StatusChangeView]
    emails: list[EmailView]
