"""Two baseline workflows that take the same Temporal steps as InfoRequestWorkflow, with empty
bodies, to measure what the engine itself costs for this flow.

Same steps as ours (counted in its histories, tests/histories/reply_then_accept.json):
- opening: set status, post the request in the chat, create the task, email the client (4);
- reply: post the reply, close the task, record the checklist, email the partner (4);
- deadline instead of a reply: close the task (expired), email the partner (2);
- decision: set status, email the client (2).
Same waits: the `opened` update answered after the opening steps, the reply as the
`client_reply` signal raced against a timer (the two-day deadline), the decision as the
`decide` update answered once its steps are done. Same payload types in and out of the client
calls (InfoRequestInput, ClientReply, Decision), so the client side costs the same.

(a) BaselineRegularWorkflow: one regular activity per step (scheduled, started, completed,
    and a workflow task to resume after each).
(b) BaselineLocalWorkflow: the cheapest shape the engine allows: every step a local activity, so
    the opening steps, the reply steps and the decision steps each run inside one workflow task;
    no search-attribute upserts, no reminder timers, no step summaries.

The step activity does nothing but, for the close-the-task step, note the wall-clock time
(bench.throughput compares it with the time the reply signal was sent).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from domain.models import ClientReply, Decision, InfoRequestInput
    from worker import SIZING

OPEN_STEPS: tuple[str, ...] = ("open:status", "open:message", "open:task", "open:email")
REPLY_STEPS = ("reply:message", "reply:close_task", "reply:checklist", "reply:email")
EXPIRY_STEPS = ("expired:close_task", "expired:email")
DECISION_STEPS = ("decision:status", "decision:email")
CLOSE_TASK_STEPS = ("reply:close_task", "expired:close_task")

# The same options as InfoRequestWorkflow's steps (workflows/info_request.py).
STEP_TIMEOUT = timedelta(seconds=30)
STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)
STEP_RETRY_IN_WORKER = timedelta(seconds=10)
REPLY_WINDOW = timedelta(days=2)

# workflow ID -> wall-clock time the close-the-task step ran (this process's workers only).
TASK_CLOSED_AT: dict[str, float] = {}


@activity.defn(name="bench_step")
def bench_step(step: str) -> None:
    """An empty step (a thread, like ours: the real steps are blocking)."""
    workflow_id = activity.info().workflow_id
    if step in CLOSE_TASK_STEPS and workflow_id is not None:
        TASK_CLOSED_AT[workflow_id] = time.time()


class _Flow:
    """The flow both baselines share; `_step` says how a step runs."""

    def __init__(self) -> None:
        self._opened = False
        self._replied = False
        self._decision: Decision | None = None
        self._done = False

    async def _step(self, step: str) -> None:
        raise NotImplementedError

    async def _flow(self) -> str:
        for step in OPEN_STEPS:
            await self._step(step)
        self._opened = True
        steps: tuple[str, ...]
        try:
            await workflow.wait_condition(lambda: self._replied, timeout=REPLY_WINDOW)
            steps = REPLY_STEPS
        except TimeoutError:
            steps = EXPIRY_STEPS
        for step in steps:
            await self._step(step)
        await workflow.wait_condition(lambda: self._decision is not None)
        for step in DECISION_STEPS:
            await self._step(step)
        self._done = True
        return "accepted"

    @workflow.update(name="opened")
    async def opened(self) -> str:
        await workflow.wait_condition(lambda: self._opened)
        return "waiting_for_client"

    @workflow.signal(name="client_reply")
    def client_reply(self, reply: ClientReply) -> None:
        self._replied = True

    @workflow.update(name="decide")
    async def decide(self, decision: Decision) -> str:
        self._decision = decision
        await workflow.wait_condition(lambda: self._done)
        return "accepted"


@workflow.defn(name="BaselineRegularWorkflow")
class BaselineRegularWorkflow(_Flow):
    """(a) One regular activity per step."""

    @workflow.run
    async def run(self, request: InfoRequestInput) -> str:
        return await self._flow()

    async def _step(self, step: str) -> None:
        await workflow.execute_activity(
            bench_step, step, start_to_close_timeout=STEP_TIMEOUT, retry_policy=STEP_RETRY
        )


@workflow.defn(name="BaselineLocalWorkflow")
class BaselineLocalWorkflow(_Flow):
    """(b) Local activities: each group of steps inside one workflow task."""

    @workflow.run
    async def run(self, request: InfoRequestInput) -> str:
        return await self._flow()

    async def _step(self, step: str) -> None:
        await workflow.execute_local_activity(
            bench_step,
            step,
            start_to_close_timeout=STEP_TIMEOUT,
            retry_policy=STEP_RETRY,
            local_retry_threshold=STEP_RETRY_IN_WORKER,
        )


def build_baseline_worker(client: Client, executor: ThreadPoolExecutor, task_queue: str) -> Worker:
    """Built like worker.build_worker: the same executor, slots and cache, empty steps."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[BaselineRegularWorkflow, BaselineLocalWorkflow],
        activities=[bench_step],
        activity_executor=executor,
        **SIZING,
    )
