"""InfoRequestWorkflow: one request for missing information on one case, start to decision.

Steps, each an idempotent activity: set the case to More Info Required, post the partner's
message in the case chat, create the client's task (deadline computed once, in the activity),
email the client. Then wait for the `client_reply` signal or the deadline; close the task
(replied or expired); then wait for the `decide` update (accept -> Active, close -> Closed).

The steps run as local activities: they are short database writes and one HTTP call, so
running them inside the workflow task saves a round trip to the server per step and most of
the history events (see docs/workflow-api.md). They are still recorded in the history (as
markers) and replayed from it, never re-run on replay.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pydantic
from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    import workflows.search_attributes as sa
    from activities.info_request import (
        CloseTaskInput,
        CreateTaskInput,
        EmailKind,
        InfoRequestActivities,
        OpenRequest,
        PostMessageInput,
        SendEmailInput,
        SetStatusInput,
    )
    from domain.ids import reply_message_key
    from domain.models import (
        CaseStatus,
        ClientReply,
        Decision,
        DecisionOutcome,
        InfoRequestInput,
        Phase,
        ReplyView,
        RequestedItem,
        RequestState,
        RequestSummary,
        TaskOutcome,
        TaskView,
    )


STEP_TIMEOUT = timedelta(seconds=30)
STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
)

T = TypeVar("T")


@workflow.defn(name="InfoRequestWorkflow", failure_exception_types=[pydantic.ValidationError])
class InfoRequestWorkflow:
    @workflow.init
    def __init__(self, request: InfoRequestInput) -> None:
        self._request = request
        self._phase = Phase.OPENING
        self._case_status = CaseStatus.PENDING_VERIFICATION
        self._task: TaskView | None = None
        self._seen_reply_ids: set[str] = set()
        self._unrecorded_replies: deque[tuple[ClientReply, datetime]] = deque()
        self._replies: list[ReplyView] = []
        self._decision: Decision | None = None
        self._summary: RequestSummary | None = None
        self._open_error: ApplicationError | None = None

    # ---- the run ----------------------------------------------------------------------------

    @workflow.run
    async def run(self, request: InfoRequestInput) -> RequestSummary:
        requested_at = workflow.now()
        key = request.request_id
        try:
            self._case_status = await self._step(
                InfoRequestActivities.set_case_status,
                SetStatusInput(
                    case_id=request.case_id,
                    new_status=CaseStatus.MORE_INFO_REQUIRED,
                    changed_by=request.partner_user_id,
                    idempotency_key=f"{key}:open:status",
                    opens=OpenRequest(
                        request_id=key,
                        requested_at=requested_at,
                        items=list(request.items),
                        attachments=list(request.attachments),
                    ),
                ),
                "Set the case to More Info Required",
            )
        except (ActivityError, ApplicationError) as e:
            # Nothing was written: the case is unknown or not in its first review. Tell the
            # caller waiting on `opened` before the run fails with the same error.
            self._open_error = _as_request_error(e)
            await workflow.wait_condition(workflow.all_handlers_finished)
            raise self._open_error from e
        await self._step(
            InfoRequestActivities.post_chat_message,
            PostMessageInput(
                case_id=request.case_id,
                kind="message",
                author_user_id=request.partner_user_id,
                body=_request_chat_text(request.message, list(request.items)),
                attachments=list(request.attachments),
                idempotency_key=f"{key}:open:message",
            ),
            "Post the request in the case chat",
        )
        created = await self._step(
            InfoRequestActivities.create_client_task,
            CreateTaskInput(
                case_id=request.case_id,
                request_id=key,
                requested_by=request.partner_user_id,
                requested_at=requested_at,
                items=list(request.items),
                idempotency_key=f"{key}:task",
            ),
            "Create the client's task with its deadline",
        )
        self._task = created.task
        await self._email(
            EmailKind.INFO_REQUESTED,
            "open:email",
            items=list(request.items),
            message=request.message,
            due_at=self._task.due_at,
        )

        self._phase = Phase.WAITING_FOR_CLIENT
        self._publish(
            sa.CASE_ID.value_set(request.case_id),
            sa.CLIENT_DEADLINE.value_set(self._task.due_at),
            sa.CLIENT_COUNTRY.value_set(created.client_country),
            sa.PARTNER_ID.value_set(created.partner_id),
        )
        _metrics().opened.add(1)
        until_deadline = max(self._task.due_at - workflow.now(), timedelta(0))
        try:
            await workflow.wait_condition(
                lambda: bool(self._unrecorded_replies) or self._decision is not None,
                timeout=until_deadline,
                timeout_summary="client deadline",
            )
            if self._unrecorded_replies:
                await self._record_replies()
            else:
                await self._close_task(TaskOutcome.CANCELLED)
        except TimeoutError:
            await self._close_task(TaskOutcome.EXPIRED)
            _metrics().expired.add(1)
            await self._email(EmailKind.REQUEST_EXPIRED, "expired:email", due_at=self._task.due_at)

        self._phase = Phase.WAITING_FOR_DECISION
        self._publish()
        while True:
            await workflow.wait_condition(
                lambda: bool(self._unrecorded_replies) or self._decision is not None
            )
            if self._unrecorded_replies:
                await self._record_replies()  # late replies still reach the chat
            elif self._decision is not None:
                break

        decision = self._decision
        assert decision is not None
        self._case_status = await self._step(
            InfoRequestActivities.set_case_status,
            SetStatusInput(
                case_id=request.case_id,
                new_status=CaseStatus.ACTIVE
                if decision.outcome is DecisionOutcome.ACCEPT
                else CaseStatus.CLOSED,
                close_code=decision.close_code,
                changed_by=decision.decided_by,
                idempotency_key=f"{key}:decision:status",
            ),
            "Apply the partner's decision to the case",
        )
        await self._email(
            EmailKind.CASE_DECIDED,
            "decision:email",
            close_code=decision.close_code,
            note=decision.note,
        )
        await self._record_replies()  # any that arrived while the decision was applied
        self._summary = RequestSummary(
            request_id=key,
            case_id=request.case_id,
            final_status=self._case_status,
            close_code=decision.close_code,
            task_outcome=self._task.outcome,
            replies=len(self._replies),
            requested_at=requested_at,
            decided_at=workflow.now(),
        )
        self._phase = Phase.DONE
        self._publish()
        _metrics().decisions.add(1, {"outcome": decision.outcome.value})
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._summary

    # ---- messages in ------------------------------------------------------------------------

    @workflow.signal(name="client_reply")
    def client_reply(self, reply: ClientReply) -> None:
        """The client answered. A reply ID seen before changes nothing."""
        if reply.reply_id in self._seen_reply_ids:
            return
        if self._phase is Phase.DONE:
            workflow.logger.warning(
                "reply after the decision ignored", extra={"reply_id": reply.reply_id}
            )
            return
        self._seen_reply_ids.add(reply.reply_id)
        self._unrecorded_replies.append((reply, workflow.now()))

    @workflow.update(name="opened")
    async def opened(self) -> RequestState:
        """Returns once the request is open (status set, message, task, email), or fails
        with the reason it was refused; lets a caller learn the outcome at once."""
        await workflow.wait_condition(
            lambda: self._phase is not Phase.OPENING or self._open_error is not None
        )
        if self._open_error is not None:
            raise self._open_error
        return self.state()

    @workflow.update(name="decide")
    async def decide(self, decision: Decision) -> RequestSummary:
        """Accept (-> Active) or close with a code (-> Closed); returns the run's summary."""
        self._decision = decision
        await workflow.wait_condition(lambda: self._summary is not None)
        assert self._summary is not None
        return self._summary

    @decide.validator
    def _validate_decision(self, decision: Decision) -> None:
        case_id = self._request.case_id
        if self._decision is not None:
            raise ApplicationError(
                f"case {case_id} was already decided ({self._decision.outcome.value}); "
                "a request takes one decision",
                type="AlreadyDecided",
            )
        if (
            decision.outcome is DecisionOutcome.ACCEPT
            and not self._seen_reply_ids
            and (self._task is None or self._task.outcome is not TaskOutcome.EXPIRED)
        ):
            due = f" ({self._task.due_local})" if self._task else ""
            raise ApplicationError(
                f"case {case_id} cannot be accepted yet: the client has not replied and the "
                f"deadline{due} has not passed. Wait for the reply or the deadline, or close "
                "the case with a close code.",
                type="TooEarlyToAccept",
            )

    @workflow.query(name="state")
    def state(self) -> RequestState:
        return RequestState(
            request_id=self._request.request_id,
            case_id=self._request.case_id,
            phase=self._phase,
            case_status=self._case_status,
            task=self._task,
            replies=list(self._replies),
            decision=self._decision,
        )

    # ---- what operators see ----------------------------------------------------------------

    def _publish(self, *extra: SearchAttributeUpdate[Any]) -> None:
        """Upsert the search attributes that changed and say what the run waits for. Only
        IDs, codes and dates: no personal data reaches Temporal's visibility store."""
        workflow.upsert_search_attributes(
            [
                sa.CASE_STATUS.value_set(self._case_status.value),
                sa.INFO_REQUEST_PHASE.value_set(self._phase.value),
                *extra,
            ]
        )
        workflow.set_current_details(self._current_details())

    def _current_details(self) -> str:
        case = self._request.case_id
        match self._phase:
            case Phase.OPENING:
                return f"Opening the request on case {case}"
            case Phase.WAITING_FOR_CLIENT:
                due = self._task.due_at.isoformat() if self._task else "?"
                return (
                    f"Waiting for the client's reply (signal `client_reply`) or the deadline "
                    f"{due} UTC; a `decide` update with a close ends the wait"
                )
            case Phase.WAITING_FOR_DECISION:
                outcome = self._task.outcome.value if self._task else "?"
                return (
                    f"Task {outcome}; waiting for the partner's decision (update `decide`: "
                    "accept, or close with a close code)"
                )
            case Phase.DONE:
                return f"Done: case {case} is {self._case_status.value}"

    # ---- steps --------------------------------------------------------------------------------

    async def _step(self, activity: Callable[[Any, Any], T], arg: Any, summary: str) -> T:
        return await workflow.execute_local_activity_method(
            activity,
            arg,
            start_to_close_timeout=STEP_TIMEOUT,
            retry_policy=STEP_RETRY,
            summary=summary,
        )

    async def _record_replies(self) -> None:
        request = self._request
        while self._unrecorded_replies:
            reply, received_at = self._unrecorded_replies.popleft()
            await self._step(
                InfoRequestActivities.post_chat_message,
                PostMessageInput(
                    case_id=request.case_id,
                    kind="message",
                    author_user_id=reply.client_user_id,
                    body=reply.message,
                    attachments=list(reply.attachments),
                    idempotency_key=reply_message_key(request.case_id, reply.reply_id),
                    drop_missing_attachments=True,
                ),
                "Post the client's reply in the case chat",
            )
            self._replies.append(
                ReplyView(
                    reply_id=reply.reply_id,
                    received_at=received_at,
                    attachments=len(reply.attachments),
                )
            )
            _metrics().replies.add(1)
            if self._task is not None and self._task.outcome is TaskOutcome.OPEN:
                await self._close_task(TaskOutcome.REPLIED)
                _metrics().time_to_reply.record(
                    int((received_at - workflow.info().start_time).total_seconds())
                )
            await self._email(
                EmailKind.CLIENT_REPLIED, f"reply:{reply.reply_id}:email", replied_at=received_at
            )

    async def _close_task(self, outcome: TaskOutcome) -> None:
        assert self._task is not None
        closed = await self._step(
            InfoRequestActivities.close_client_task,
            CloseTaskInput(
                case_id=self._request.case_id, task_key=self._task.task_id, outcome=outcome
            ),
            f"Close the client's task ({outcome.value})",
        )
        self._task = self._task.model_copy(update={"outcome": closed})

    async def _email(self, kind: EmailKind, step: str, **fields: Any) -> None:
        """Send an email; one SendGrid rejects is reported in the chat and the request goes on."""
        request = self._request
        try:
            await self._step(
                InfoRequestActivities.send_email,
                SendEmailInput(
                    kind=kind,
                    case_id=request.case_id,
                    partner_user_id=request.partner_user_id,
                    idempotency_key=f"{request.request_id}:{step}",
                    **fields,
                ),
                f"Email: {kind.value.replace('_', ' ')}",
            )
        except (ActivityError, ApplicationError) as e:
            rejection = _application_error(e)
            if rejection is None or rejection.type != "EmailRejected":
                raise
            reason = rejection.message
            await self._step(
                InfoRequestActivities.post_chat_message,
                PostMessageInput(
                    case_id=request.case_id,
                    kind="system",
                    author_user_id=None,
                    body=f"An email could not be delivered: {reason}",
                    idempotency_key=f"{request.request_id}:{step}:failed",
                ),
                "Tell the partner an email was rejected",
            )


class _Metrics:
    """Our own metrics (beside the SDK's), emitted by the worker; silent during replay."""

    def __init__(self) -> None:
        meter = workflow.metric_meter()
        self.opened = meter.create_counter("info_requests_opened", "Info requests opened")
        self.replies = meter.create_counter("info_request_replies", "Client replies recorded")
        self.expired = meter.create_counter(
            "info_request_expiries", "Client tasks that expired without a reply"
        )
        self.decisions = meter.create_counter(
            "info_request_decisions", "Decisions, by outcome (accept or close)"
        )
        self.time_to_reply = meter.create_histogram(
            "info_request_time_to_reply", "From the request to the client's first reply", "s"
        )


def _metrics() -> _Metrics:
    return _Metrics()


def _application_error(error: BaseException) -> ApplicationError | None:
    """The activity's own error: local activities raise it bare, regular ones wrap it."""
    if isinstance(error, ActivityError):
        error = error.cause or error
    return error if isinstance(error, ApplicationError) else None


def _as_request_error(error: BaseException) -> ApplicationError:
    cause = _application_error(error)
    if cause is not None:
        return ApplicationError(cause.message, type=cause.type, non_retryable=True)
    return ApplicationError(str(error), type="RequestFailed", non_retryable=True)


def _request_chat_text(message: str, items: list[RequestedItem]) -> str:
    lines = [message, "", "Requested:"]
    lines += [f"{n}. {item.label()} (why: {item.reason})" for n, item in enumerate(items, 1)]
    return "\n".join(lines)
