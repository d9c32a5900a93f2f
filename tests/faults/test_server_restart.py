"""The Temporal server goes away (SIGKILL) while requests wait on their clients, and comes back
on the same SQLite file and port; the worker keeps running throughout and reconnects.

The client deadlines are business days away, so they cannot fire within a test. What survives
is checked instead: every run is still there and running, its deadline timer is still pending
in the history with the same due time, and replies after the restart still close tasks. That a
durable timer does fire across the outage is shown with the partner-message bundle: its quiet
period (policy `bundle_quiet_seconds`, 3 s here) ends while the server is down, and the bundled
email goes out once it is back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import WorkflowExecutionStatus

import starter
from domain.models import (
    CaseStatus,
    CloseCode,
    Decision,
    DecisionOutcome,
    PartnerMessage,
    Phase,
    RequestPolicy,
    TaskOutcome,
)
from tests.conftest import PARTNER_USER
from tests.faults.harness import (
    CHAT,
    DELIVERED,
    EMAILS,
    Service,
    accept,
    case_rows,
    client_reply,
    decide_when_ready,
    opened,
    pending_timers,
    reply_path_keys,
    running_service,
    soak_only,
    start_request,
    tally,
    wait_for,
)
from workflows.info_request import InfoRequestWorkflow

QUIET_SECONDS = 3
POLICY = RequestPolicy(bundle_quiet_seconds=QUIET_SECONDS)


@pytest.fixture
async def service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Service]:
    async with running_service(tmp_path_factory.mktemp("server-restart")) as running:
        yield running


async def _restart_with_requests_waiting(
    service: Service, *, requests: int, replied: int, outage_seconds: float
) -> None:
    worker = service.worker()
    await worker.start()
    cases = [service.new_case() for _ in range(requests)]
    started = [await start_request(service.client, case_id, policy=POLICY) for case_id in cases]
    states = await asyncio.gather(*(opened(handle) for handle, _ in started))
    assert all(state.phase is Phase.WAITING_FOR_CLIENT for state in states)

    # The partner writes on the first case: the client is emailed after the quiet period, which
    # ends while the server is down.
    bundled_case, (bundled, bundled_request) = cases[0], started[0]
    bundle_key = f"{bundled_request.request_id}:msg:m-1:email"
    message = PartnerMessage(message_id="m-1", author_user_id=PARTNER_USER, message="Any news?")
    await starter.send_partner_message(service.client, bundled_case, message)

    async def quiet_timer_started() -> bool:
        soon = datetime.now(UTC) + timedelta(minutes=1)
        return any(due < soon for due in (await pending_timers(bundled)).values())

    await wait_for(quiet_timer_started, "the quiet-period timer started", interval=0.1)
    timers_before = [await pending_timers(handle) for handle, _ in started]

    service.server.kill()
    down_at = time.monotonic()
    await asyncio.sleep(outage_seconds)
    assert worker.running, "the worker must survive the outage"
    assert service.store.email_by_key(bundle_key) is None, "nothing can fire while it is down"
    service.server.start()
    await service.reconnect()
    back_after = time.monotonic() - down_at

    # The quiet period ended during the outage: the bundled email goes out now.
    await wait_for(
        lambda: service.store.email_by_key(bundle_key) is not None,
        "the partner messages emailed after the restart",
        timeout=30,
        logs=worker.logs,
    )

    # Every request is there, running, waiting on one timer: its next wake-up (the first
    # reminder, on the due day, or else the deadline). Those the outage did not wake still wait
    # on the very timer they started before it.
    running = 0
    for index, ((old_handle, _), before) in enumerate(zip(started, timers_before, strict=True)):
        handle = service.client.get_workflow_handle(old_handle.id, run_id=old_handle.result_run_id)
        running += (await handle.describe()).status is WorkflowExecutionStatus.RUNNING
        state = await handle.query(InfoRequestWorkflow.state)
        assert state.task is not None and state.phase is Phase.WAITING_FOR_CLIENT
        wake = min([*state.task.reminders_at, state.task.due_at])
        after = await pending_timers(handle)
        assert len(after) == 1, after
        [due] = after.values()
        assert abs((due - wake).total_seconds()) < 5, (due, wake)
        assert index == 0 or after == before, (after, before)

    # Replies after the restart still close tasks; the rest are closed by the partner.
    await asyncio.gather(
        *(
            starter.send_client_reply(service.client, case_id, client_reply("after-restart"))
            for case_id in cases[:replied]
        )
    )
    for (_, request), case_id in zip(started[:replied], cases, strict=False):
        key = f"{request.request_id}:reply:after-restart:email"
        await wait_for(
            lambda key=key: service.store.email_by_key(key) is not None,  # type: ignore[misc]
            f"the reply on {case_id} recorded",
            logs=worker.logs,
        )
        summary = await decide_when_ready(service.client, case_id, accept())
        assert summary.final_status is CaseStatus.ACTIVE
        assert summary.task_outcome is TaskOutcome.REPLIED
    close = Decision(
        outcome=DecisionOutcome.CLOSE,
        close_code=CloseCode.UNRESPONSIVE_CLIENT,
        decided_by=PARTNER_USER,
    )
    for case_id in cases[replied:]:
        summary = await decide_when_ready(service.client, case_id, close)
        assert summary.task_outcome is TaskOutcome.CANCELLED

    results = []
    for index, ((_, request), case_id) in enumerate(zip(started, cases, strict=True)):
        r = request.request_id
        if index < replied:
            expected = reply_path_keys(r, case_id, ["after-restart"])
        else:
            expected = reply_path_keys(r, case_id, ["-"])
            expected[CHAT] -= {f"{case_id}:reply:-", f"{r}:reply:-:checklist:note"}
            expected[EMAILS] = {f"{r}:open:email", f"{r}:decision:email"}
        if index == 0:
            expected[CHAT] |= {f"{r}:msg:m-1"}
            expected[EMAILS] |= {bundle_key}
        expected[DELIVERED] = set(expected[EMAILS])
        results.append(
            tally(f"server restart, case {index + 1}", expected, case_rows(service.store, case_id))
        )
    # The counts first, so a failing run shows them too; then each request's check.
    print(
        f"faults: dev server killed for {back_after:.1f} s with {requests} requests waiting: "
        f"running after restart {running}/{requests}, every wake-up timer kept (checked above), "
        f"quiet-period timer fired after restart 1/1, replies after restart closed tasks "
        f"{replied}/{replied}, worker restarts {worker.starts - 1}, "
        f"lost {sum(len(r.lost) for r in results)}, "
        f"duplicated {sum(len(r.duplicated) for r in results)}"
    )
    for result in results:
        result.check(worker.logs())
    assert running == requests
    assert worker.starts == 1 and worker.running
    worker.stop()


async def test_server_killed_and_restarted_while_requests_wait(service: Service) -> None:
    """Five requests wait on their clients; the server is killed for a few seconds and started
    again on the same file and port; the worker is never restarted."""
    await _restart_with_requests_waiting(service, requests=5, replied=3, outage_seconds=4)


@soak_only
async def test_soak_server_down_for_a_minute_with_many_requests(service: Service) -> None:
    await _restart_with_requests_waiting(service, requests=30, replied=20, outage_seconds=60)
