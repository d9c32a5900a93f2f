"""An update that reaches a run while it opens.

The opening is held with an event (the store's status change waits on it), so the update
arrives exactly then: it is refused (NotOpenYet) instead of waiting on an opening that may fail
and leave the run unable to end; once open, the same update applies.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import starter
from domain.models import CaseStatus, Withdrawal
from tests.conftest import PARTNER_USER, Stack, add_case
from tests.test_workflow import request_for


@pytest.fixture
def held_status(stack: Stack) -> Iterator[dict[CaseStatus, threading.Event]]:
    """Status changes to a status in the dict wait until its event is set."""
    held: dict[CaseStatus, threading.Event] = {}
    change_status = stack.store.change_status

    def waiting(**kwargs: Any) -> CaseStatus:
        event = held.get(kwargs["new_status"])
        if event is not None:
            event.wait(timeout=30)
        return change_status(**kwargs)

    stack.store.change_status = waiting  # type: ignore[method-assign]
    yield held
    for event in held.values():
        event.set()


async def test_an_update_during_the_opening_is_refused_until_it_is_open(
    stack: Stack, held_status: dict[CaseStatus, threading.Event]
) -> None:
    case_id = add_case(stack.store)
    opening = held_status[CaseStatus.MORE_INFO_REQUIRED] = threading.Event()
    opened = asyncio.create_task(
        starter.request_info(stack.client, request_for(case_id), task_queue=stack.task_queue)
    )
    withdrawal = Withdrawal(requested_by=PARTNER_USER, reason="Sent by mistake")

    async def refused_as_opening() -> bool:
        try:
            await starter.withdraw(stack.client, case_id, withdrawal)
        except starter.RequestError as e:
            assert e.code == "not_open_yet", e
            return True
        except Exception:  # the run has not been started yet
            return False
        raise AssertionError("a withdrawal during the opening was taken")

    for _ in range(200):
        if await refused_as_opening():
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the run never answered during its opening")

    opening.set()
    await opened
    summary = await starter.withdraw(stack.client, case_id, withdrawal)
    assert summary.final_status is CaseStatus.PENDING_VERIFICATION
