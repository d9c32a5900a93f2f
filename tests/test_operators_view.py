"""What an operator sees of a run on the real dev server: search attributes through list
filters, the static summary and details, the current details, and the step and timer summaries
in the history. None of it carries personal data."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

import starter
import workflows.search_attributes as sa
from devstack.binaries import dev_server_path
from domain.ids import info_request_workflow_id
from domain.models import ClientReply, ItemKind, RequestedItem
from store.cases import CaseStore, NewCase
from store.files import FileStore
from store.migrate import upgrade
from tests.conftest import CLIENT_DK, PARTNER, PARTNER_USER, make_activities
from worker import build_worker

DEBTOR = "Ingrid Sørensen-Debtor"  # personal data that must stay out of Temporal's view
MESSAGE = f"Please send the contract signed by {DEBTOR}."


@pytest.fixture(scope="module")
def converter(test_data_converter: DataConverter) -> DataConverter:
    """The service's converter: payloads, summaries and details are encrypted."""
    return test_data_converter


@pytest.fixture(scope="module")
async def dev_env(converter: DataConverter) -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=dev_server_path(),
        data_converter=converter,
        search_attributes=sa.KEYS,
        dev_server_log_level="error",
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CaseStore, Path]]:
    work = tmp_path_factory.mktemp("operators")
    url = f"sqlite:///{work / 'cases.db'}"
    upgrade(url)
    store = CaseStore.from_url(url)
    store.add_party(PARTNER)
    store.add_party(CLIENT_DK)
    store.add_user(PARTNER_USER, PARTNER.id, "Pia Partner", "pia@test-collect.example")
    yield store, work
    store.engine.dispose()


async def eventually(check: Callable[[], object], what: str) -> None:
    """Visibility is eventually consistent: poll briefly."""
    for _ in range(100):
        if await check():  # type: ignore[misc]
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def ids_matching(client: Client, query: str) -> list[str]:
    return [w.id async for w in client.list_workflows(query)]


async def test_operator_finds_and_understands_a_run(
    dev_env: WorkflowEnvironment, sqlite_store: tuple[CaseStore, Path]
) -> None:
    store, work = sqlite_store
    client = dev_env.client
    case_id = f"C-OPS-{uuid.uuid4().hex[:6]}"
    store.add_case(
        NewCase(
            id=case_id,
            client_id=CLIENT_DK.id,
            partner_id=PARTNER.id,
            reference="OPS-1",
            debtor_name=DEBTOR,
            amount_minor=1,
            currency="DKK",
            description=f"Claim against {DEBTOR}",
        )
    )
    activities = make_activities(store, FileStore(work / "files", 1 << 20))
    workflow_id = info_request_workflow_id(case_id)
    with ThreadPoolExecutor(8) as executor:
        async with build_worker(client, activities, executor, "ops-view"):
            opened = await starter.request_info(
                client,
                starter.new_request(
                    case_id=case_id,
                    partner_user_id=PARTNER_USER,
                    message=MESSAGE,
                    items=[
                        RequestedItem(
                            kind=ItemKind.INVOICE_OR_CONTRACT, reason=f"{DEBTOR} denies signing"
                        )
                    ],
                ),
                task_queue="ops-view",
            )
            assert opened.task is not None
            deadline = opened.task.due_at

            # The filters the README gives an operator.
            later = (deadline + timedelta(seconds=1)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            overdue_then = (
                f"InfoRequestPhase = 'waiting_for_client' AND "
                f"ClientDeadline < '{later}' AND CaseId = '{case_id}'"
            )

            async def listed() -> bool:
                return await ids_matching(client, overdue_then) == [workflow_id]

            await eventually(listed, "the run under the overdue filter (evaluated later)")
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            assert (
                await ids_matching(
                    client,
                    f"InfoRequestPhase = 'waiting_for_client' AND ClientDeadline < '{now}' "
                    f"AND CaseId = '{case_id}'",
                )
                == []
            )
            assert workflow_id in await ids_matching(
                client, f"PartnerId = '{PARTNER.id}' AND ClientCountry = 'DK'"
            )

            handle = client.get_workflow_handle(workflow_id)
            description = await handle.describe()
            attributes = description.typed_search_attributes
            assert attributes.get(sa.CASE_ID) == case_id
            assert attributes.get(sa.CLIENT_DEADLINE) == deadline
            summary = await description.static_summary()
            details = await description.static_details()
            assert summary is not None and case_id in summary
            assert details is not None and "invoice_or_contract" in details

            metadata = await handle.query(
                "__temporal_workflow_metadata", result_type=WorkflowMetadata
            )
            assert "waiting for the client's reply" in metadata.current_details

            await starter.send_client_reply(
                client, case_id, ClientReply(reply_id="ops-r1", message=f"From {DEBTOR}")
            )

            async def deciding() -> bool:
                return workflow_id in await ids_matching(
                    client, f"InfoRequestPhase = 'waiting_for_decision' AND CaseId = '{case_id}'"
                )

            await eventually(deciding, "the phase to move to waiting_for_decision")
            metadata = await handle.query(
                "__temporal_workflow_metadata", result_type=WorkflowMetadata
            )
            assert "waiting for the partner's decision" in metadata.current_details

            history = await handle.fetch_history()
            summaries = [
                (await client.data_converter.decode([e.user_metadata.summary], [str]))[0]
                for e in history.events
                if e.HasField("user_metadata") and e.user_metadata.HasField("summary")
            ]
            for expected in (
                "Set the case to More Info Required",
                "Post the request in the case chat",
                "Create the client's task with its deadline",
                "Email: info requested",
                "reminder 1",  # the first timer: the morning of the due day
                "Post the client's reply in the case chat",
                "Close the client's task (replied)",
            ):
                assert expected in summaries, (expected, summaries)
            for text in (
                summary,
                details,
                metadata.current_details,
                *summaries,
                *(str(pair.value) for pair in attributes),
            ):
                assert DEBTOR not in text
