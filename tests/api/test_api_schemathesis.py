"""Property-based run of the whole OpenAPI document (schemathesis): whatever a caller sends,
valid or not, with either role's token, at real or made-up cases, no answer is a 500.

Hypothesis drives the requests from a worker thread and schemathesis runs the app on its own
event loop; this test's loop stays free to run the Temporal worker the app talks to.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode

import starter
from domain.models import ItemKind, RequestedItem
from tests.api.conftest import Api, shared_api
from tests.api.files import PDF_BYTES
from tests.conftest import CLIENT_USER, PARTNER_USER, add_case

# Examples per operation, role and kind of path; 16 operations x 2 roles x 3 runs each.
POSITIVE_EXAMPLES = 12
NEGATIVE_EXAMPLES = 6


@pytest.fixture(scope="module", params=["sqlite"])
async def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Api]:
    async with shared_api(request, tmp_path_factory.mktemp("fuzz"), request.param) as api:
        yield api


async def _real_cases(api: Api) -> tuple[str, str, str]:
    """A pending case with a file, and a case waiting for the client's reply."""
    pending = add_case(api.stack.store)
    ref = api.stack.files.put_bytes(PDF_BYTES, filename="i.pdf", content_type="application/pdf")
    api.stack.store.post_message(
        case_id=pending,
        kind="message",
        author_user_id=CLIENT_USER,
        body="The invoice.",
        attachments=[ref],
        idempotency_key=f"{pending}:fuzz",
    )
    waiting = add_case(api.stack.store)
    await starter.request_info(
        api.stack.client,
        starter.new_request(
            case_id=waiting,
            partner_user_id=PARTNER_USER,
            items=[RequestedItem(kind=ItemKind.OTHER, reason="r", description="d")],
            message="Please send it.",
        ),
        task_queue=api.stack.task_queue,
    )
    return pending, waiting, ref.sha256


async def test_no_input_gives_a_server_error(world: Api) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.app)
    pending, waiting, sha = await _real_cases(world)
    operations = [r.ok() for r in schema.get_all_operations() if isinstance(r, Ok)]
    assert len(operations) == 16
    calls: list[int] = []

    def fuzz() -> None:
        for operation in operations:
            names = {p.name for p in operation.path_parameters}
            for user in (CLIENT_USER, PARTNER_USER):
                headers = world.auth(user)
                real: list[dict[str, Any]] = [{}]
                if "case_id" in names:
                    real += [
                        {"case_id": case_id, **({"sha256": sha} if "sha256" in names else {})}
                        for case_id in (pending, waiting)
                    ]
                for path_parameters in real:
                    _run(operation, headers, path_parameters, GenerationMode.POSITIVE, calls)
                _run(operation, headers, {}, GenerationMode.NEGATIVE, calls)

    await asyncio.to_thread(fuzz)
    assert len(calls) > 500
    assert not [status for status in calls if status >= 500]


def _run(
    operation: Any,
    headers: dict[str, str],
    path_parameters: dict[str, str],
    mode: GenerationMode,
    calls: list[int],
) -> None:
    strategy = operation.as_strategy(
        generation_mode=mode, headers=headers, path_parameters=path_parameters or None
    )
    examples = POSITIVE_EXAMPLES if mode is GenerationMode.POSITIVE else NEGATIVE_EXAMPLES

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def check(case: Any) -> None:
        response = case.call()
        calls.append(response.status_code)
        case.validate_response(response, checks=[not_a_server_error])

    try:
        check()
    except Unsatisfiable:
        # Nothing in this operation can be made invalid (every string is a valid path).
        assert mode is GenerationMode.NEGATIVE
