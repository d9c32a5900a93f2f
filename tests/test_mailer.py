"""Mailer + SendGridTransport (the real sendgrid library) against FakeSendGrid on 127.0.0.1,
with the real case store on SQLite and PostgreSQL: an email goes out at most once per key."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from temporalio.exceptions import ApplicationError

from mail.mailer import EmailOutcome, Mailer
from mail.message import OutgoingEmail
from mail.sendgrid_transport import SendGridTransport
from store.cases import CaseStore
from store.schema import Email
from tests.conftest import CLIENT_DK, add_case
from tests.fake_sendgrid import FakeResponse, FakeSendGrid

SENT = EmailOutcome(status="sent", transport="sendgrid")


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    with FakeSendGrid() as server:
        yield server


@pytest.fixture
def mailer(store: CaseStore, fake: FakeSendGrid) -> Mailer:
    transport = SendGridTransport(
        fake.api_key,
        from_email="cases@test-collect.example",
        from_name="Test Collect",
        host=fake.host,
        timeout_seconds=5.0,
    )
    return Mailer(store, transport)


@pytest.fixture
def email(store: CaseStore) -> OutgoingEmail:
    case_id = add_case(store, CLIENT_DK)
    return OutgoingEmail(
        idempotency_key=f"req-{case_id}:email-requested",
        to_email=CLIENT_DK.email,
        to_name=CLIENT_DK.name,
        subject=f"Information needed for case {case_id}",
        text_body="Please send the signed contract.\n",
        case_id=case_id,
    )


def row(store: CaseStore, key: str) -> Email:
    """The email's row as stored, including the attempt counter the views leave out."""
    with store.session() as s:
        found = s.scalar(select(Email).where(Email.idempotency_key == key))
        assert found is not None, f"no email row for {key}"
        return found


def deliver_fails(mailer: Mailer, email: OutgoingEmail) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        mailer.deliver(email)
    return caught.value


def test_202_marks_the_email_sent_with_sendgrids_message_id(
    store: CaseStore, fake: FakeSendGrid, mailer: Mailer, email: OutgoingEmail
) -> None:
    assert mailer.deliver(email) == SENT

    [request] = fake.requests
    assert request.status == 202 and request.message_id
    body = request.json
    assert body["custom_args"]["idempotency_key"] == email.idempotency_key
    assert body["custom_args"]["case_id"] == email.case_id
    assert body["personalizations"][0]["to"] == [{"email": CLIENT_DK.email, "name": CLIENT_DK.name}]
    assert body["subject"] == email.subject
    [stored] = store.emails(email.case_id)
    assert stored.status == "sent" and stored.transport == "sendgrid"
    assert stored.provider_message_id == request.message_id
    assert stored.sent_at is not None and stored.error is None
    assert row(store, email.idempotency_key).attempts == 1


def test_500_then_202_sends_exactly_one_email(
    store: CaseStore, fake: FakeSendGrid, mailer: Mailer, email: OutgoingEmail
) -> None:
    fake.queue_responses(500, 202)

    outage = deliver_fails(mailer, email)
    assert outage.type == "EmailTemporarilyFailed" and not outage.non_retryable
    retrying = row(store, email.idempotency_key)
    assert retrying.status == "retrying" and "HTTP 500" in (retrying.error or "")

    assert mailer.deliver(email) == SENT  # Temporal's retry of the same activity

    assert [r.status for r in fake.requests] == [500, 202]
    assert [r.json["custom_args"]["idempotency_key"] for r in fake.requests] == [
        email.idempotency_key
    ] * 2
    assert len(fake.sent()) == 1
    sent = row(store, email.idempotency_key)
    assert sent.status == "sent" and sent.attempts == 2 and sent.error is None
    assert sent.provider_message_id == fake.requests[1].message_id
    assert len(store.emails(email.case_id)) == 1


def test_429_retries_after_sendgrids_hint(
    store: CaseStore, fake: FakeSendGrid, mailer: Mailer, email: OutgoingEmail
) -> None:
    fake.queue_responses(FakeResponse.error(429, "too many requests", headers={"Retry-After": "7"}))

    throttled = deliver_fails(mailer, email)

    assert throttled.type == "EmailTemporarilyFailed" and not throttled.non_retryable
    assert throttled.next_retry_delay == timedelta(seconds=7)
    assert row(store, email.idempotency_key).status == "retrying"
    assert fake.sent() == []


def test_400_is_rejected_for_good_and_never_resent(
    store: CaseStore, fake: FakeSendGrid, mailer: Mailer, email: OutgoingEmail
) -> None:
    fake.queue_responses(
        FakeResponse.error(400, "The to email does not contain a valid address.", "to.email")
    )

    rejected = deliver_fails(mailer, email)

    assert rejected.type == "EmailRejected" and rejected.non_retryable
    assert email.case_id in rejected.message
    assert "The to email does not contain a valid address." in rejected.message
    [stored] = store.emails(email.case_id)
    assert stored.status == "rejected" and stored.provider_message_id is None
    assert "The to email does not contain a valid address." in (stored.error or "")

    again = deliver_fails(mailer, email)
    assert again.type == "EmailRejected" and again.non_retryable
    assert len(fake.requests) == 1
    assert row(store, email.idempotency_key).status == "rejected"


def test_a_send_cut_off_mid_call_is_never_repeated(
    store: CaseStore, fake: FakeSendGrid, mailer: Mailer, email: OutgoingEmail
) -> None:
    # What an attempt that crashed after claiming the email (maybe mid-call) leaves behind.
    store.claim_email(
        idempotency_key=email.idempotency_key,
        case_id=email.case_id,
        to_email=email.to_email,
        to_name=email.to_name,
        subject=email.subject,
        body=email.text_body,
        transport="sendgrid",
        status="sending",
    )

    outcome = mailer.deliver(email)

    assert outcome == EmailOutcome(status="unconfirmed", transport="sendgrid")
    assert fake.requests == []
    [stored] = store.emails(email.case_id)
    assert stored.status == "unconfirmed" and stored.error
    assert mailer.deliver(email).status == "unconfirmed"
    assert fake.requests == []


def test_deliver_after_sent_sends_nothing(
    store: CaseStore, fake: FakeSendGrid, mailer: Mailer, email: OutgoingEmail
) -> None:
    assert mailer.deliver(email) == SENT
    first = store.emails(email.case_id)

    assert mailer.deliver(email) == SENT
    assert mailer.deliver(email) == SENT

    assert len(fake.requests) == 1
    assert store.emails(email.case_id) == first
    assert row(store, email.idempotency_key).attempts == 1
