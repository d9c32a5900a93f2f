"""What only partner users do: ask the client for missing information, and decide the case
(accept -> Active, or close with a close code). Both act through the info-request workflow."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError

import starter
from api.access import require_case, scope_of
from api.auth import Context, PartnerUser
from api.context import ApiContext
from api.errors import ApiError, error_responses, invalid_from
from api.present import task_out
from api.schemas import DecisionBody, DecisionOut, InfoRequestBody, InfoRequestOut
from domain.lifecycle import TransitionError, check_transition
from domain.models import CaseStatus, Decision
from store import queries

router = APIRouter(tags=["partner"], responses=error_responses(401, 403, 404, 409, 422, 504))

T = TypeVar("T")


async def _confirmed(ctx: ApiContext, action: Awaitable[T], what: str) -> T:
    """Wait for the workflow to confirm, but not forever (a stopped worker confirms nothing)."""
    try:
        return await asyncio.wait_for(action, ctx.temporal_timeout_seconds)
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as e:
        # Cancelled by our timeout, a waiting update raises Temporal's own error, not ours.
        raise ApiError(
            504,
            "not_confirmed",
            f"{what} was sent but not confirmed in time; look at the case before retrying",
        ) from e


def _refused(error: starter.RequestError) -> ApiError:
    status = 404 if error.code == "unknown_case" else 409
    return ApiError(status, error.code, error.message)


@router.post(
    "/cases/{case_id}/info-requests",
    status_code=201,
    summary="Request missing information from the client (partner)",
)
async def request_info(
    ctx: Context, principal: PartnerUser, case_id: str, body: InfoRequestBody
) -> InfoRequestOut:
    """Moves the case to More Info Required, posts the message in the chat, creates the
    client's task (two business days, client-local) and emails the client. Allowed only
    during the first review (Pending Verification); a case already waiting is a 409."""
    await require_case(ctx, principal, case_id)
    status = await run_in_threadpool(ctx.store.case_status, case_id)
    if status is not CaseStatus.MORE_INFO_REQUIRED:
        # Refuse here rather than start a run that can only fail; a case already waiting
        # gets the workflow's own answer (which names the open request) below.
        try:
            check_transition(case_id, status, CaseStatus.MORE_INFO_REQUIRED)
        except TransitionError as e:
            raise ApiError(409, "invalid_transition", str(e)) from e
    request = starter.new_request(
        case_id=case_id, partner_user_id=principal.user_id, items=body.items, message=body.message
    )
    try:
        state = await _confirmed(
            ctx,
            starter.request_info(ctx.temporal, request, task_queue=ctx.task_queue),
            "the request",
        )
    except starter.RequestError as e:
        raise _refused(e) from e
    rows = await run_in_threadpool(
        queries.tasks_for, ctx.store, scope_of(principal), status=None, case_id=case_id
    )
    task = next((task_out(r) for r in rows if r.task.request_id == request.request_id), None)
    return InfoRequestOut(state=state, task=task)


@router.post("/cases/{case_id}/decision", summary="Accept the case or close it (partner)")
async def decide(
    ctx: Context, principal: PartnerUser, case_id: str, body: DecisionBody
) -> DecisionOut:
    """Accept (-> Active) or close with a close code (-> Closed). A refused decision (too
    early to accept, already decided, no request) is a 409 with the reason."""
    await require_case(ctx, principal, case_id)
    try:
        decision = Decision(
            outcome=body.outcome,
            close_code=body.close_code,
            decided_by=principal.user_id,
            note=body.note,
        )
    except ValidationError as e:
        raise invalid_from(e) from e
    try:
        summary = await _confirmed(
            ctx, starter.decide(ctx.temporal, case_id, decision), "the decision"
        )
    except starter.RequestError as e:
        raise _refused(e) from e
    return DecisionOut(
        case_id=case_id,
        status=summary.final_status,
        close_code=summary.close_code,
        summary=summary,
    )
