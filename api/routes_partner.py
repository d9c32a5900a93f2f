"""What only partner users do: ask the client for missing information, write to the client
while the request is open, review the checklist, ask again (follow-up), extend the deadline,
withdraw the request, and decide the case (accept -> Active, or close with a close code). All
act through the info-request workflow; a refusal is a 409 with the workflow's code."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError

import starter
from api import files as file_rules
from api.access import require_case, scope_of
from api.auth import Context, PartnerUser
from api.context import MAX_FILES_PER_REQUEST, ApiContext
from api.errors import ApiError, error_responses, invalid, invalid_from
from api.present import task_out
from api.routes_client import IdempotencyKey
from api.schemas import (
    DeadlineBody,
    DecisionBody,
    DecisionOut,
    FileOut,
    FollowUpBody,
    InfoRequestBody,
    InfoRequestOut,
    MessageBody,
    MessageOut,
    ReviewBody,
    WithdrawalBody,
    WithdrawalOut,
)
from domain.lifecycle import TransitionError, check_transition
from domain.models import (
    CaseStatus,
    Decision,
    ExtendDeadline,
    FollowUp,
    PartnerMessage,
    Phase,
    RequestState,
    ReviewItems,
    Withdrawal,
)
from starter.forecast import forecast_opening
from store import queries
from store.tokens import Principal

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
    if error.code == "try_again":  # the run is recovering: nothing changed, retry
        return ApiError(503, error.code, error.message, headers={"Retry-After": "5"})
    if error.code == "not_confirmed":  # started, unconfirmed: as when _confirmed times out
        return ApiError(504, error.code, error.message)
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
    forecast = await run_in_threadpool(forecast_opening, ctx.store, request)
    state = await _act(
        ctx,
        starter.request_info(ctx.temporal, request, task_queue=ctx.task_queue, forecast=forecast),
        "the request",
    )
    return await _with_task(ctx, principal, state)


async def _with_task(ctx: ApiContext, principal: Principal, state: RequestState) -> InfoRequestOut:
    """The state with the client's task of the current round (the request's newest task)."""
    rows = await run_in_threadpool(
        queries.tasks_for, ctx.store, scope_of(principal), status=None, case_id=state.case_id
    )
    mine = [r for r in rows if r.task.request_id == state.request_id]
    newest = max(mine, key=lambda r: r.task.id, default=None)
    return InfoRequestOut(state=state, task=task_out(newest) if newest else None)


async def _act(ctx: ApiContext, action: Awaitable[T], what: str) -> T:
    """Run an action on the open request: confirmed in time, or the workflow's refusal."""
    try:
        return await _confirmed(ctx, action, what)
    except starter.RequestError as e:
        raise _refused(e) from e


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
    summary = await _act(ctx, starter.decide(ctx.temporal, case_id, decision), "the decision")
    return DecisionOut(
        case_id=case_id,
        status=summary.final_status,
        close_code=summary.close_code,
        summary=summary,
    )


# ---- the partner's chat message --------------------------------------------------------

_MESSAGE_FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["message"],
    "properties": {
        "message": MessageBody.model_json_schema()["properties"]["message"],
        "files": {
            "type": "array",
            "items": {"type": "string", "contentMediaType": "application/octet-stream"},
            "description": f"Up to {MAX_FILES_PER_REQUEST} files: {file_rules.ALLOWED_TYPES_TEXT}",
        },
    },
}


@router.post(
    "/cases/{case_id}/messages",
    status_code=202,
    summary="Write to the client in the case chat while a request is open (partner)",
    responses=error_responses(413, 415),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": MessageBody.model_json_schema()},
                "multipart/form-data": {"schema": _MESSAGE_FORM_SCHEMA},
                "application/x-www-form-urlencoded": {"schema": MessageBody.model_json_schema()},
            },
        }
    },
)
async def post_message(
    ctx: Context,
    principal: PartnerUser,
    case_id: str,
    request: Request,
    idempotency_key: IdempotencyKey,
) -> MessageOut:
    """`{"message": ...}` as JSON, or `message` and `files` as multipart (like a reply). The
    message is posted in the chat at once and emailed to the client after the quiet period,
    bundled with the partner's other messages. The Idempotency-Key is the message's ID: a
    retry changes nothing. No open request: 409, nothing stored."""
    await require_case(ctx, principal, case_id)
    form: FormData | None = None
    uploads: list[UploadFile] = []
    try:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type == "application/json":
            body = await _json_message(request)
        elif media_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
            form = await request.form()
            body, uploads = _form_message(form)
        else:
            raise ApiError(
                415,
                "unsupported_media_type",
                "send the message as application/json or multipart/form-data (a form "
                "without files may be application/x-www-form-urlencoded)",
            )
        state = await _open_request(ctx, case_id)
        refs = await file_rules.store_uploads(ctx.files, uploads)
    finally:
        if form is not None:
            await form.close()
    message = PartnerMessage(
        message_id=idempotency_key,
        author_user_id=principal.user_id,
        message=body.message,
        attachments=refs,
    )
    try:
        await starter.send_partner_message(ctx.temporal, case_id, message)
    except starter.RequestError as e:
        raise _refused(e) from e  # decided between our check and the signal
    return MessageOut(
        case_id=case_id,
        request_id=state.request_id,
        message_id=idempotency_key,
        status="accepted",
        files=[FileOut.of(case_id, ref) for ref in refs],
    )


async def _json_message(request: Request) -> MessageBody:
    try:
        raw = await request.json()
    except ValueError as e:
        raise invalid([{"loc": ("body",), "msg": "the body is not valid JSON"}]) from e
    try:
        return MessageBody.model_validate(raw)
    except ValidationError as e:
        raise invalid_from(e) from e


def _form_message(form: FormData) -> tuple[MessageBody, list[UploadFile]]:
    fields = set(form.keys()) - {"message", "files"}
    if fields:
        names = ", ".join(sorted(fields))
        raise invalid(
            [{"loc": ("body", name), "msg": "unknown field"} for name in sorted(fields)],
            f"the request is not valid: unknown field(s) {names}",
        )
    messages = form.getlist("message")
    if len(messages) != 1 or not isinstance(messages[0], str):
        raise invalid([{"loc": ("body", "message"), "msg": "one text field `message` is required"}])
    uploads = form.getlist("files")
    if not all(isinstance(u, UploadFile) for u in uploads):
        raise invalid([{"loc": ("body", "files"), "msg": "each `files` part must be a file"}])
    if len(uploads) > MAX_FILES_PER_REQUEST:
        raise invalid([{"loc": ("body", "files"), "msg": f"at most {MAX_FILES_PER_REQUEST} files"}])
    try:
        body = MessageBody(message=messages[0])
    except ValidationError as e:
        raise invalid_from(e) from e
    return body, [u for u in uploads if isinstance(u, UploadFile)]


async def _open_request(ctx: ApiContext, case_id: str) -> RequestState:
    """The open request's state; 409 when there is none to write in."""
    try:
        state = await starter.get_state(ctx.temporal, case_id)
    except starter.RequestError as e:
        raise ApiError(
            409, "no_open_request", f"{e.message}: a message goes with an open request"
        ) from e
    if state.phase is Phase.DONE:
        raise ApiError(
            409,
            "request_closed",
            f"the info request on case {case_id} has ended; write once a new one is open",
        )
    return state


# ---- actions on the open request ---------------------------------------------------------


@router.post(
    "/cases/{case_id}/info-request/review",
    summary="Accept or reject checklist items of the open request (partner)",
)
async def review(
    ctx: Context, principal: PartnerUser, case_id: str, body: ReviewBody
) -> InfoRequestOut:
    """`{"reviews": [{"item_id": "i1", "accepted": true}, {"item_id": "i2", "accepted":
    false, "reason": "The scan is unreadable"}]}`. A rejection needs the reason the client
    reads. An item the request does not have: 409 `unknown_item`."""
    await require_case(ctx, principal, case_id)
    review = ReviewItems(reviewed_by=principal.user_id, reviews=body.reviews)
    state = await _act(ctx, starter.review_items(ctx.temporal, case_id, review), "the review")
    return await _with_task(ctx, principal, state)


@router.post(
    "/cases/{case_id}/info-request/follow-up",
    summary="Ask again for what is still missing: a new round (partner)",
)
async def follow_up(
    ctx: Context, principal: PartnerUser, case_id: str, body: FollowUpBody
) -> InfoRequestOut:
    """Every item not accepted, plus `new_items`, in a new round with a new task and deadline;
    the client is emailed. Only once the client replied or the deadline passed (else 409
    `round_still_open`); with everything accepted and nothing new, 409 `nothing_outstanding`."""
    await require_case(ctx, principal, case_id)
    follow_up = FollowUp(
        requested_by=principal.user_id, message=body.message, new_items=body.new_items
    )
    state = await _act(
        ctx, starter.follow_up(ctx.temporal, case_id, follow_up), "the follow-up round"
    )
    return await _with_task(ctx, principal, state)


@router.post(
    "/cases/{case_id}/info-request/deadline",
    summary="Extend the open task's deadline (partner)",
)
async def extend_deadline(
    ctx: Context, principal: PartnerUser, case_id: str, body: DeadlineBody
) -> InfoRequestOut:
    """`{"due_at": "2026-12-10T23:59:59+01:00"}`: later than the current deadline, not in
    the past, at most `task.latest_due_at`; reminders follow the new deadline. Refusals: 409
    `no_open_task`, `deadline_in_past`, `deadline_not_later`, `deadline_too_late`."""
    await require_case(ctx, principal, case_id)
    try:
        extension = ExtendDeadline(requested_by=principal.user_id, new_due_at=body.due_at)
    except ValidationError as e:
        raise invalid_from(e) from e
    state = await _act(
        ctx, starter.extend_deadline(ctx.temporal, case_id, extension), "the extension"
    )
    return await _with_task(ctx, principal, state)


@router.post(
    "/cases/{case_id}/info-request/withdraw",
    summary="Withdraw the open request: the case returns to Pending Verification (partner)",
)
async def withdraw(
    ctx: Context,
    principal: PartnerUser,
    case_id: str,
    body: Annotated[WithdrawalBody | None, Body()] = None,
) -> WithdrawalOut:
    """The task is cancelled and the client told (with the `reason`, if given). The body may
    be left out. Already decided or withdrawn: 409."""
    await require_case(ctx, principal, case_id)
    withdrawal = Withdrawal(requested_by=principal.user_id, reason=body.reason if body else None)
    summary = await _act(ctx, starter.withdraw(ctx.temporal, case_id, withdrawal), "the withdrawal")
    return WithdrawalOut(case_id=case_id, status=summary.final_status, summary=summary)
