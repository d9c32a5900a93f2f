"""The shapes that cross the Temporal boundary: workflow input, signal, update, query and result.

Every payload is one pydantic model so fields can be added later without breaking callers.
JSON Schemas for other languages are generated from these (`python -m domain.schemas`).
Only references to files travel here; the bytes stay in the file store.
"""

from __future__ import annotations

from datetime import datetime, time
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)


class CaseStatus(StrEnum):
    PENDING_VERIFICATION = "pending_verification"
    MORE_INFO_REQUIRED = "more_info_required"
    ACTIVE = "active"
    PAUSED = "paused"
    CLOSED = "closed"


class CloseCode(StrEnum):
    INVALID_CASE_DATA = "invalid_case_data"
    CASE_NEVER_STARTED = "case_never_started"
    UNRESPONSIVE_CLIENT = "unresponsive_client"
    WITHDRAWN_BY_CLIENT = "withdrawn_by_client"
    PAID = "paid"
    PARTIALLY_PAID = "partially_paid"


class ItemKind(StrEnum):
    INVOICE_OR_CONTRACT = "invoice_or_contract"
    PROOF_OF_DELIVERY = "proof_of_delivery"
    PAYMENT_REMINDERS = "payment_reminders"
    BANK_STATEMENTS = "bank_statements"
    DISPUTE_EVIDENCE = "dispute_evidence"
    OTHER = "other"


ITEM_KIND_LABELS: dict[ItemKind, str] = {
    ItemKind.INVOICE_OR_CONTRACT: "Original invoice or signed contract",
    ItemKind.PROOF_OF_DELIVERY: "Proof of delivery or of the service being completed",
    ItemKind.PAYMENT_REMINDERS: "Payment reminders or other correspondence with the debtor",
    ItemKind.BANK_STATEMENTS: "Bank statements showing the disbursement",
    ItemKind.DISPUTE_EVIDENCE: "Evidence that answers the debtor's dispute",
    ItemKind.OTHER: "Other information",
}


class Phase(StrEnum):
    """Where an info request is; also the InfoRequestPhase search attribute."""

    OPENING = "opening"
    WAITING_FOR_CLIENT = "waiting_for_client"
    WAITING_FOR_DECISION = "waiting_for_decision"
    DONE = "done"


class TaskOutcome(StrEnum):
    OPEN = "open"
    REPLIED = "replied"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class DecisionOutcome(StrEnum):
    ACCEPT = "accept"
    CLOSE = "close"


class ItemStatus(StrEnum):
    """Where one checklist item is: asked for, sent by the client, or reviewed by the partner."""

    REQUESTED = "requested"
    RECEIVED = "received"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class RequestOutcome(StrEnum):
    ACCEPTED = "accepted"
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"


Identifier = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$"
    ),
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1_000)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileRef(_Model):
    """A file kept in the content-addressed file store; only this reference travels."""

    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    filename: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    content_type: Annotated[str, StringConstraints(min_length=1, max_length=127)]
    size: Annotated[int, Field(ge=0)]


class RequestedItem(_Model):
    kind: ItemKind
    reason: Annotated[
        ShortText, Field(description="Why the partner needs it; helps the client prioritise")
    ]
    description: ShortText | None = Field(
        default=None, description="What exactly is needed; required when kind is 'other'"
    )

    @model_validator(mode="after")
    def _other_needs_description(self) -> RequestedItem:
        if self.kind is ItemKind.OTHER and not self.description:
            raise ValueError("an item of kind 'other' needs a description of what is needed")
        return self

    def label(self) -> str:
        return (
            self.description
            if self.kind is ItemKind.OTHER and self.description
            else (ITEM_KIND_LABELS[self.kind])
        )


class RequestPolicy(_Model):
    """Timing rules of a request: configuration (see config.Settings), carried in the input so
    a run keeps the rules it started with."""

    business_days_to_reply: Annotated[int, Field(ge=1, le=20)] = 2
    reminder_local_time: time = Field(
        default=time(9, 0), description="When reminders go out, in the client's time zone"
    )
    first_reminder_business_days_before_due: Annotated[int, Field(ge=0, le=10)] = Field(
        default=0, description="0: the morning of the due day"
    )
    reminder_every_business_days: Annotated[int, Field(ge=1, le=20)] = 2
    max_reminders: Annotated[int, Field(ge=0, le=10)] = 3
    bundle_quiet_seconds: Annotated[int, Field(ge=0, le=86_400)] = 600
    max_deadline_business_days: Annotated[int, Field(ge=1, le=60)] = Field(
        default=10,
        description="An extended deadline may be at most this many business days "
        "after the day the round was requested",
    )
    rounds_per_run: Annotated[int, Field(ge=1, le=100)] = Field(
        default=10, description="Follow-up rounds in one run before it continues as new"
    )


class ChecklistItem(_Model):
    item_id: str
    kind: ItemKind
    reason: str
    description: str | None = None
    status: ItemStatus = ItemStatus.REQUESTED
    rejection_reason: str | None = None
    round: int = 1

    def label(self) -> str:
        return (
            self.description
            if self.kind is ItemKind.OTHER and self.description
            else (ITEM_KIND_LABELS[self.kind])
        )


class InfoRequestInput(_Model):
    """Input of InfoRequestWorkflow: one request for missing information on one case."""

    request_id: Identifier = Field(description="Unique per request; keys every idempotent write")
    case_id: Identifier
    partner_user_id: Identifier = Field(description="The partner user who asks")
    items: Annotated[list[RequestedItem], Field(min_length=1, max_length=50)]
    message: Text
    attachments: Annotated[list[FileRef], Field(max_length=20)] = []
    policy: RequestPolicy = RequestPolicy()
    carried: CarriedState | None = Field(
        default=None, description="Internal: the state a continued run takes over; leave empty"
    )

    @field_validator("items", mode="before")
    @classmethod
    def _checklist_not_empty(cls, value: Any) -> Any:
        if isinstance(value, list) and not value:
            raise ValueError("the checklist is empty: name at least one item the client must send")
        return value


class ClientReply(_Model):
    """Signal `client_reply`: the client answered in the case chat."""

    reply_id: Identifier = Field(
        description="Idempotency key: a reply ID seen before changes nothing"
    )
    client_user_id: Identifier | None = None
    message: Text
    attachments: Annotated[list[FileRef], Field(max_length=20)] = []
    covers: Annotated[list[Identifier], Field(max_length=100)] = Field(
        default=[], description="Checklist item IDs this reply answers; empty: every open item"
    )


class PartnerMessage(_Model):
    """Signal `partner_message`: the partner writes in the case chat while the request runs.
    Messages close together reach the client as one email (the quiet period)."""

    message_id: Identifier = Field(description="Idempotency key: a repeated ID changes nothing")
    author_user_id: Identifier
    message: Text
    attachments: Annotated[list[FileRef], Field(max_length=20)] = []


class ItemReview(_Model):
    item_id: Identifier
    accepted: bool
    reason: ShortText | None = Field(default=None, description="Required when rejected")

    @model_validator(mode="after")
    def _rejection_needs_reason(self) -> ItemReview:
        if not self.accepted and not self.reason:
            raise ValueError(f"rejecting item {self.item_id} needs a reason the client can act on")
        return self


class ReviewItems(_Model):
    """Update `review_items`: the partner accepts or rejects checklist items."""

    reviewed_by: Identifier
    reviews: Annotated[list[ItemReview], Field(min_length=1, max_length=100)]


class FollowUp(_Model):
    """Update `follow_up`: another round within the same request, with a new task, for what is
    still missing (every item not accepted) plus any new items."""

    requested_by: Identifier
    message: Text
    new_items: Annotated[list[RequestedItem], Field(max_length=50)] = []


class ExtendDeadline(_Model):
    """Update `extend_deadline`: move the open task's deadline later."""

    requested_by: Identifier
    new_due_at: datetime = Field(description="A tz-aware instant")

    @field_validator("new_due_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("new_due_at needs a time zone (e.g. 2026-12-10T23:59:59+01:00)")
        return value


class Withdrawal(_Model):
    """Update `withdraw`: the partner takes the request back; the case returns to Pending
    Verification, the task is cancelled and the client told."""

    requested_by: Identifier
    reason: ShortText | None = None


class Decision(_Model):
    """Update `decide`: the partner accepts the case (Active) or closes it with a close code."""

    outcome: DecisionOutcome
    close_code: CloseCode | None = None
    decided_by: Identifier
    note: ShortText | None = None

    @field_validator("close_code", mode="before")
    @classmethod
    def _known_close_code(cls, value: Any) -> Any:
        if value is not None and value not in {c.value for c in CloseCode}:
            known = ", ".join(c.value for c in CloseCode)
            raise ValueError(f"unknown close code {value!r}; use one of: {known}")
        return value

    @model_validator(mode="after")
    def _close_needs_code(self) -> Decision:
        if self.outcome is DecisionOutcome.CLOSE and self.close_code is None:
            known = ", ".join(c.value for c in CloseCode)
            raise ValueError(f"a close needs a close code; use one of: {known}")
        if self.outcome is DecisionOutcome.ACCEPT and self.close_code is not None:
            raise ValueError("an accept takes no close code")
        return self


class TaskView(_Model):
    task_id: str
    due_at: datetime = Field(description="UTC instant the client's task is due")
    due_local: str = Field(description="The deadline in the client's local time, for people")
    outcome: TaskOutcome
    round: int = 1
    reminders_at: list[datetime] = Field(
        default=[], description="When the client is reminded, unless they reply first"
    )
    latest_due_at: datetime | None = Field(
        default=None, description="The latest the deadline may be extended to"
    )


class ReplyView(_Model):
    reply_id: str
    received_at: datetime
    attachments: int


class RequestState(_Model):
    """Query `state`: what the request is doing now."""

    request_id: str
    case_id: str
    phase: Phase
    case_status: CaseStatus
    task: TaskView | None = None
    replies: list[ReplyView] = []
    decision: Decision | None = None
    round: int = 1
    items: list[ChecklistItem] = []
    reminders_sent: int = 0
    withdrawn: bool = False


class RequestSummary(_Model):
    """Result of InfoRequestWorkflow."""

    request_id: str
    case_id: str
    final_status: CaseStatus
    close_code: CloseCode | None
    task_outcome: TaskOutcome
    replies: int
    requested_at: datetime
    decided_at: datetime
    outcome: RequestOutcome = RequestOutcome.ACCEPTED
    rounds: int = 1
    items: list[ChecklistItem] = []


class CarriedState(_Model):
    """What a run hands to the run it continues as (history stays bounded over many rounds)."""

    requested_at: datetime
    round: int
    phase: Phase
    case_status: CaseStatus
    task: TaskView | None
    items: list[ChecklistItem]
    seen_reply_ids: list[str]
    seen_message_ids: list[str]
    replies: list[ReplyView]
    reminders_sent: int
    round_started_at: datetime | None
    last_reminder_at: datetime | None
    reply_in_round: bool


InfoRequestInput.model_rebuild()
