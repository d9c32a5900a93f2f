"""Every email the service sends: subject and plain-text body, in one place.

Each says what is needed, why, and by when (in the recipient's local time).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from domain.models import CloseCode, RequestedItem


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
