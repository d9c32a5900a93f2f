"""The same client reply delivered many times at once: 50 `client_reply` signals with one
reply ID (`starter.send_client_reply`, as the portal retries), racing 50 writes of the reply's
chat message by the portal itself (`CaseStore.post_message` with `domain.ids.reply_message_key`,
what the HTTP API does before it signals), then 50 late duplicates once the reply was recorded.
One chat message, one task closed, one "client replied" email."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

import starter
from domain.ids import reply_message_key
from domain.models import CaseStatus, TaskOutcome
from tests.conftest import CLIENT_USER
from tests.faults.harness import (
    Service,
    accept,
    case_rows,
    client_reply,
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

REPLY_ID = "portal-msg-50"


@pytest.fixture(scope="module")
async def service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Service]:
    async with running_service(tmp_path_factory.mktemp("duplicates")) as running:
        yield running


def _portal_write(service: Service, case_id: str) -> int:
    reply = client_reply(REPLY_ID)
    return service.store.post_message(
        case_id=case_id,
        kind="message",
        author_user_id=CLIENT_USER,
        body=reply.message,
        idempotency_key=reply_message_key(case_id, REPLY_ID),
    )


async def _duplicates(service: Service, copies: int, *, kill_worker: bool = False) -> None:
    worker = service.worker()
    await worker.start()
    try:
        case_id = service.new_case()
        handle, request = await start_request(service.client, case_id)
        r = request.request_id
        await opened(handle)

        signals = [
            starter.send_client_reply(service.client, case_id, client_reply(REPLY_ID))
            for _ in range(copies)
        ]
        writes = [asyncio.to_thread(_portal_write, service, case_id) for _ in range(copies)]
        results = await asyncio.gather(*signals, *writes)
        message_ids = set(results[copies:])
        assert len(message_ids) == 1, "every portal write found the first one"
        if kill_worker:
            worker.kill()
            await worker.start()

        key = f"{r}:reply:{REPLY_ID}:email"
        await wait_for(
            lambda: service.store.email_by_key(key) is not None,
            "the reply recorded",
            logs=worker.logs,
        )
        await asyncio.gather(
            *(
                starter.send_client_reply(service.client, case_id, client_reply(REPLY_ID))
                for _ in range(copies)
            )
        )
        state = await starter.get_state(service.client, case_id)
        summary = await decide_when_ready(service.client, case_id, accept())
        report(
            tally(
                f"the same reply {copies} times at once + {copies} portal writes + {copies} late"
                + (" + worker killed" if kill_worker else ""),
                reply_path_keys(r, case_id, [REPLY_ID]),
                case_rows(service.store, case_id),
                **{"replies recorded": f"{summary.replies}/1"},
            ),
            worker.logs(),
        )
        assert [reply.reply_id for reply in state.replies] == [REPLY_ID]
        assert summary.final_status is CaseStatus.ACTIVE
        assert summary.task_outcome is TaskOutcome.REPLIED and summary.replies == 1
    finally:
        worker.stop()


async def test_the_same_reply_fifty_times_at_once(service: Service) -> None:
    await _duplicates(service, 50)


@soak_only
async def test_soak_the_same_reply_five_hundred_times_with_a_kill(service: Service) -> None:
    await _duplicates(service, 500, kill_worker=True)
