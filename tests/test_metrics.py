"""The worker's Prometheus endpoint serves the SDK's metrics and ours after a request."""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

import starter
from devstack.metrics import metrics_runtime
from domain.models import ClientReply, Decision, DecisionOutcome, ItemKind, RequestedItem
from store.cases import CaseStore
from store.files import FileStore
from tests.conftest import PARTNER_USER, add_case, make_activities
from worker import build_worker


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def sample(text: str, name: str) -> float:
    """The summed value of one metric's samples (any labels)."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((f"{name} ", f"{name}{{"))
    )


async def test_our_metrics_and_the_sdks_on_the_worker_endpoint(
    time_skipping_env: WorkflowEnvironment,
    test_data_converter: DataConverter,
    store: CaseStore,
    files: FileStore,
) -> None:
    port = free_port()
    runtime = metrics_runtime(f"127.0.0.1:{port}")
    assert runtime is not None
    client = await Client.connect(
        time_skipping_env.client.service_client.config.target_host,
        data_converter=test_data_converter,
        runtime=runtime,
    )
    case_id = add_case(store)
    with ThreadPoolExecutor(4) as executor:
        async with build_worker(client, make_activities(store, files), executor, "metrics"):
            await starter.request_info(
                client,
                starter.new_request(
                    case_id=case_id,
                    partner_user_id=PARTNER_USER,
                    message="Please send it.",
                    items=[RequestedItem(kind=ItemKind.PAYMENT_REMINDERS, reason="Shows dunning")],
                ),
                task_queue="metrics",
            )
            await starter.send_client_reply(
                client, case_id, ClientReply(reply_id="m-1", message="Sent.")
            )
            for _ in range(100):
                if store.tasks(case_id=case_id)[0].status == "replied":
                    break
                await asyncio.sleep(0.05)
            await starter.decide(
                client, case_id, Decision(outcome=DecisionOutcome.ACCEPT, decided_by=PARTNER_USER)
            )
            text = await asyncio.to_thread(scrape, port)

    assert sample(text, "info_requests_opened") == 1
    assert sample(text, "info_request_replies") == 1
    assert "info_request_decisions{" in text and 'outcome="accepted"' in text
    assert sample(text, "info_request_time_to_reply_count") == 1
    assert sample(text, "temporal_workflow_completed") >= 1  # the SDK's own
