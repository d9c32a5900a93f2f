"""The worker: runs InfoRequestWorkflow and its activities on the `info-requests` task queue.

python worker.py        (connection from temporalio.envconfig; stores from config.Settings)
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TypedDict

from temporalio.client import Client
from temporalio.worker import Worker

from activities.info_request import InfoRequestActivities
from config import Settings
from devstack.metrics import metrics_runtime
from mail.mailer import Mailer
from mail.sendgrid_transport import SendGridTransport
from starter.connection import connect
from store.cases import CaseStore
from store.files import FileStore
from workflows import TASK_QUEUE
from workflows.info_request import InfoRequestWorkflow

# Activities are blocking (SQLAlchemy, the SendGrid library), so they run in threads. One
# worker process runs Python on one core (the GIL): more threads only queue, and cost CPU in
# hand-offs (docs/benchmarks.md §4b). Scale out with more worker processes instead.
ACTIVITY_THREADS = 8
# Workflow tasks handled at once (SDK default 100): 20 keeps a busy worker's tail shorter
# without starving it (docs/benchmarks.md §4, §4b).
WORKFLOW_TASK_SLOTS = 20
# Runs kept in memory between their workflow tasks (the SDK's default). A request waits days
# and wakes a few times; with 10,000 waiting this keeps the worker at ≈ 0.4 GiB, where caching
# all of them takes 2.7 GiB to save a replay of ≈ 30 events per wake (docs/benchmarks.md §4).
WORKFLOW_CACHE = 1000


class WorkerSizing(TypedDict):
    max_concurrent_activities: int
    max_concurrent_local_activities: int
    max_concurrent_workflow_tasks: int
    max_cached_workflows: int


# The worker's slots and cache, as Worker keyword arguments (the bench's baselines use them too).
SIZING = WorkerSizing(
    max_concurrent_activities=ACTIVITY_THREADS,
    max_concurrent_local_activities=ACTIVITY_THREADS,
    max_concurrent_workflow_tasks=WORKFLOW_TASK_SLOTS,
    max_cached_workflows=WORKFLOW_CACHE,
)


def build_activities(settings: Settings, store: CaseStore | None = None) -> InfoRequestActivities:
    store = store or CaseStore.from_url(settings.database_url)
    sendgrid = (
        SendGridTransport(
            settings.sendgrid_api_key,
            from_email=settings.mail_from,
            from_name=settings.mail_from_name,
            host=settings.sendgrid_host,
        )
        if settings.sendgrid_api_key
        else None
    )
    return InfoRequestActivities(
        store,
        FileStore(settings.file_store_dir, settings.max_file_bytes),
        Mailer(store, sendgrid),
    )


def build_worker(
    client: Client,
    activities: InfoRequestActivities,
    executor: ThreadPoolExecutor,
    task_queue: str = TASK_QUEUE,
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[InfoRequestWorkflow],
        activities=activities.all(),
        activity_executor=executor,
        **SIZING,
    )


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings.from_env()
    activities = build_activities(settings)
    client = await connect(runtime=metrics_runtime())
    with ThreadPoolExecutor(ACTIVITY_THREADS) as executor:
        worker = build_worker(client, activities, executor)
        logging.getLogger(__name__).info(
            "worker on task queue %s (email: %s)", TASK_QUEUE, activities.mailer.transport_name
        )
        await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
