"""An update Temporal refuses as not ready (FAILED_PRECONDITION "Workflow Task in failed state",
while a run's workflow task keeps failing) reaches callers as RequestError("try_again"), and the
API as a 503 with Retry-After: a passing state, not a refusal of the action itself. For the
`opened` update of a run just started it is "not_confirmed" instead (the run exists). The fault
suite meets the real refusal (tests/faults/test_worker_kills.py); this pins the mapping."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.service import RPCError, RPCStatusCode

import starter
from api.routes_partner import _refused
from domain.models import Decision, DecisionOutcome, ItemKind, RequestedItem


class _RefusingHandle:
    async def execute_update(self, *_args: Any, **_kwargs: Any) -> Any:
        raise RPCError("Workflow Task in failed state.", RPCStatusCode.FAILED_PRECONDITION, b"")


class _Client:
    def get_workflow_handle(self, *_args: Any, **_kwargs: Any) -> _RefusingHandle:
        return _RefusingHandle()

    async def start_workflow(self, *_args: Any, **_kwargs: Any) -> _RefusingHandle:
        return _RefusingHandle()


async def test_an_update_refused_as_not_ready_is_try_again() -> None:
    decision = Decision(outcome=DecisionOutcome.ACCEPT, decided_by="U-1")
    with pytest.raises(starter.RequestError) as refused:
        await starter.decide(_Client(), "C-1", decision)  # type: ignore[arg-type]
    assert refused.value.code == "try_again"
    assert "C-1" in refused.value.message and "nothing was changed" in refused.value.message

    answer = _refused(refused.value)
    assert answer.status == 503 and answer.headers == {"Retry-After": "5"}


async def test_a_started_request_refused_as_not_ready_is_not_confirmed() -> None:
    """The run exists already: asking again would be refused, so the caller is told to look
    at its state (the API's 504, as when a confirmation times out), not to retry."""
    request = starter.new_request(
        case_id="C-1",
        partner_user_id="U-1",
        items=[RequestedItem(kind=ItemKind.INVOICE_OR_CONTRACT, reason="Proves the claim")],
        message="Please send it.",
    )
    with pytest.raises(starter.RequestError) as refused:
        await starter.request_info(_Client(), request)  # type: ignore[arg-type]
    assert refused.value.code == "not_confirmed"
    assert "was started" in refused.value.message and "try again" not in refused.value.message
    assert _refused(refused.value).status == 504
