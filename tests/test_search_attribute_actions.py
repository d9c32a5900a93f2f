"""Search-attribute upserts are billable actions: a run sends one only when a value changes.

With the forecast a store-reading starter gives (starter.forecast), the reply path has a single
upsert (InfoRequestPhase=waiting_for_decision); without it the run publishes what its opening
found; a forecast that turned out wrong is corrected by the run.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

import starter
import workflows.search_attributes as sa
from domain.ids import info_request_workflow_id
from starter.forecast import OpeningForecast, forecast_opening
from tests.conftest import CLIENT_DK, PARTNER, Stack, add_case
from tests.test_workflow import accept, reply, request_for, wait_for


async def upserted(handle: WorkflowHandle[object, object]) -> list[set[str]]:
    """The attribute names of each billable upsert in the run's history, in order. The SDK's
    own upsert of TemporalChangeVersion (with a workflow patch) is exempt from billing."""
    history = await handle.fetch_history()
    upserts = [
        set(e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields)
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
    ]
    return [names for names in upserts if names != {"TemporalChangeVersion"}]


async def test_forecast_leaves_one_upsert_on_the_reply_path(
    stack: Stack, time_skipping_env: WorkflowEnvironment
) -> None:
    case_id = add_case(stack.store)
    request = request_for(case_id)
    now = await time_skipping_env.get_current_time()
    forecast = forecast_opening(stack.store, request, now)
    assert forecast is not None
    opened = await starter.request_info(
        stack.client, request, task_queue=stack.task_queue, forecast=forecast
    )
    assert opened.task is not None and forecast.client_deadline == opened.task.due_at
    handle = stack.client.get_workflow_handle(info_request_workflow_id(case_id))
    assert await upserted(handle) == []  # started with what the opening found

    described = await handle.describe()
    attributes = described.typed_search_attributes
    assert attributes.get(sa.CLIENT_DEADLINE) == opened.task.due_at
    assert attributes.get(sa.CLIENT_COUNTRY) == CLIENT_DK.country
    assert attributes.get(sa.PARTNER_ID) == PARTNER.id
    assert attributes.get(sa.INFO_REQUEST_PHASE) == "waiting_for_client"

    await starter.send_client_reply(stack.client, case_id, reply())
    await wait_for(
        lambda: stack.store.tasks(case_id=case_id)[0].status == "replied", "the task to close"
    )
    await starter.decide(stack.client, case_id, accept())
    assert await upserted(handle) == [{"InfoRequestPhase"}]  # the partner's turn; none at the end


async def test_without_a_forecast_the_run_publishes_the_opening_once(stack: Stack) -> None:
    case_id = add_case(stack.store)
    opened = await starter.request_info(
        stack.client, request_for(case_id), task_queue=stack.task_queue
    )
    handle = stack.client.get_workflow_handle(info_request_workflow_id(case_id))
    assert await upserted(handle) == [
        {"InfoRequestPhase", "ClientDeadline", "ClientCountry", "PartnerId"}
    ]
    assert opened.task is not None
    attributes = (await handle.describe()).typed_search_attributes
    assert attributes.get(sa.CLIENT_DEADLINE) == opened.task.due_at
    assert attributes.get(sa.INFO_REQUEST_PHASE) == "waiting_for_client"


async def test_a_wrong_forecast_is_corrected_by_the_run(
    stack: Stack, time_skipping_env: WorkflowEnvironment
) -> None:
    case_id = add_case(stack.store)
    request = request_for(case_id)
    wrong = OpeningForecast(
        client_deadline=await time_skipping_env.get_current_time() + timedelta(days=30),
        client_country=CLIENT_DK.country,
        partner_id=PARTNER.id,
    )
    opened = await starter.request_info(
        stack.client, request, task_queue=stack.task_queue, forecast=wrong
    )
    handle = stack.client.get_workflow_handle(info_request_workflow_id(case_id))
    assert await upserted(handle) == [{"ClientDeadline"}]
    assert opened.task is not None
    attributes = (await handle.describe()).typed_search_attributes
    assert attributes.get(sa.CLIENT_DEADLINE) == opened.task.due_at
