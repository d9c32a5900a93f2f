"""The provider-neutral shape of one email we want delivered."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class OutgoingEmail(BaseModel):
    """One plain-text email to one recipient.

    `idempotency_key` and `case_id` travel with the message to SendGrid as custom args, so an
    event coming back from SendGrid (delivered, bounced, ...) can be traced to the request.
    """

    # Frozen: the same value may be retried several times and must not change between attempts.
    model_config = ConfigDict(extra="forbid", frozen=True)

    idempotency_key: str
    to_email: str
    to_name: str
    subject: str
    text_body: str
    case_id: str
