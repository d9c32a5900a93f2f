"""SIGKILL the worker at each step of a request, start a new one, and count what was written.

How, without a hook in the product: the worker is `python worker.py` in a subprocess against a
Temporal dev server, on a SQLite case store. A thread polls the store every 2 ms for the row the
target step writes and SIGKILLs the worker the moment it appears: after the step's write, but
(almost always) before the workflow task that ran it completed, so its local-activity marker
never reached the history and the step runs again on the next worker, which must find its
first write by the idempotency key. The history's WorkflowTaskTimedOut events show the kill
landed mid-task (a run's first lost task is recorded there; its retries, while they fail, are
not).

A lost workflow task is handed to another worker only when its start-to-close timeout (the
workflow's `task_timeout`, 10 s by default) expires. The run's task timeout cannot be changed
from outside once it started, so these requests are started by the test itself with the same
input `starter.request_info` builds (`starter.new_request`, the workflow ID of domain.ids, task
queue `info-requests`, the same policies and search attributes) but `task_timeout=2 s`
(harness.start_request): each kill then costs about 2 s instead of 10.

`make test` kills once at each step of the reply path (request -> reply -> accept); `make soak`
adds every step of the close and withdraw paths, the checklist step, SendGrid instead of the
outbox, and one request killed at every step in turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from temporalio.client import WorkflowHandle

import starter
from domain.models import (
    CaseStatus,
    CloseCode,
    Decision,
    DecisionOutcome,
    RequestOutcome,
    RequestSummary,
    TaskOutcome,
    Withdrawal,
)
from tests.conftest import PARTNER_USER
from tests.fake_sendgrid import FakeSendGrid
from tests.faults.harness import (
    CHAT,
    DELIVERED,
    EMAILS,
    STATUS_CHANGES,
    TASKS,
    TASKS_CLOSED,
    Service,
    Tally,
    WorkerProcess,
    accept,
    case_rows,
    client_reply,
    decide_when_ready,
    kill_when_row,
    opened,
    pending_timers,
    reply_path_keys,
    report,
    running_service,
    soak_only,
    start_request,
    tally,
    until_ready,
    wait_for,
    workflow_task_timeouts,
)

ROW = "SELECT 1 FROM {table} WHERE idempotency_key = ?"
TASK_CLOSED = "SELECT 1 FROM tasks WHERE idempotency_key = ? AND status != 'open'"
REPLY_ID = "portal-msg-1"


@dataclass(frozen=True)
class KillPoint:
    """Kill the worker once `sql` finds the row of `key` ({r} request ID, {c} case ID,
    {reply} reply ID), in the given phase of the request."""

    name: str
    phase: str  # open | reply | decide
    sql: str
    key: str
    email: bool = False

    def key_for(self, request_id: str, case_id: str) -> str:
        return self.key.format(r=request_id, c=case_id, reply=REPLY_ID)


OPEN_STATUS = KillPoint(
    "opening status change", "open", ROW.format(table="status_changes"), "{r}:open:status"
)
REQUEST_MESSAGE = KillPoint(
    "request chat message", "open", ROW.format(table="chat_messages"), "{r}:open:message"
)
TASK_CREATED = KillPoint("task creation", "open", ROW.format(table="tasks"), "{r}:task")
CLIENT_EMAIL = KillPoint(
    "client email", "open", ROW.format(table="emails"), "{r}:open:email", email=True
)
REPLY_MESSAGE = KillPoint(
    "reply chat message", "reply", ROW.format(table="chat_messages"), "{c}:reply:{reply}"
)
TASK_CLOSE = KillPoint("task close", "reply", TASK_CLOSED, "{r}:task")
CHECKLIST = KillPoint(
    "checklist received",
    "reply",
    ROW.format(table="chat_messages"),
    "{r}:reply:{reply}:checklist:note",
)
PARTNER_EMAIL = KillPoint(
    "partner email", "reply", ROW.format(table="emails"), "{r}:reply:{reply}:email", email=True
)
DECISION_STATUS = KillPoint(
    "decision status change", "decide", ROW.format(table="status_changes"), "{r}:decision:status"
)
DECISION_EMAIL = KillPoint(
    "decision email", "decide", ROW.format(table="emails"), "{r}:decision:email", email=True
)
REPLY_PATH = [
    OPEN_STATUS,
    REQUEST_MESSAGE,
    TASK_CREATED,
    CLIENT_EMAIL,
    REPLY_MESSAGE,
    TASK_CLOSE,
    PARTNER_EMAIL,
    DECISION_STATUS,
    DECISION_EMAIL,
]
# The close while waiting (the task is cancelled) and the withdrawal: after opening, one
# workflow task does all of it.
CANCEL_TASK = KillPoint("task cancel", "decide", TASK_CLOSED, "{r}:task")
WITHDRAW_STATUS = KillPoint(
    "withdrawal status change", "decide", ROW.format(table="status_changes"), "{r}:decision:status"
)
WITHDRAW_EMAIL = KillPoint(
    "withdrawal email", "decide", ROW.format(table="emails"), "{r}:withdrawn:email", email=True
)


@pytest.fixture(scope="module")
async def service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Service]:
    async with running_service(tmp_path_factory.mktemp("worker-kills")) as running:
        yield running


def _row_exists(service: Service, sql: str, key: str) -> bool:
    with contextlib.closing(sqlite3.connect(service.sqlite_file, timeout=30)) as connection:
        return connection.execute(sql, (key,)).fetchone() is not None


class Run:
    """One request driven through a path while the worker is killed at the given points."""

    def __init__(self, service: Service, worker: WorkerProcess, points: Sequence[KillPoint]):
        self.service = service
        self.worker = worker
        self.points = list(points)

    async def kill_at(self, phase: str, request_id: str, case_id: str) -> None:
        for point in self.points:
            if point.phase != phase:
                continue
            await kill_when_row(
                self.worker,
                self.service.sqlite_file,
                point.sql,
                (point.key_for(request_id, case_id),),
            )
            await self.worker.start()

    async def until_row(self, table: str, key: str) -> None:
        await wait_for(
            lambda: _row_exists(self.service, ROW.format(table=table), key),
            f"row {key} in {table}",
            logs=self.worker.logs,
        )


async def _reply_path(
    service: Service, points: Sequence[KillPoint], sendgrid: FakeSendGrid | None = None
) -> None:
    worker = service.worker(sendgrid=sendgrid)
    await worker.start()
    run = Run(service, worker, points)
    began = time.monotonic()
    refused: list[str] = []  # updates the server refused while the workflow task was failing
    try:
        case_id = service.new_case()
        handle, request = await start_request(service.client, case_id)
        r = request.request_id
        await run.kill_at("open", r, case_id)
        # As starter.request_info does: the request is open before anyone is told to reply.
        await opened(handle, refused)

        await starter.send_client_reply(service.client, case_id, client_reply(REPLY_ID))
        await run.kill_at("reply", r, case_id)
        await run.until_row("emails", f"{r}:reply:{REPLY_ID}:email")

        deciding = asyncio.create_task(
            decide_when_ready(service.client, case_id, accept(), refused)
        )
        await run.kill_at("decide", r, case_id)
        summary = await asyncio.wait_for(deciding, 120)

        timeouts = await workflow_task_timeouts(handle)
        result = tally(
            f"kill at {' + '.join(p.name for p in points) or 'nothing'}"
            + (" (SendGrid)" if sendgrid else ""),
            reply_path_keys(r, case_id, [REPLY_ID]),
            case_rows(service.store, case_id, sendgrid),
            kills=worker.kills,
            **{
                "workflow task timeouts in history": timeouts,
                "updates refused as not ready": len(refused),
                "took": f"{time.monotonic() - began:.1f} s",
            },
        )
        report(result, worker.logs())
        assert summary == await handle.result()
        assert summary.final_status is CaseStatus.ACTIVE
        assert summary.task_outcome is TaskOutcome.REPLIED and summary.replies == 1
        assert service.store.case_status(case_id) is CaseStatus.ACTIVE
        if sendgrid is not None:
            _check_email_statuses(service, case_id)
        assert worker.kills == len(points)
    finally:
        worker.stop()


def _check_email_statuses(service: Service, case_id: str) -> None:
    """With SendGrid, every email was sent; none is left `sending` or `unconfirmed`."""
    statuses = {email.status for email in service.store.emails(case_id)}
    assert statuses == {"sent"}, statuses


@pytest.mark.parametrize("point", REPLY_PATH, ids=lambda p: p.name.replace(" ", "-"))
async def test_worker_killed_at_a_step_of_the_reply_path(
    service: Service, point: KillPoint
) -> None:
    """Killed right after the step wrote, the request still completes (reply, accept) with
    exactly one status change, chat message, task and email per step."""
    await _reply_path(service, [point])


async def test_reply_while_the_opening_task_is_lost(service: Service) -> None:
    """The worker dies during the opening and the client replies before another worker took
    the opening over (the task is already in the store, so a portal shows it): the run sees
    the reply before its create_client_task step returns. It must count as the round's reply:
    accept is allowed, and no reminder or deadline timer is left.

    Regression test of a bug this suite found: `_start_round` reset `_reply_in_round` after
    the task was created, so such a reply was posted and closed the task but accept was then
    refused as TooEarlyToAccept for good (a replied task never expires) and the client still
    got reminders after replying."""
    worker = service.worker()
    await worker.start()
    try:
        case_id = service.new_case()
        handle, request = await start_request(service.client, case_id)
        r = request.request_id
        await kill_when_row(
            worker, service.sqlite_file, CLIENT_EMAIL.sql, (CLIENT_EMAIL.key_for(r, case_id),)
        )
        await starter.send_client_reply(service.client, case_id, client_reply(REPLY_ID))
        await worker.start()
        await Run(service, worker, []).until_row("emails", f"{r}:reply:{REPLY_ID}:email")
        state = await starter.get_state(service.client, case_id)
        assert state.task is not None and state.task.outcome is TaskOutcome.REPLIED
        assert [reply.reply_id for reply in state.replies] == [REPLY_ID]
        # Waiting for the decision only: no reminder and no deadline timer.
        await wait_for(
            lambda: state_settled(handle), "the run waits for the decision", logs=worker.logs
        )
        timers = await pending_timers(handle)

        summary = await decide_when_ready(service.client, case_id, accept())
        assert summary.final_status is CaseStatus.ACTIVE and summary.replies == 1
        result = tally(
            "reply while the opening task is lost",
            reply_path_keys(r, case_id, [REPLY_ID]),
            case_rows(service.store, case_id),
            kills=worker.kills,
            accept="allowed",
            **{"timers left while waiting for the decision": len(timers)},
        )
        report(result, worker.logs())
        assert timers == {}, f"a reminder or deadline is still due after the reply: {timers}"
    finally:
        worker.stop()


async def state_settled(handle: WorkflowHandle[Any, Any]) -> bool:
    """The run's last workflow task completed (nothing pending on it)."""
    description = await handle.describe()
    return not description.raw_description.HasField("pending_workflow_task")


# ---- soak ---------------------------------------------------------------------------------------


@soak_only
@pytest.mark.parametrize("point", [*REPLY_PATH, CHECKLIST], ids=lambda p: p.name.replace(" ", "-"))
async def test_soak_worker_killed_at_a_step_with_sendgrid(
    service: Service, point: KillPoint
) -> None:
    """The same through SendGrid (the fake), killed once the email is `sent` when the step is
    an email: SendGrid is called once per email, never twice."""
    if point.email:
        point = KillPoint(
            point.name, point.phase, point.sql + " AND status = 'sent'", point.key, True
        )
    with FakeSendGrid() as fake:
        await _reply_path(service, [point], sendgrid=fake)


@soak_only
async def test_soak_worker_killed_at_every_step_of_one_request(service: Service) -> None:
    """One request, the worker killed at every step in turn (ten kills)."""
    await _reply_path(
        service,
        [
            OPEN_STATUS,
            REQUEST_MESSAGE,
            TASK_CREATED,
            CLIENT_EMAIL,
            REPLY_MESSAGE,
            TASK_CLOSE,
            CHECKLIST,
            PARTNER_EMAIL,
            DECISION_STATUS,
            DECISION_EMAIL,
        ],
    )


@soak_only
@pytest.mark.parametrize(
    "point",
    [OPEN_STATUS, CLIENT_EMAIL, CANCEL_TASK, DECISION_STATUS, DECISION_EMAIL],
    ids=lambda p: p.name.replace(" ", "-"),
)
async def test_soak_worker_killed_on_the_close_path(service: Service, point: KillPoint) -> None:
    """Request, then close as unresponsive while waiting (the task is cancelled)."""
    decision = Decision(
        outcome=DecisionOutcome.CLOSE,
        close_code=CloseCode.UNRESPONSIVE_CLIENT,
        decided_by=PARTNER_USER,
    )
    await _ended_while_waiting(service, point, decide=decision)


@soak_only
@pytest.mark.parametrize(
    "point", [CANCEL_TASK, WITHDRAW_STATUS, WITHDRAW_EMAIL], ids=lambda p: p.name.replace(" ", "-")
)
async def test_soak_worker_killed_on_the_withdraw_path(service: Service, point: KillPoint) -> None:
    await _ended_while_waiting(
        service, point, withdraw=Withdrawal(requested_by=PARTNER_USER, reason="Sent in error")
    )


async def _ended_while_waiting(
    service: Service,
    point: KillPoint,
    *,
    decide: Decision | None = None,
    withdraw: Withdrawal | None = None,
) -> None:
    worker = service.worker()
    await worker.start()
    run = Run(service, worker, [point])
    try:
        case_id = service.new_case()
        handle, request = await start_request(service.client, case_id)
        r = request.request_id
        await run.kill_at("open", r, case_id)
        await opened(handle)

        async def end() -> RequestSummary:
            if decide is not None:
                return await starter.decide(service.client, case_id, decide)
            assert withdraw is not None
            return await starter.withdraw(service.client, case_id, withdraw)

        ending = asyncio.create_task(until_ready(end))
        await run.kill_at("decide", r, case_id)
        summary = await asyncio.wait_for(ending, 120)
        assert summary == await handle.result()
        assert summary.task_outcome is TaskOutcome.CANCELLED
        last_email = "withdrawn:email" if withdraw else "decision:email"
        assert summary.outcome is (RequestOutcome.WITHDRAWN if withdraw else RequestOutcome.CLOSED)
        expected = {
            STATUS_CHANGES: {f"{r}:open:status", f"{r}:decision:status"},
            CHAT: {
                f"{r}:open:status:note",
                f"{r}:open:message",
                f"{r}:task:note",
                f"{r}:task:closed:note",
                f"{r}:decision:status:note",
            },
            TASKS: {f"{r}:task"},
            TASKS_CLOSED: {f"{r}:task"},
            EMAILS: {f"{r}:open:email", f"{r}:{last_email}"},
            DELIVERED: {f"{r}:open:email", f"{r}:{last_email}"},
        }
        result = tally(
            f"kill at {point.name} ({'withdraw' if withdraw else 'close'} path)",
            expected,
            case_rows(service.store, case_id),
            kills=worker.kills,
            **{"workflow task timeouts in history": await workflow_task_timeouts(handle)},
        )
        report(result, worker.logs())
    finally:
        worker.stop()


@soak_only
async def test_soak_many_requests_while_workers_keep_dying(service: Service) -> None:
    """Forty requests at once, each driven through request -> reply -> accept, while the
    worker is SIGKILLed every 0.3-2 s (at whatever step it is) and started again."""
    requests = 40
    worker = service.worker()
    await worker.start()
    done = asyncio.Event()

    async def chaos() -> None:
        rng = random.Random(6)
        while not done.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), rng.uniform(0.3, 2.0))
            if not done.is_set():
                worker.kill()
                await worker.start()

    async def one() -> Tally:
        case_id = service.new_case()
        handle, request = await start_request(service.client, case_id)
        r = request.request_id
        await opened(handle)
        await starter.send_client_reply(service.client, case_id, client_reply(REPLY_ID))
        await wait_for(
            lambda: service.store.email_by_key(f"{r}:reply:{REPLY_ID}:email") is not None,
            f"the reply on {case_id} recorded",
            timeout=300,
        )
        summary = await decide_when_ready(service.client, case_id, accept())
        assert summary.final_status is CaseStatus.ACTIVE
        return tally(
            case_id,
            reply_path_keys(r, case_id, [REPLY_ID]),
            case_rows(service.store, case_id),
        )

    monkey = asyncio.create_task(chaos())
    try:
        results = await asyncio.wait_for(asyncio.gather(*(one() for _ in range(requests))), 900)
    finally:
        done.set()
        await monkey
        worker.stop()
    lost = sum(len(result.lost) for result in results)
    duplicated = sum(len(result.duplicated) for result in results)
    totals: dict[str, list[int]] = {}
    for result in results:
        for kind, (found, expected) in result.counts.items():
            totals.setdefault(kind, [0, 0])
            totals[kind][0] += found
            totals[kind][1] += expected
    print(
        f"faults: {requests} requests, worker killed {worker.kills} times: "
        + ", ".join(f"{kind} {found}/{expected}" for kind, (found, expected) in totals.items())
        + f", lost {lost}, duplicated {duplicated}"
    )
    for result in results:
        result.check(worker.logs())
