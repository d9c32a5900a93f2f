"""SendGridTransport with the real sendgrid library against FakeSendGrid (no mocks)."""

from __future__ import annotations

import logging
import pickle
import socket
import time
from collections.abc import Iterator

import pytest

from mail.message import OutgoingEmail
from mail.sendgrid_transport import (
    EmailRejected,
    EmailTemporarilyFailed,
    SendGridTransport,
    _retry_after,
)
from tests.fake_sendgrid import FakeResponse, FakeSendGrid

FROM_EMAIL = "cases@collections.example"
FROM_NAME = "Collections Team"


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    with FakeSendGrid() as server:
        yield server


def make_transport(
    fake: FakeSendGrid, *, api_key: str | None = None, timeout_seconds: float = 5.0
) -> SendGridTransport:
    return SendGridTransport(
        api_key or fake.api_key,
        from_email=FROM_EMAIL,
        from_name=FROM_NAME,
        host=fake.host,
        timeout_seconds=timeout_seconds,
    )


def make_email(**overrides: str) -> OutgoingEmail:
    fields = {
        "idempotency_key": "ir-42:reminder-1",
        "to_email": "debtor@example.com",
        "to_name": "Dana Debtor",
        "subject": "We need a document for case C-42",
        "text_body": "Hello Dana,\nplease upload your invoice.\n",
        "case_id": "C-42",
    }
    fields.update(overrides)
    return OutgoingEmail(**fields)


# -- 2xx --------------------------------------------------------------------------------------


def test_202_sends_the_full_request_and_returns_the_message_id(fake: FakeSendGrid) -> None:
    message_id = make_transport(fake).send(make_email())

    [request] = fake.requests
    assert request.method == "POST"
    assert request.path == "/v3/mail/send"
    assert request.header("Authorization") == f"Bearer {fake.api_key}"
    assert request.header("Content-Type") == "application/json"
    assert request.json == {
        "from": {"email": FROM_EMAIL, "name": FROM_NAME},
        "personalizations": [{"to": [{"email": "debtor@example.com", "name": "Dana Debtor"}]}],
        "subject": "We need a document for case C-42",
        "content": [{"type": "text/plain", "value": "Hello Dana,\nplease upload your invoice.\n"}],
        "custom_args": {"idempotency_key": "ir-42:reminder-1", "case_id": "C-42"},
        "categories": ["info-request"],
    }
    assert request.status == 202
    assert message_id == request.message_id
    assert message_id  # the fake always sends one on 2xx
    assert fake.sent() == [request.json]


def test_returns_the_message_id_sendgrid_chose(fake: FakeSendGrid) -> None:
    fake.queue_responses(FakeResponse(202, headers={"X-Message-Id": "Lp2YvdkETuCMk5mmbzJgcg"}))

    assert make_transport(fake).send(make_email()) == "Lp2YvdkETuCMk5mmbzJgcg"


def test_recipient_without_a_name_is_sent_as_a_bare_address(fake: FakeSendGrid) -> None:
    make_transport(fake).send(make_email(to_name=""))

    [body] = fake.sent()
    assert body["personalizations"] == [{"to": [{"email": "debtor@example.com"}]}]


# -- permanent rejections ---------------------------------------------------------------------


def test_400_raises_rejected_with_sendgrid_error_message(fake: FakeSendGrid) -> None:
    fake.queue_responses(
        FakeResponse.error(400, "The from email does not contain a valid address.", "from.email")
    )

    with pytest.raises(EmailRejected) as caught:
        make_transport(fake).send(make_email())

    assert caught.value.status == 400
    assert caught.value.detail == "The from email does not contain a valid address."
    assert "400" in str(caught.value)
    assert "The from email does not contain a valid address." in str(caught.value)
    assert fake.sent() == []


def test_400_from_the_fake_shape_check_is_rejected(fake: FakeSendGrid) -> None:
    # SendGrid refuses an empty content value; the fake does too, so this exercises a real
    # validation answer rather than a scripted one.
    with pytest.raises(EmailRejected) as caught:
        make_transport(fake).send(make_email(text_body=""))

    assert caught.value.status == 400
    assert "content value must be a string" in caught.value.detail


def test_400_with_a_non_json_body_keeps_the_raw_text(fake: FakeSendGrid) -> None:
    fake.queue_responses(FakeResponse(400, body=b"upstream said no"))

    with pytest.raises(EmailRejected) as caught:
        make_transport(fake).send(make_email())

    assert caught.value.detail == "upstream said no"


def test_401_wrong_api_key_is_rejected(fake: FakeSendGrid) -> None:
    with pytest.raises(EmailRejected) as caught:
        make_transport(fake, api_key="SG.wrong-key").send(make_email())

    assert caught.value.status == 401
    assert "authorization grant is invalid" in caught.value.detail
    assert fake.requests[0].status == 401
    assert fake.sent() == []


# -- temporary failures -----------------------------------------------------------------------


def test_429_with_retry_after_is_temporary_with_the_hint(fake: FakeSendGrid) -> None:
    fake.queue_responses(FakeResponse.error(429, "too many requests", headers={"Retry-After": "7"}))

    with pytest.raises(EmailTemporarilyFailed) as caught:
        make_transport(fake).send(make_email())

    assert caught.value.status == 429
    assert caught.value.retry_after == 7.0
    assert "too many requests" in str(caught.value)


def test_429_with_ratelimit_reset_uses_time_until_reset(fake: FakeSendGrid) -> None:
    reset_at = int(time.time()) + 30
    fake.queue_responses(FakeResponse(429, headers={"X-RateLimit-Reset": str(reset_at)}))

    with pytest.raises(EmailTemporarilyFailed) as caught:
        make_transport(fake).send(make_email())

    assert caught.value.retry_after is not None
    assert 25.0 <= caught.value.retry_after <= 30.0


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_is_temporary(fake: FakeSendGrid, status: int) -> None:
    fake.queue_responses(status)

    with pytest.raises(EmailTemporarilyFailed) as caught:
        make_transport(fake).send(make_email())

    assert caught.value.status == status
    assert caught.value.retry_after is None


def test_503_then_202_succeeds_on_the_retry(fake: FakeSendGrid) -> None:
    fake.queue_responses(503, 202)
    transport = make_transport(fake)

    with pytest.raises(EmailTemporarilyFailed):
        transport.send(make_email())
    assert transport.send(make_email())

    assert [r.status for r in fake.requests] == [503, 202]
    assert len(fake.sent()) == 1


def test_connection_refused_is_temporary() -> None:
    # Bind then close to get a port nothing listens on.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    transport = SendGridTransport(
        "SG.any",
        from_email=FROM_EMAIL,
        from_name=FROM_NAME,
        host=f"http://127.0.0.1:{port}",
        timeout_seconds=2.0,
    )

    with pytest.raises(EmailTemporarilyFailed) as caught:
        transport.send(make_email())

    assert caught.value.status is None
    assert caught.value.retry_after is None
    assert caught.value.maybe_delivered is False  # nothing left: safe to send again


def test_slow_server_hits_the_timeout_and_is_temporary(fake: FakeSendGrid) -> None:
    fake.queue_responses(FakeResponse(202, delay_seconds=5.0))
    transport = make_transport(fake, timeout_seconds=0.3)

    started = time.monotonic()
    with pytest.raises(EmailTemporarilyFailed) as caught:
        transport.send(make_email())
    elapsed = time.monotonic() - started

    assert caught.value.status is None
    assert caught.value.maybe_delivered is True  # SendGrid may have it: never send again
    assert "timed out" in str(caught.value)
    assert elapsed < 2.0  # the timeout reached urllib, not the server's 5 s


# -- hygiene ----------------------------------------------------------------------------------


def test_api_key_and_body_never_reach_the_logs(
    fake: FakeSendGrid, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # python_http_client logs headers and payload at DEBUG
    email = make_email(text_body="secret body text")
    transport = make_transport(fake)

    transport.send(email)
    fake.queue_responses(400)
    with pytest.raises(EmailRejected):
        transport.send(email)

    assert fake.api_key not in caplog.text
    assert "secret body text" not in caplog.text
    assert fake.api_key not in repr(transport)


def test_errors_survive_pickling() -> None:
    rejected = pickle.loads(pickle.dumps(EmailRejected(400, "bad from")))
    temporary = pickle.loads(pickle.dumps(EmailTemporarilyFailed("busy", 429, 7.0)))

    assert (rejected.status, rejected.detail) == (400, "bad from")
    assert (temporary.status, temporary.retry_after) == (429, 7.0)


def test_retry_after_parsing() -> None:
    now = 1_700_000_000.0
    assert _retry_after({"Retry-After": "2.5"}, now) == 2.5
    assert _retry_after({"Retry-After": "-3"}, now) == 0.0
    # An HTTP date 10 s after `now` (1_700_000_000 is 2023-11-14 22:13:20 UTC).
    assert _retry_after({"Retry-After": "Tue, 14 Nov 2023 22:13:30 GMT"}, now) == 10.0
    assert _retry_after({"X-RateLimit-Reset": str(int(now) + 12)}, now) == 12.0
    assert _retry_after({"Retry-After": "soon"}, now) is None
    assert _retry_after({}, now) is None
    assert _retry_after(None, now) is None
