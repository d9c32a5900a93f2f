"""Delivers an email at most once per idempotency key, through SendGrid or into the outbox.

The email row is written before anything leaves. With the outbox (no SENDGRID_API_KEY) the row
is the delivery: one transaction, exactly once. With SendGrid the row moves
`sending -> sent | retrying | rejected | unconfirmed`; an attempt that finds `retrying` sends
again (SendGrid refused the earlier try, or the connection never opened, so nothing went out),
while an attempt that got no answer in time, or one that finds `sending` (an earlier attempt
died mid-call), does not send again (never twice): it marks the email `unconfirmed` and says so
in the log and the result, for an operator to check in SendGrid's activity feed by the
idempotency key carried in `custom_args`.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from pydantic import BaseModel, ConfigDict
from temporalio.exceptions import ApplicationError

from mail.message import OutgoingEmail
from mail.sendgrid_transport import EmailRejected, EmailTemporarilyFailed, SendGridTransport
from store.cases import CaseStore

log = logging.getLogger(__name__)


class EmailOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)
    status: str  # outbox | sent | unconfirmed
    transport: str


class Mailer:
    def __init__(self, store: CaseStore, sendgrid: SendGridTransport | None) -> None:
        self.store = store
        self.sendgrid = sendgrid

    @property
    def transport_name(self) -> str:
        return "sendgrid" if self.sendgrid else "outbox"

    def deliver(self, email: OutgoingEmail) -> EmailOutcome:
        row, created = self.store.claim_email(
            idempotency_key=email.idempotency_key,
            case_id=email.case_id,
            to_email=email.to_email,
            to_name=email.to_name,
            subject=email.subject,
            body=email.text_body,
            transport=self.transport_name,
            status="outbox" if self.sendgrid is None else "sending",
        )
        if not created:
            if row.status in ("outbox", "sent", "unconfirmed"):
                return EmailOutcome(status=row.status, transport=row.transport)
            if row.status == "rejected":
                raise _rejected(email, row.error or "rejected earlier")
            if row.status == "sending":
                log.warning(
                    "email %s: an earlier attempt died mid-send; not sending again",
                    email.idempotency_key,
                )
                row = self.store.update_email(
                    email.idempotency_key,
                    status="unconfirmed",
                    error="an earlier attempt died while sending",
                    only_if_status="sending",
                )
                return EmailOutcome(status=row.status, transport=row.transport)
            # retrying: SendGrid refused the earlier attempt, so nothing went out yet
            self.store.update_email(email.idempotency_key, status="sending", new_attempt=True)
        if self.sendgrid is None:
            return EmailOutcome(status="outbox", transport="outbox")
        try:
            message_id = self.sendgrid.send(email)
        except EmailTemporarilyFailed as e:
            if e.maybe_delivered:
                # SendGrid may have taken it (no answer in time): never send twice.
                log.warning(
                    "email %s: no answer from SendGrid (%s); not sending again",
                    email.idempotency_key,
                    e,
                )
                row = self.store.update_email(
                    email.idempotency_key, status="unconfirmed", error=str(e)
                )
                return EmailOutcome(status=row.status, transport=row.transport)
            self.store.update_email(email.idempotency_key, status="retrying", error=str(e))
            raise ApplicationError(
                f"SendGrid could not take the email now ({e}); retrying",
                type="EmailTemporarilyFailed",
                next_retry_delay=timedelta(seconds=e.retry_after) if e.retry_after else None,
            ) from e
        except EmailRejected as e:
            self.store.update_email(email.idempotency_key, status="rejected", error=str(e))
            raise _rejected(email, str(e)) from e
        self.store.update_email(
            email.idempotency_key, status="sent", provider_message_id=message_id
        )
        return EmailOutcome(status="sent", transport="sendgrid")


def _rejected(email: OutgoingEmail, detail: str) -> ApplicationError:
    return ApplicationError(
        f"SendGrid rejected the email for case {email.case_id}: {detail}",
        type="EmailRejected",
        non_retryable=True,
    )
