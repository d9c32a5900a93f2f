"""The worker of worker.py with its sizing settings overridable, for bench.scale and
bench.profile (worker.py itself is run unchanged for the "as shipped" setting).

python -m bench.worker_process [--max-cached N] [--max-workflow-tasks N] [--threads N]
                               [--baselines | --stub-steps]

--stub-steps runs ours with the empty steps of bench.stubs (a diagnostic: what the workflow
and the SDK cost without the database and the emails).

--baselines runs the two baseline workflows of bench.baselines (empty steps) instead of ours,
built the same way, on the same task queue.

Connection and stores as worker.py: temporalio.envconfig and config.Settings from the env.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from temporalio.worker import Worker

from bench.baselines import BaselineLocalWorkflow, BaselineRegularWorkflow, bench_step
from bench.stubs import StubActivities
from config import Settings
from devstack.metrics import metrics_runtime
from starter.connection import connect
from worker import ACTIVITY_THREADS, WORKFLOW_CACHE, WORKFLOW_TASK_SLOTS, build_activities
from workflows import TASK_QUEUE
from workflows.info_request import InfoRequestWorkflow


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max-cached", type=int, default=WORKFLOW_CACHE)
    parser.add_argument("--max-workflow-tasks", type=int, default=WORKFLOW_TASK_SLOTS)
    parser.add_argument("--threads", type=int, default=ACTIVITY_THREADS)
    parser.add_argument("--baselines", action="store_true")
    parser.add_argument("--stub-steps", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.baselines:
        workflows: list[type] = [BaselineRegularWorkflow, BaselineLocalWorkflow]
        steps: list[Callable[..., Any]] = [bench_step]
    else:
        workflows = [InfoRequestWorkflow]
        steps = (
            StubActivities().all()
            if args.stub_steps
            else build_activities(Settings.from_env()).all()
        )
    client = await connect(runtime=metrics_runtime())
    with ThreadPoolExecutor(args.threads) as executor:
        # As worker.build_worker, plus the sizing under test.
        worker = Worker(
            client,
            task_queue=TASK_QUEUE,
            workflows=workflows,
            activities=steps,
            activity_executor=executor,
            max_concurrent_activities=args.threads,
            max_concurrent_local_activities=args.threads,
            max_cached_workflows=args.max_cached,
            max_concurrent_workflow_tasks=args.max_workflow_tasks,
        )
        logging.getLogger(__name__).info(
            "worker on task queue %s (max_cached_workflows=%s, max_concurrent_workflow_tasks=%s, "
            "threads=%s)",
            TASK_QUEUE,
            args.max_cached,
            args.max_workflow_tasks,
            args.threads,
        )
        await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
