"""An update Temporal refuses as not ready (FAILED_PRECONDITION "Workflow Task in failed state",
while a run's workflow task keeps failing) reaches callers as RequestError("try_again"), and the
API as a 503 with Retry-After: a passing state, not a refusal of the action itself. The fault
suite meets the real refusal (tests/faults/test_worker_kills.py); this pins the mapping."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.service import RPCError, RPCStatusCode

import starter
from api.routes_partner import _refused
from domain.models import Decision, DecisionOutcome


class _RefusingHandle:
    async def execute_update(self, *_args: Any, **_kwargs: Any) -> Any:
        raise RPCError("Workflow Task in failed state.", RPCStatusCode.FAILED_PRECONDITION, b"")


class _Client:
    def get_workflow_handle(self, *_args: Any, **_kwargs: Any) -> _RefusingHandle:
        return _RefusingHandle()


async def test_an_update_refused_as_not_ready_is_try_again() -> None:
    decision = Decision(outcome=DecisionOutcome.ACCEPT, decided_by="U-1")
    with pytest.raises(starter.RequestError) as refused:
        await starter.decide(_Client(), "C-1", decision)  # type: ignore[arg-type]
    assert refused.value.code == "try_again"
    assert "C-1" in refused.value.message and "nothing was changed" in refused.value.message

    answer = _refused(refused.value)
    assert answer.status == 503 and answer.headers == {"Retry-After": "5"}
