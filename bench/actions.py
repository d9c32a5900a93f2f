"""Part 2: history events and billable Temporal Cloud actions per request.

On the time-skipping test server, one request per variant and path. Reply path: opened,
replied to, and accepted once the reply was processed (a partner decides later, not in the
same instant). Deadline path: opened, the clock moved past the deadline, then accepted; ours
with the default policy (reminder timers) and with max_reminders=0. bench.throughput adds
histories of the dev server under load (where the accept follows the reply at once).

Actions are counted from the history by Temporal Cloud's rules
(https://docs.temporal.io/cloud/actions), as this module reads them:
- workflow started: 1 (search attributes given at start are free);
- each signal: 1; each update: 1 (accepted or rejected; none is rejected here); each query: 1
  (none here: the bench never queries);
- each timer started: 1 (a timer cancelled later still counted when it started);
- each UpsertWorkflowSearchAttributes command: 1, however many attributes it sets;
- local activities: 1 per workflow task that completed with one or more of their markers
  (all local activities of one workflow task count once; a workflow task heartbeat, for a
  local activity running past 80% of the task timeout, would count again: none here);
- each regular activity start: 1, and each retry 1;
- continue-as-new: 1 (none here).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import uuid
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from bench.baselines import REPLY_WINDOW, TASK_CLOSED_AT, build_baseline_worker
from bench.common import (
    FlowTimes,
    add_cases,
    converter_for,
    decide,
    fake_case_ids,
    key_ring,
    log,
    new_store,
    open_request,
    send_reply,
    sqlite_url,
    workflow_id_for,
)
from devstack.binaries import test_server_path
from domain.models import RequestPolicy
from store.cases import CaseStore
from store.files import FileStore
from store.schema import ClientTask
from tests.conftest import make_activities
from worker import ACTIVITY_THREADS, build_worker
from workflows.search_attributes import register_search_attributes

E = EventType
LOCAL_ACTIVITY_MARKER = "core_local_activity"

# Action categories, in the order the docs' tables show them.
CATEGORIES = (
    "workflow started",
    "update",
    "signal",
    "timer started",
    "search attribute upsert",
    "local activities (per workflow task)",
    "regular activity started",
    "activity retry",
    "continue-as-new",
)


def event_name(event: HistoryEvent) -> str:
    return EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")


def count_actions(events: Sequence[HistoryEvent]) -> Counter[str]:
    """Billable actions of one history, by category (rules in the module docstring)."""
    counts: Counter[str] = Counter({c: 0 for c in CATEGORIES})
    last_task_completed = 0
    tasks_with_local_activities: set[int] = set()
    for event in events:
        kind = event.event_type
        if kind == E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            counts["workflow started"] += 1
        elif kind == E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            counts["signal"] += 1
        elif kind == E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            counts["update"] += 1
        elif kind == E.EVENT_TYPE_TIMER_STARTED:
            counts["timer started"] += 1
        elif kind == E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
            # The SDK's own TemporalChangeVersion upsert (a workflow patch) is not billed.
            if set(fields.indexed_fields) != {"TemporalChangeVersion"}:
                counts["search attribute upsert"] += 1
        elif kind == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            counts["regular activity started"] += 1
        elif kind == E.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            counts["activity retry"] += max(
                0, event.activity_task_started_event_attributes.attempt - 1
            )
        elif kind == E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            counts["continue-as-new"] += 1
        elif kind == E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            last_task_completed = event.event_id
        elif (
            kind == E.EVENT_TYPE_MARKER_RECORDED
            and event.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER
        ):
            tasks_with_local_activities.add(last_task_completed)
    counts["local activities (per workflow task)"] = len(tasks_with_local_activities)
    return counts


def summarize(histories: Sequence[Sequence[HistoryEvent]]) -> dict[str, Any]:
    """Events and actions per request over several histories of the same path (medians; the
    spread shows where the timing of the opened update adds a workflow task)."""
    totals = [len(h) for h in histories]
    by_type: list[Counter[str]] = [Counter(event_name(e) for e in h) for h in histories]
    types = sorted({t for c in by_type for t in c})
    actions = [count_actions(h) for h in histories]
    action_totals = [sum(a.values()) for a in actions]
    return {
        "histories": len(histories),
        "events_median": statistics.median(totals),
        "events_min": min(totals),
        "events_max": max(totals),
        "events_by_type": {t: statistics.median([c[t] for c in by_type]) for t in types},
        "actions_median": statistics.median(action_totals),
        "actions_min": min(action_totals),
        "actions_max": max(action_totals),
        "actions_by_category": {c: statistics.median([a[c] for a in actions]) for c in CATEGORIES},
        "example_events": [event_name(e) for e in histories[0]],
    }


async def dev_histories(client: Client, workflow_ids: Sequence[str]) -> dict[str, Any]:
    histories = []
    for workflow_id in workflow_ids:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        histories.append(list(history.events))
    return summarize(histories)


async def _wait_task_expired(store: CaseStore, case_id: str) -> None:
    for _ in range(400):
        with store.session() as s:
            status = s.scalar(select(ClientTask.status).where(ClientTask.case_id == case_id))
        if status == "expired":
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the task of {case_id} did not expire")


async def _wait_reply_processed(kind: str, store: CaseStore, times: FlowTimes) -> None:
    for _ in range(400):
        if kind == "ours":
            with store.session() as s:
                status = s.scalar(
                    select(ClientTask.status).where(ClientTask.case_id == times.case_id)
                )
            if status == "replied":
                return
        elif times.workflow_id in TASK_CLOSED_AT:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the reply to {times.case_id} was not processed")


async def _path_run(
    env: WorkflowEnvironment,
    kind: str,
    store: CaseStore,
    files: FileStore,
    policy: RequestPolicy | None,
    path: str,
) -> list[HistoryEvent]:
    """One request on the reply path (opened, replied to, accepted once the reply was
    processed, as a partner decides later) or on the deadline path (opened, no reply, past
    the deadline, accepted)."""
    client = env.client
    task_queue = f"bench-deadline-{kind}-{uuid.uuid4().hex[:6]}"
    case_id = add_cases(store, 1, "dl")[0] if kind == "ours" else fake_case_ids(1, "dl")[0]
    times = FlowTimes(case_id, workflow_id_for(kind, case_id))
    with ThreadPoolExecutor(ACTIVITY_THREADS) as executor:
        worker = (
            build_worker(client, make_activities(store, files), executor, task_queue)
            if kind == "ours"
            else build_baseline_worker(client, executor, task_queue)
        )
        async with worker:
            started = await env.get_current_time()
            await open_request(
                client, kind, case_id, task_queue, times, policy, store=store, now=started
            )
            if path == "reply":
                await send_reply(client, kind, case_id, times)
                await _wait_reply_processed(kind, store, times)
                await decide(client, kind, case_id, times)
                history = await client.get_workflow_handle(times.workflow_id).fetch_history()
                return list(history.events)
            if kind == "ours":
                with store.session() as s:
                    due = s.scalar(select(ClientTask.due_at).where(ClientTask.case_id == case_id))
                assert due is not None
            else:
                due = started + REPLY_WINDOW
            await env.sleep(due - await env.get_current_time() + timedelta(minutes=1))
            if kind == "ours":
                await _wait_task_expired(store, case_id)
            else:
                await asyncio.sleep(0.5)
            await decide(client, kind, case_id, times)
            history = await client.get_workflow_handle(times.workflow_id).fetch_history()
    return list(history.events)


async def paths() -> dict[str, Any]:
    """On the time-skipping server, one request each: the reply path (ours, (a), (b)) and the
    deadline path (ours with the default policy and with max_reminders=0, (a), (b))."""
    work = Path(tempfile.mkdtemp(prefix="bench-deadline-"))
    store = new_store(sqlite_url(work))
    files = FileStore(work / "files", 1 << 20)
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_path(), data_converter=converter_for(key_ring())
    )
    results: dict[str, Any] = {"reply": {}, "deadline": {}}
    try:
        await register_search_attributes(env.client)
        runs: list[tuple[str, str, str, RequestPolicy | None]] = [
            ("reply", "ours", "ours (default policy)", None),
            ("reply", "a", "(a) regular activities", None),
            ("reply", "b", "(b) local activities", None),
            ("deadline", "ours", "ours (default policy: max_reminders=3)", None),
            (
                "deadline",
                "ours-no-reminders",
                "ours (max_reminders=0)",
                RequestPolicy(max_reminders=0),
            ),
            ("deadline", "a", "(a) regular activities", None),
            ("deadline", "b", "(b) local activities", None),
        ]
        for path, key, label, policy in runs:
            kind = "ours" if key.startswith("ours") else key
            history = await _path_run(env, kind, store, files, policy, path)
            results[path][key] = {"label": label} | summarize([history])
            actions = results[path][key]["actions_median"]
            log(f"{path} path {key}: {len(history)} events, {actions} actions")
    finally:
        await env.shutdown()
        store.engine.dispose()
    return results
