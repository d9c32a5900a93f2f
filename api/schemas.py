"""Request and response bodies of the HTTP API.

Text from callers is checked for characters no database or person wants (NUL, other control
characters, lone surrogates) here, at the edge: PostgreSQL refuses NUL in text, and a string
that cannot be stored must be a 422, never a failed write deep in a workflow step.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)

from domain.models import (
    CaseStatus,
    ChecklistItem,
    CloseCode,
    DecisionOutcome,
    FileRef,
    Identifier,
    ItemReview,
    RequestedItem,
    RequestState,
    RequestSummary,
)
from store.response_metrics import PartyResponseMetrics
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


def _plausible_instant(value: datetime) -> datetime:
    """A deadline must be an instant every system can hold in UTC (not year 1 or 9999)."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError as e:
        raise ValueError("the instant is out of range") from e
    if not 2000 <= utc.year <= 9000:
        raise ValueError("the instant is out of range (years 2000 to 9000)")
    return value


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


class MessageBody(_Body):
    """The partner's message in the case chat (as JSON; as multipart, files go beside it)."""

    message: Message = Field(
        description="Posted in the chat at once; emailed to the client after the quiet "
        "period, bundled with the partner's other messages"
    )


class ReviewBody(_Body):
    reviews: Annotated[
        list[ItemReview], Field(min_length=1, max_length=100), AfterValidator(_check_strings)
    ] = Field(
        description="One verdict per item: `accepted`, and for a rejection the `reason` the "
        "client reads"
    )


class FollowUpBody(_Body):
    message: Message = Field(description="What is still needed, as the client will read it")
    new_items: Annotated[
        list[RequestedItem], Field(max_length=50), AfterValidator(_check_strings)
    ] = Field(
        default=[],
        description="Items to add; every item not accepted yet is asked for again anyway",
    )


class DeadlineBody(_Body):
    due_at: Annotated[AwareDatetime, AfterValidator(_plausible_instant)] = Field(
        description="The new deadline, an RFC 3339 instant with its offset "
        "(2026-12-10T23:59:59+01:00): later than the current one, not in the past, and at "
        "most `task.latest_due_at`"
    )


class WithdrawalBody(_Body):
    reason: Note | None = Field(default=None, description="Told to the client")


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
    task: TaskOut | None = Field(description="The client's task of the current round")


class MessageOut(BaseModel):
    case_id: str
    request_id: str = Field(description="The open request the message was sent in")
    message_id: str = Field(description="The Idempotency-Key: a repeat changes nothing")
    status: Literal["accepted"] = Field(
        description="Handed to the workflow: it appears in the chat a moment later"
    )
    files: list[FileOut] = Field(description="The attachments as stored")


class WithdrawalOut(BaseModel):
    case_id: str
    status: CaseStatus = Field(description="Pending Verification again")
    summary: RequestSummary


class ResponseMetricsOut(BaseModel):
    party: PartyResponseMetrics = Field(
        description="The caller's party: as the partner that received the cases, or as the "
        "client that submitted them"
    )
    clients: list[PartyResponseMetrics] = Field(
        description="A partner's view of its clients, counting only the cases it received; "
        "empty for a client"
    )


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
