"""Record the histories that tests/test_replay.py replays: `python -m tests.histories.record`.

Run it when a deliberate, versioned workflow change needs new recordings; keep the old files
too, so runs started by the old code are proven to still replay. Each history comes from the
real workflow and activities on the time-skipping server, with payloads in plain JSON (no
encryption key is needed to replay them).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client, WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

import starter
from devstack.binaries import test_server_path
from domain.ids import info_request_workflow_id
from domain.models import (
    ClientReply,
    CloseCode,
    Decision,
    DecisionOutcome,
    InfoRequestInput,
    ItemKind,
    RequestedItem,
)
from store.cases import CaseStore, NewCase
from store.files import FileStore
from store.migrate import upgrade
from tests.conftest import CLIENT_DK, PARTNER, PARTNER_USER, make_activities
from worker import build_worker
from workflows.search_attributes import register_search_attributes

HISTORIES = Path(__file__).parent
ITEMS = [RequestedItem(kind=ItemKind.INVOICE_OR_CONTRACT, reason="Proves the claim")]


async def record(name: str, client: Client, case_id: str) -> None:
    history = await client.get_workflow_handle(info_request_workflow_id(case_id)).fetch_history()
    (HISTORIES / f"{name}.json").write_text(history.to_json() + "\n")
    print(f"recorded {name}.json ({len(history.events)} events)")


async def main() -> None:
    work = Path(tempfile.mkdtemp())
    url = f"sqlite:///{work / 'cases.db'}"
    upgrade(url)
    store = CaseStore.from_url(url)
    store.add_party(PARTNER)
    store.add_party(CLIENT_DK)
    store.add_user(PARTNER_USER, PARTNER.id, "Pia Partner", "pia@test-collect.example")
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_path(), data_converter=pydantic_data_converter
    )
    await register_search_attributes(env.client)

    def new_case() -> str:
        case_id = f"C-REC-{uuid.uuid4().hex[:6]}"
        store.add_case(
            NewCase(
                id=case_id,
                client_id=CLIENT_DK.id,
                partner_id=PARTNER.id,
                reference="REC-1",
                debtor_name="Debtor",
                amount_minor=1,
                currency="DKK",
                description="Recorded",
            )
        )
        return case_id

    def ask(case_id: str) -> InfoRequestInput:
        return starter.new_request(
            case_id=case_id,
            partner_user_id=PARTNER_USER,
            items=ITEMS,
            message="Please send the signed contract.",
        )

    accept = Decision(outcome=DecisionOutcome.ACCEPT, decided_by=PARTNER_USER)
    activities = make_activities(store, FileStore(work / "files", 1 << 20))
    with ThreadPoolExecutor(8) as executor:
        async with build_worker(env.client, activities, executor, "record"):
            case_id = new_case()
            await starter.request_info(env.client, ask(case_id), task_queue="record")
            await starter.send_client_reply(
                env.client, case_id, ClientReply(reply_id="r1", message="Here it is.")
            )
            await asyncio.sleep(1)
            await starter.decide(env.client, case_id, accept)
            await record("reply_then_accept", env.client, case_id)

            case_id = new_case()
            await starter.request_info(env.client, ask(case_id), task_queue="record")
            await env.sleep(timedelta(days=8))
            await starter.decide(env.client, case_id, accept)
            await record("deadline_then_accept", env.client, case_id)

            case_id = new_case()
            await starter.request_info(env.client, ask(case_id), task_queue="record")
            await starter.decide(
                env.client,
                case_id,
                Decision(
                    outcome=DecisionOutcome.CLOSE,
                    close_code=CloseCode.PAID,
                    decided_by=PARTNER_USER,
                ),
            )
            await record("close_while_waiting", env.client, case_id)

            with contextlib.suppress(starter.RequestError):
                await starter.request_info(env.client, ask("C-REC-UNKNOWN"), task_queue="record")
            with contextlib.suppress(WorkflowFailureError):
                await env.client.get_workflow_handle(
                    info_request_workflow_id("C-REC-UNKNOWN")
                ).result()
            await record("refused_unknown_case", env.client, "C-REC-UNKNOWN")
    await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
