"""Every email the service sends: subject and plain-text body, in one place.

Each says what is needed, why, and by when (in the recipient's local time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from domain.models import ChecklistItem, CloseCode, ItemStatus, RequestedItem


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    body: str


def local_time_text(instant: datetime, time_zone: str) -> str:
    """'Tuesday 8 December 2026, 23:59 (Europe/Copenhagen)' for people."""
    local = instant.astimezone(ZoneInfo(time_zone))
    return f"{local:%A} {local.day} {local:%B %Y, %H:%M} ({time_zone})"


def checklist_text(items: list[RequestedItem]) -> str:
    return "\n".join(
        f"{n}. {item.label()}\n   Why: {item.reason}" for n, item in enumerate(items, start=1)
    )


def info_requested(
    *,
    case_reference: str,
    client_name: str,
    partner_name: str,
    items: list[RequestedItem],
    message: str,
    due_at: datetime,
    time_zone: str,
) -> RenderedEmail:
    due = local_time_text(due_at, time_zone)
    return RenderedEmail(
        subject=f"Information needed for case {case_reference} by {due}",
        body=(
            f"Dear {client_name},\n\n"
            f"{partner_name} needs more information before collection can start on case "
            f"{case_reference}. The case is now in the status More Info Required.\n\n"
            f"What is needed, and why:\n{checklist_text(items)}\n\n"
            f"Message from {partner_name}:\n{message}\n\n"
            f"Please reply in the case chat by {due}. Your task closes by itself when you "
            f"reply.\n"
        ),
    )


def client_replied(
    *,
    case_reference: str,
    partner_name: str,
    client_name: str,
    replied_at: datetime,
    time_zone: str,
) -> RenderedEmail:
    return RenderedEmail(
        subject=f"{client_name} replied on case {case_reference}",
        body=(
            f"Dear {partner_name},\n\n"
            f"{client_name} replied in the chat of case {case_reference} on "
            f"{local_time_text(replied_at, time_zone)}. Their task is closed.\n\n"
            f"Review the reply, then accept the case (Active) or close it with a close code.\n"
        ),
    )


def request_expired(
    *,
    case_reference: str,
    partner_name: str,
    client_name: str,
    due_at: datetime,
    time_zone: str,
) -> RenderedEmail:
    return RenderedEmail(
        subject=f"No reply from {client_name} on case {case_reference}",
        body=(
            f"Dear {partner_name},\n\n"
            f"{client_name} did not reply to your request for information on case "
            f"{case_reference} by {local_time_text(due_at, time_zone)}. Their task has expired.\n\n"
            f"You can accept the case (Active) or close it, for example with the close code "
            f"{CloseCode.UNRESPONSIVE_CLIENT.value}.\n"
        ),
    )


def case_decided(
    *,
    case_reference: str,
    client_name: str,
    partner_name: str,
    close_code: CloseCode | None,
    note: str | None,
) -> RenderedEmail:
    if close_code is None:
        outcome = "accepted the case; it is now Active and collection can start"
        subject = f"Case {case_reference} accepted"
    else:
        outcome = f"closed the case (close code: {close_code.value})"
        subject = f"Case {case_reference} closed"
    note_text = f"\nNote from {partner_name}:\n{note}\n" if note else ""
    return RenderedEmail(
        subject=subject,
        body=f"Dear {client_name},\n\n{partner_name} {outcome}.\n{note_text}",
    )


def outstanding_text(items: list[ChecklistItem]) -> str:
    """What the client still has to send: items not yet accepted, with why, and for a rejected
    item what was wrong with what they sent."""
    lines = []
    for n, item in enumerate((i for i in items if i.status is not ItemStatus.ACCEPTED), start=1):
        lines.append(f"{n}. {item.label()}\n   Why: {item.reason}")
        if item.status is ItemStatus.REJECTED and item.rejection_reason:
            lines.append(f"   Not accepted yet: {item.rejection_reason}")
        elif item.status is ItemStatus.RECEIVED:
            lines.append("   Received; under review")
    return "\n".join(lines) or "(nothing outstanding)"


def follow_up(
    *,
    case_reference: str,
    client_name: str,
    partner_name: str,
    items: list[ChecklistItem],
    message: str,
    due_at: datetime,
    time_zone: str,
) -> RenderedEmail:
    due = local_time_text(due_at, time_zone)
    return RenderedEmail(
        subject=f"More information still needed for case {case_reference} by {due}",
        body=(
            f"Dear {client_name},\n\n"
            f"Thank you for your reply. {partner_name} still needs the following before "
            f"collection can start on case {case_reference}:\n\n{outstanding_text(items)}\n\n"
            f"Message from {partner_name}:\n{message}\n\n"
            f"Please reply in the case chat by {due}.\n"
        ),
    )


def reminder(
    *,
    case_reference: str,
    client_name: str,
    partner_name: str,
    items: list[ChecklistItem],
    due_at: datetime,
    time_zone: str,
    number: int,
) -> RenderedEmail:
    due = local_time_text(due_at, time_zone)
    return RenderedEmail(
        subject=f"Reminder {number}: information for case {case_reference} due {due}",
        body=(
            f"Dear {client_name},\n\n"
            f"This is a reminder that {partner_name} is waiting for information on case "
            f"{case_reference}, due {due}:\n\n{outstanding_text(items)}\n\n"
            f"Please reply in the case chat.\n"
        ),
    )


def partner_messages(
    *, case_reference: str, client_name: str, partner_name: str, messages: list[str]
) -> RenderedEmail:
    count = "a new message" if len(messages) == 1 else f"{len(messages)} new messages"
    joined = "\n\n---\n\n".join(messages)
    return RenderedEmail(
        subject=f"{partner_name}: {count} on case {case_reference}",
        body=(
            f"Dear {client_name},\n\n{partner_name} wrote in the chat of case "
            f"{case_reference}:\n\n{joined}\n\nReply in the case chat.\n"
        ),
    )


def request_withdrawn(
    *, case_reference: str, client_name: str, partner_name: str, reason: str | None
) -> RenderedEmail:
    why = f"\nReason: {reason}\n" if reason else ""
    return RenderedEmail(
        subject=f"Request for information on case {case_reference} withdrawn",
        body=(
            f"Dear {client_name},\n\n{partner_name} withdrew its request for information on "
            f"case {case_reference}; your task is cancelled and nothing more is needed for it "
            f"now.\n{why}"
        ),
    )
