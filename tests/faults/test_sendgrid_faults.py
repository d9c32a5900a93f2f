"""SendGrid misbehaves (tests.fake_sendgrid.FakeSendGrid with scripted answers) while the worker
(`python worker.py`, SENDGRID_API_KEY/SENDGRID_HOST pointing at the fake) sends a request's
emails. Deliveries are what the fake answered 2xx to, counted by the `idempotency_key` custom
arg the mailer attaches."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import select

import starter
from domain.models import CaseStatus, TaskOutcome
from store.schema import Email
from tests.fake_sendgrid import FakeResponse, FakeSendGrid
from tests.faults.harness import (
    CHAT,
    DELIVERED,
    Service,
    accept,
    case_rows,
    client_reply,
    custom_arg,
    decide_when_ready,
    opened,
    reply_path_keys,
    report,
    running_service,
    soak_only,
    start_request,
    tally,
    wait_for,
)

REPLY_ID = "portal-msg-3"


@pytest.fixture(scope="module")
async def service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Service]:
    async with running_service(tmp_path_factory.mktemp("sendgrid")) as running:
        yield running


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    with FakeSendGrid() as server:
        yield server


def _attempts(service: Service, key: str) -> tuple[str, int]:
    with service.store.session() as s:
        row = s.scalar(select(Email).where(Email.idempotency_key == key))
        assert row is not None, key
        return row.status, row.attempts


def _posts(fake: FakeSendGrid, key: str) -> Counter[int]:
    """The answers the fake gave to sends of the email with this key, by status."""
    return Counter(r.status for r in fake.requests if custom_arg(r.json, "idempotency_key") == key)


async def _request_reply_accept(service: Service, fake: FakeSendGrid) -> tuple[str, str, list[str]]:
    """Drive one request to its accept; returns (request ID, case ID, worker logs)."""
    worker = service.worker(sendgrid=fake)
    await worker.start()
    try:
        case_id = service.new_case()
        handle, request = await start_request(service.client, case_id)
        await opened(handle)
        await starter.send_client_reply(service.client, case_id, client_reply(REPLY_ID))
        key = f"{request.request_id}:reply:{REPLY_ID}:email"
        await wait_for(
            lambda: service.store.email_by_key(key) is not None,
            "the reply recorded",
            logs=worker.logs,
        )
        summary = await decide_when_ready(service.client, case_id, accept())
        assert summary == await handle.result()
        assert summary.final_status is CaseStatus.ACTIVE
        assert summary.task_outcome is TaskOutcome.REPLIED
        return request.request_id, case_id, [worker.logs()]
    finally:
        worker.stop()


async def test_sendgrid_500_then_202_sends_one_email(service: Service, fake: FakeSendGrid) -> None:
    """The client's email meets an outage (500), is retried, and goes out once (202)."""
    fake.queue_responses(500, 202)
    r, case_id, logs = await _request_reply_accept(service, fake)
    key = f"{r}:open:email"
    posts = _posts(fake, key)
    report(
        tally(
            "SendGrid 500 then 202",
            reply_path_keys(r, case_id, [REPLY_ID]),
            case_rows(service.store, case_id, fake),
            **{"sends of the client email": f"{sum(posts.values())} (500, 202)"},
        ),
        *logs,
    )
    assert posts == Counter({500: 1, 202: 1}), posts
    assert _attempts(service, key) == ("sent", 2)


async def test_sendgrid_400_tells_the_partner_and_goes_on(
    service: Service, fake: FakeSendGrid
) -> None:
    """The client's email is refused for good (400): not retried, the partner is told in the
    chat ("An email could not be delivered"), and the request goes on to its decision."""
    fake.queue_responses(
        FakeResponse.error(
            400, "Does not contain a valid address.", "personalizations.0.to.0.email"
        )
    )
    r, case_id, logs = await _request_reply_accept(service, fake)
    key = f"{r}:open:email"
    notes = [m.body for m in service.store.chat(case_id) if m.body.startswith("An email could not")]
    expected = reply_path_keys(r, case_id, [REPLY_ID])
    expected[CHAT] |= {f"{key}:failed"}
    expected[DELIVERED] -= {key}
    report(
        tally(
            "SendGrid 400 on the client email",
            expected,
            case_rows(service.store, case_id, fake),
            rejected=1,
            **{"partner told": len(notes)},
        ),
        *logs,
    )
    assert _posts(fake, key) == Counter({400: 1})
    assert _attempts(service, key) == ("rejected", 1)
    assert len(notes) == 1 and "Does not contain a valid address." in notes[0], notes


@soak_only
async def test_soak_sendgrid_429_and_5xx_storm(service: Service, fake: FakeSendGrid) -> None:
    """A long run of refusals on every email (429 with Retry-After, 500, 502, 503): each email
    still goes out once."""
    storm: list[int | FakeResponse] = []
    for _ in range(3):
        storm += [FakeResponse(429, headers={"Retry-After": "1"}), 500, 502, 503, 202]
    fake.queue_responses(*storm)
    r, case_id, logs = await _request_reply_accept(service, fake)
    report(
        tally(
            "SendGrid 429/5xx storm",
            reply_path_keys(r, case_id, [REPLY_ID]),
            case_rows(service.store, case_id, fake),
            **{"sends": len(fake.requests)},
        ),
        *logs,
    )


async def test_sendgrid_slow_202_is_not_sent_twice(service: Service, fake: FakeSendGrid) -> None:
    """SendGrid takes the client's email but answers after the transport timed out (10 s): the
    email may have gone out, so it is not sent again but marked `unconfirmed` for an operator,
    and the request goes on.

    Regression test of a bug this suite found: the timeout was taken for a refusal
    (`retrying`), the retry sent the email again, and the client got it twice."""
    fake.queue_responses(FakeResponse(202, delay_seconds=12))
    r, case_id, logs = await _request_reply_accept(service, fake)
    key = f"{r}:open:email"
    posts = _posts(fake, key)
    status, attempts = _attempts(service, key)
    report(
        tally(
            "SendGrid answers 202 after the client timed out",
            reply_path_keys(r, case_id, [REPLY_ID]),
            case_rows(service.store, case_id, fake),
            **{"sends of the client email": sum(posts.values()), "email status": status},
        ),
        *logs,
    )
    assert (status, attempts) == ("unconfirmed", 1)
