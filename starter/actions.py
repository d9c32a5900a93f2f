"""The actions on an info request, over Temporal. Each takes a connected client."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TypeVar

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

import workflows.search_attributes as sa
from config import request_policy_from_env
from domain.ids import info_request_workflow_id
from domain.models import (
    ClientReply,
    Decision,
    ExtendDeadline,
    FileRef,
    FollowUp,
    InfoRequestInput,
    PartnerMessage,
    Phase,
    RequestedItem,
    RequestPolicy,
    RequestState,
    RequestSummary,
    ReviewItems,
    Withdrawal,
)
from starter.forecast import OpeningForecast
from workflows import TASK_QUEUE
from workflows.info_request import InfoRequestWorkflow

R = TypeVar("R", bound=BaseModel)


class RequestError(Exception):
    """An action was refused. `code` is stable for programs; the message is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def new_request(
    *,
    case_id: str,
    partner_user_id: str,
    items: Sequence[RequestedItem],
    message: str,
    attachments: Sequence[FileRef] = (),
    policy: RequestPolicy | None = None,
) -> InfoRequestInput:
    """Build (and validate) a request with a fresh request ID; the timing rules come from
    the environment (config.request_policy_from_env) unless given."""
    return InfoRequestInput(
        request_id=uuid.uuid4().hex,
        case_id=case_id,
        partner_user_id=partner_user_id,
        items=list(items),
        message=message,
        attachments=list(attachments),
        policy=policy or request_policy_from_env(),
    )


async def request_info(
    client: Client,
    request: InfoRequestInput,
    *,
    task_queue: str = TASK_QUEUE,
    forecast: OpeningForecast | None = None,
) -> RequestState:
    """Open the request and return once the case is More Info Required, the message posted,
    the task created and the client emailed; RequestError if it was refused.

    With a `forecast` (starter.forecast.forecast_opening, for callers that can read the case
    store) the run starts with the search attributes its opening would otherwise upsert."""
    attributes = (
        forecast.search_attributes()
        if forecast is not None
        else [SearchAttributePair(sa.INFO_REQUEST_PHASE, Phase.OPENING.value)]
    )
    try:
        handle = await client.start_workflow(
            InfoRequestWorkflow.run,
            request,
            id=info_request_workflow_id(request.case_id),
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(sa.CASE_ID, request.case_id), *attributes]
            ),
            static_summary=f"Info request on case {request.case_id}: {len(request.items)} item(s)",
            static_details=_static_details(request),
        )
    except WorkflowAlreadyStartedError as e:
        raise RequestError(
            "request_already_open",
            f"case {request.case_id} already has an open info request; reply to it or decide "
            "it before asking again",
        ) from e
    try:
        state: RequestState = await handle.execute_update("opened", result_type=RequestState)
        return state
    except WorkflowUpdateFailedError as e:
        raise _refusal(e.cause, request.case_id) from e
    except RPCError as e:
        if e.status is RPCStatusCode.FAILED_PRECONDITION:
            # The run has started but cannot answer yet: asking again would be refused as
            # already open, so say so and point to its state.
            raise RequestError(
                "not_confirmed",
                f"the info request on case {request.case_id} was started but has not confirmed "
                "it is open (its workflow is recovering from failed workflow tasks); look at its "
                "state before asking again",
            ) from e
        # The run failed before the update reached it; its failure says why.
        if e.status is not RPCStatusCode.NOT_FOUND:
            raise
        try:
            await handle.result()
        except WorkflowFailureError as failure:
            raise _refusal(failure.cause, request.case_id) from failure
        raise


async def send_client_reply(client: Client, case_id: str, reply: ClientReply) -> None:
    """Deliver the client's reply (as a client portal does). A repeated reply ID is a no-op."""
    handle = client.get_workflow_handle(info_request_workflow_id(case_id))
    try:
        await handle.signal(InfoRequestWorkflow.client_reply, reply)
    except RPCError as e:
        raise await _no_open_request(client, case_id, e) from e


async def decide(client: Client, case_id: str, decision: Decision) -> RequestSummary:
    """Accept the case (Active) or close it with a code (Closed); returns the request's
    summary once the status has changed. RequestError with the rule if refused."""
    return await _update(client, case_id, "decide", decision, RequestSummary)


async def withdraw(client: Client, case_id: str, withdrawal: Withdrawal) -> RequestSummary:
    """Take the request back: the case returns to Pending Verification, the task is cancelled
    and the client told."""
    return await _update(client, case_id, "withdraw", withdrawal, RequestSummary)


async def review_items(client: Client, case_id: str, review: ReviewItems) -> RequestState:
    """Accept or reject checklist items (a rejection carries the reason the client sees)."""
    return await _update(client, case_id, "review_items", review, RequestState)


async def follow_up(client: Client, case_id: str, follow_up: FollowUp) -> RequestState:
    """Open another round for what is still missing (new task, new deadline)."""
    return await _update(client, case_id, "follow_up", follow_up, RequestState)


async def extend_deadline(client: Client, case_id: str, extension: ExtendDeadline) -> RequestState:
    """Move the open task's deadline later (not into the past, not past the policy's limit)."""
    return await _update(client, case_id, "extend_deadline", extension, RequestState)


async def send_partner_message(client: Client, case_id: str, message: PartnerMessage) -> None:
    """Post the partner's message in the case chat; the client gets it by email after the
    quiet period, bundled with any others. A repeated message ID is a no-op."""
    handle = client.get_workflow_handle(info_request_workflow_id(case_id))
    try:
        await handle.signal(InfoRequestWorkflow.partner_message, message)
    except RPCError as e:
        raise await _no_open_request(client, case_id, e) from e


async def _update(
    client: Client, case_id: str, name: str, arg: BaseModel, result_type: type[R]
) -> R:
    handle = client.get_workflow_handle(info_request_workflow_id(case_id))
    try:
        result: R = await handle.execute_update(name, arg, result_type=result_type)
        return result
    except WorkflowUpdateFailedError as e:
        raise _refusal(e.cause, case_id) from e
    except RPCError as e:
        if e.status is RPCStatusCode.FAILED_PRECONDITION:
            raise _not_ready(case_id, name) from e
        raise await _no_open_request(client, case_id, e) from e


def _not_ready(case_id: str, update: str) -> RequestError:
    """Temporal refuses updates while a run's workflow task keeps failing (workers crashing
    or unable to run it) until one completes: a passing state, worth a retry."""
    return RequestError(
        "try_again",
        f"the info request on case {case_id} cannot take `{update}` right now: its workflow "
        "is recovering from failed workflow tasks; nothing was changed, try again shortly",
    )


async def get_state(client: Client, case_id: str) -> RequestState:
    """The latest request's state (open or finished)."""
    handle: WorkflowHandle[InfoRequestWorkflow, RequestSummary] = client.get_workflow_handle(
        info_request_workflow_id(case_id), result_type=RequestSummary
    )
    try:
        return await handle.query(InfoRequestWorkflow.state)
    except RPCError as e:
        if e.status is RPCStatusCode.NOT_FOUND:
            raise RequestError("no_request", f"case {case_id} has no info request") from e
        raise


def _static_details(request: InfoRequestInput) -> str:
    """What the operator sees in the Web UI: IDs and item kinds only, no free text (the
    reasons and message may name the debtor)."""
    kinds = "\n".join(f"- {item.kind.value}" for item in request.items)
    return (
        f"**Case** {request.case_id}  \n**Request** {request.request_id}  \n"
        f"**Requested by** {request.partner_user_id}  \n"
        f"**Attachments** {len(request.attachments)}\n\n**Items**\n{kinds}"
    )


def _refusal(cause: BaseException | None, case_id: str) -> RequestError:
    if isinstance(cause, ApplicationError):
        return RequestError(_code(cause.type), cause.message)
    return RequestError("refused", f"the action on case {case_id} was refused: {cause}")


def _code(error_type: str | None) -> str:
    """'InvalidTransition' -> 'invalid_transition'."""
    name = error_type or "Refused"
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


async def _no_open_request(client: Client, case_id: str, error: RPCError) -> Exception:
    if error.status is not RPCStatusCode.NOT_FOUND:
        return error
    handle = client.get_workflow_handle(info_request_workflow_id(case_id))
    try:
        status = (await handle.describe()).status
    except RPCError:
        return RequestError("no_request", f"case {case_id} has no info request")
    if status is not WorkflowExecutionStatus.RUNNING:
        return RequestError(
            "request_closed",
            f"the info request on case {case_id} is closed (decided or withdrawn); "
            "nothing was delivered",
        )
    return error
