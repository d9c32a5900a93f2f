"""InfoRequestWorkflow: one request for missing information on one case, start to decision.

Opening: set the case to More Info Required, post the partner's message and checklist in the
case chat, create the client's task (deadline computed once, in the activity), email the
client. Then one event loop until the partner decides or withdraws:
- `client_reply` (signal): the reply reaches the chat, the items it covers become received,
  the round's task closes (replied), reminders stop, the partner is emailed;
- the deadline: the task expires, the partner is told (chat note and email);
- reminders on the schedule of the request's policy, until the client replies;
- `partner_message` (signal): posted at once, emailed to the client in bundles after a quiet
  period;
- `review_items`, `extend_deadline`, `follow_up` (a new round with a new task), `withdraw` and
  `decide` (updates, each with a validator that says what is wrong in words).
Every `rounds_per_run` follow-up rounds the run continues as new with its state, so the history
stays bounded however many rounds a request takes.

The steps run as local activities: they are short database writes and one HTTP call, so
running them inside the workflow task saves a round trip to the server per step and most of
the history events (see docs/workflow-api.md). They are still recorded in the history (as
markers with a summary) and never re-run on replay.
"""

from __future__ import annotations

import contextlib
import functools
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
        ChecklistInput,
        CloseTaskInput,
        CreateTaskInput,
        EmailKind,
        EndRequest,
        InfoRequestActivities,
        MoveDeadlineInput,
        OpenRequest,
        PostMessageInput,
        SendEmailInput,
        SetStatusInput,
    )
    from domain.ids import reply_message_key
    from domain.models import (
        CarriedState,
        CaseStatus,
        ChecklistItem,
        ClientReply,
        Decision,
        DecisionOutcome,
        ExtendDeadline,
        FollowUp,
        InfoRequestInput,
        ItemStatus,
        PartnerMessage,
        Phase,
        ReplyView,
        RequestedItem,
        RequestOutcome,
        RequestState,
        RequestSummary,
        ReviewItems,
        TaskOutcome,
        TaskView,
        Withdrawal,
    )

STEP_TIMEOUT = timedelta(seconds=30)
# A step that fails (database or SendGrid away) is retried for as long as it takes, at most a
# minute apart, so a request moves on within a minute of the outage's end. Waits longer than
# STEP_RETRY_IN_WORKER are timers in the history (one action each) instead of keeping the
# workflow task open and heartbeating (an action every ~8 s).
STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)
STEP_RETRY_IN_WORKER = timedelta(seconds=10)
MIN_TIMER = timedelta(milliseconds=1)
# Patch (workflow.patched): search attributes are upserted only when a value changes, never at
# the end, and CaseStatus is no longer one of them (see _publish).
UPSERT_ONLY_CHANGES = "upsert-only-changes"

T = TypeVar("T")


def _checklist(items: list[RequestedItem], round_: int, first_number: int) -> list[ChecklistItem]:
    return [
        ChecklistItem(
            item_id=f"i{n}",
            kind=item.kind,
            reason=item.reason,
            description=item.description,
            round=round_,
        )
        for n, item in enumerate(items, start=first_number)
    ]


@workflow.defn(name="InfoRequestWorkflow", failure_exception_types=[pydantic.ValidationError])
class InfoRequestWorkflow:
    @workflow.init
    def __init__(self, request: InfoRequestInput) -> None:
        self._request = request
        self._policy = request.policy
        carried = request.carried
        self._requested_at: datetime | None = carried.requested_at if carried else None
        self._round = carried.round if carried else 1
        self._phase = carried.phase if carried else Phase.OPENING
        self._case_status = carried.case_status if carried else CaseStatus.PENDING_VERIFICATION
        self._task: TaskView | None = carried.task if carried else None
        self._items = list(carried.items) if carried else _checklist(list(request.items), 1, 1)
        self._seen_reply_ids = set(carried.seen_reply_ids) if carried else set[str]()
        self._seen_message_ids = set(carried.seen_message_ids) if carried else set[str]()
        self._replies: list[ReplyView] = list(carried.replies) if carried else []
        self._reminders_sent = carried.reminders_sent if carried else 0
        self._follow_up: FollowUp | None = None
        self._round_started_at = carried.round_started_at if carried else None
        self._reply_in_round = carried.reply_in_round if carried else False
        self._last_reminder_at = carried.last_reminder_at if carried else None
        self._unrecorded_replies: deque[tuple[ClientReply, datetime]] = deque()
        self._unposted_messages: deque[PartnerMessage] = deque()
        self._bundle: list[str] = []
        self._bundle_key: str | None = None
        self._bundle_due: datetime | None = None
        self._reviews: deque[ReviewItems] = deque()
        self._reviews_recorded = 0
        self._extension: ExtendDeadline | None = None
        self._decision: Decision | None = None
        self._withdrawal: Withdrawal | None = None
        self._summary: RequestSummary | None = None
        self._open_error: ApplicationError | None = None
        self._rounds_in_run = 0
        self._upsert_only_changes = True

    # ---- the run ----------------------------------------------------------------------------

    @workflow.run
    async def run(self, request: InfoRequestInput) -> RequestSummary:
        # Runs started before this patch upsert every attribute at each phase and at the end;
        # they replay as they were recorded (tests/histories).
        self._upsert_only_changes = workflow.patched(UPSERT_ONLY_CHANGES)
        if request.carried is None:
            self._requested_at = workflow.now()
            try:
                await self._open_first_round()
            except (ActivityError, ApplicationError) as e:
                # Nothing was written: the case is unknown, not in its first review, or a file
                # is missing. Tell the caller waiting on `opened` before the run fails.
                self._open_error = _as_request_error(e)
                await workflow.wait_condition(workflow.all_handlers_finished)
                raise self._open_error from e
        while True:
            summary = await self._handle_next()
            if summary is not None:
                return summary

    async def _handle_next(self) -> RequestSummary | None:
        """Do the most urgent pending thing, or wait for the next; the summary once done."""
        if self._unrecorded_replies:
            await self._record_replies()
        elif self._unposted_messages:
            await self._post_partner_messages()
        elif self._reviews:
            await self._record_reviews()
        elif self._extension is not None:
            await self._apply_extension(self._extension)
        elif self._withdrawal is not None or self._decision is not None:
            return await self._finish()
        elif self._follow_up is not None:
            await self._open_follow_up_round(self._follow_up)
        elif self._task_open() and self._reached(self._due_at()):
            await self._expire()
        elif self._reached(self._next_reminder_at()):
            await self._send_reminder()
        elif self._reached(self._bundle_due):
            await self._flush_bundle()
        elif (
            self._rounds_in_run >= self._policy.rounds_per_run and workflow.all_handlers_finished()
        ):
            await self._continue_as_new()
        else:
            await self._wait_for_next()
        return None

    async def _wait_for_next(self) -> None:
        wakes = [
            (t, what)
            for t, what in (
                (self._due_at() if self._task_open() else None, "client deadline"),
                (self._next_reminder_at(), f"reminder {self._reminders_sent + 1}"),
                (self._bundle_due, "quiet period before emailing the partner's messages"),
            )
            if t is not None
        ]
        if not wakes:
            await workflow.wait_condition(self._has_work)
            return
        wake, what = min(wakes, key=lambda pair: pair[0])
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                self._has_work,
                timeout=max(wake - workflow.now(), MIN_TIMER),
                timeout_summary=what,
            )

    def _has_work(self) -> bool:
        return bool(
            self._unrecorded_replies
            or self._unposted_messages
            or self._reviews
            or self._extension is not None
            or self._withdrawal is not None
            or self._decision is not None
            or self._follow_up is not None
        )

    def _reached(self, instant: datetime | None) -> bool:
        return instant is not None and workflow.now() >= instant

    def _task_open(self) -> bool:
        return self._task is not None and self._task.outcome is TaskOutcome.OPEN

    def _due_at(self) -> datetime | None:
        return self._task.due_at if self._task else None

    def _next_reminder_at(self) -> datetime | None:
        """Reminders stop at the client's reply, and after the policy's maximum."""
        if self._task is None or self._reply_in_round:
            return None
        if self._reminders_sent >= self._policy.max_reminders:
            return None
        after = self._last_reminder_at or self._round_started_at
        pending = [t for t in self._task.reminders_at if after is None or t > after]
        return min(pending) if pending else None

    # ---- rounds -------------------------------------------------------------------------------

    async def _open_first_round(self) -> None:
        request, key = self._request, self._request.request_id
        assert self._requested_at is not None
        self._case_status = await self._step(
            InfoRequestActivities.set_case_status,
            SetStatusInput(
                case_id=request.case_id,
                new_status=CaseStatus.MORE_INFO_REQUIRED,
                changed_by=request.partner_user_id,
                idempotency_key=f"{key}:open:status",
                opens=OpenRequest(
                    request_id=key,
                    requested_at=self._requested_at,
                    items=self._items,
                    attachments=list(request.attachments),
                ),
            ),
            "Set the case to More Info Required",
        )
        await self._step(
            InfoRequestActivities.post_chat_message,
            PostMessageInput(
                case_id=request.case_id,
                kind="message",
                author_user_id=request.partner_user_id,
                body=_request_chat_text(request.message, self._items),
                attachments=list(request.attachments),
                idempotency_key=f"{key}:open:message",
            ),
            "Post the request in the case chat",
        )
        await self._start_round(
            task_key=f"{key}:task",
            requested_at=self._requested_at,
            email=(EmailKind.INFO_REQUESTED, "open:email"),
            message=request.message,
        )
        self._meters.opened.add(1)

    async def _open_follow_up_round(self, follow_up: FollowUp) -> None:
        key = self._request.request_id
        self._round += 1
        self._rounds_in_run += 1
        # Asked again: every item not accepted. A rejected one stays rejected, with its reason,
        # so the round's message and email say what was wrong with what was sent.
        self._items = [
            item
            if item.status in (ItemStatus.ACCEPTED, ItemStatus.REJECTED)
            else item.model_copy(update={"status": ItemStatus.REQUESTED})
            for item in self._items
        ] + _checklist(list(follow_up.new_items), self._round, len(self._items) + 1)
        started = workflow.now()
        prefix = f"{key}:r{self._round}"
        await self._step(
            InfoRequestActivities.post_chat_message,
            PostMessageInput(
                case_id=self._request.case_id,
                kind="message",
                author_user_id=follow_up.requested_by,
                body=_request_chat_text(
                    follow_up.message,
                    [i for i in self._items if i.status is not ItemStatus.ACCEPTED],
                    heading=f"Still needed (round {self._round}):",
                ),
                idempotency_key=f"{prefix}:message",
            ),
            f"Post follow-up round {self._round} in the case chat",
        )
        await self._record_checklist(f"{prefix}:checklist", None)
        await self._start_round(
            task_key=f"{prefix}:task",
            requested_at=started,
            email=(EmailKind.FOLLOW_UP, f"r{self._round}:email"),
            message=follow_up.message,
        )
        self._follow_up = None

    async def _start_round(
        self,
        *,
        task_key: str,
        requested_at: datetime,
        email: tuple[EmailKind, str],
        message: str,
    ) -> None:
        created = await self._step(
            InfoRequestActivities.create_client_task,
            CreateTaskInput(
                case_id=self._request.case_id,
                request_id=self._request.request_id,
                requested_by=self._request.partner_user_id,
                requested_at=requested_at,
                items=[
                    RequestedItem(kind=i.kind, reason=i.reason, description=i.description)
                    for i in self._items
                    if i.status is not ItemStatus.ACCEPTED
                ],
                idempotency_key=task_key,
                round=self._round,
                policy=self._policy,
            ),
            f"Create the client's task with its deadline (round {self._round})"
            if self._round > 1
            else "Create the client's task with its deadline",
        )
        self._task = created.task
        self._round_started_at = requested_at
        self._reply_in_round = bool(self._unrecorded_replies)  # a reply during the opening
        self._reminders_sent = 0
        self._last_reminder_at = None
        kind, step = email
        await self._email(
            kind,
            step,
            items=list(self._request.items),
            checklist=self._items,
            message=message,
            due_at=self._task.due_at,
        )
        self._phase = Phase.WAITING_FOR_CLIENT
        self._publish(
            sa.CASE_ID.value_set(self._request.case_id),
            sa.CLIENT_DEADLINE.value_set(self._task.due_at),
            sa.CLIENT_COUNTRY.value_set(created.client_country),
            sa.PARTNER_ID.value_set(created.partner_id),
        )

    async def _continue_as_new(self) -> None:
        """Hand the state to a new run (called only while idle, with no handler mid-way), so
        the history stays bounded however many rounds a request takes."""
        if self._bundle:
            await self._flush_bundle()
        assert self._requested_at is not None
        carried = CarriedState(
            requested_at=self._requested_at,
            round=self._round,
            phase=self._phase,
            case_status=self._case_status,
            task=self._task,
            items=self._items,
            seen_reply_ids=sorted(self._seen_reply_ids),
            seen_message_ids=sorted(self._seen_message_ids),
            replies=self._replies,
            reminders_sent=self._reminders_sent,
            round_started_at=self._round_started_at,
            last_reminder_at=self._last_reminder_at,
            reply_in_round=self._reply_in_round,
        )
        workflow.continue_as_new(self._request.model_copy(update={"carried": carried}))

    # ---- what happens in a round --------------------------------------------------------------

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
                    reply_to_request=request.request_id,
                ),
                "Post the client's reply in the case chat",
            )
            if not self._replies:
                self._meters.time_to_reply.record(
                    int((received_at - (self._requested_at or received_at)).total_seconds())
                )
            self._replies.append(
                ReplyView(
                    reply_id=reply.reply_id,
                    received_at=received_at,
                    attachments=len(reply.attachments),
                )
            )
            self._meters.replies.add(1)
            self._reply_in_round = True
            covered = self._mark_received(reply.covers)
            if self._task_open():
                await self._close_task(TaskOutcome.REPLIED)
            if covered:
                await self._record_checklist(
                    f"{request.request_id}:reply:{reply.reply_id}:checklist",
                    f"Marked as received: {', '.join(covered)}.",
                )
            await self._email(
                EmailKind.CLIENT_REPLIED, f"reply:{reply.reply_id}:email", replied_at=received_at
            )
            if self._phase is Phase.WAITING_FOR_CLIENT:
                self._phase = Phase.WAITING_FOR_DECISION
                self._publish()

    def _mark_received(self, covers: list[str]) -> list[str]:
        """Items the reply covers (all still-open ones when it names none) become received."""
        open_ids = [
            i.item_id
            for i in self._items
            if i.status in (ItemStatus.REQUESTED, ItemStatus.REJECTED)
        ]
        covered = [i for i in open_ids if not covers or i in covers]
        self._items = [
            i.model_copy(update={"status": ItemStatus.RECEIVED}) if i.item_id in covered else i
            for i in self._items
        ]
        return covered

    async def _expire(self) -> None:
        await self._close_task(TaskOutcome.EXPIRED)
        self._meters.expired.add(1)
        assert self._task is not None
        await self._email(
            EmailKind.REQUEST_EXPIRED,
            f"r{self._round}:expired:email" if self._round > 1 else "expired:email",
            due_at=self._task.due_at,
        )
        self._phase = Phase.WAITING_FOR_DECISION
        self._publish()

    async def _send_reminder(self) -> None:
        assert self._task is not None
        at = self._next_reminder_at()
        self._reminders_sent += 1
        self._last_reminder_at = at
        number = self._reminders_sent
        step = f"r{self._round}:reminder:{number}"
        await self._step(
            InfoRequestActivities.post_chat_message,
            PostMessageInput(
                case_id=self._request.case_id,
                kind="system",
                author_user_id=None,
                body=f"Reminder {number} sent to the client (due {self._task.due_local}).",
                idempotency_key=f"{self._request.request_id}:{step}:note",
            ),
            f"Note reminder {number} in the case chat",
        )
        await self._email(
            EmailKind.REMINDER,
            f"{step}:email",
            checklist=self._items,
            due_at=self._task.due_at,
            reminder_number=number,
        )

    async def _post_partner_messages(self) -> None:
        """Post each message now; email them together once the chat has been quiet."""
        while self._unposted_messages:
            message = self._unposted_messages.popleft()
            await self._step(
                InfoRequestActivities.post_chat_message,
                PostMessageInput(
                    case_id=self._request.case_id,
                    kind="message",
                    author_user_id=message.author_user_id,
                    body=message.message,
                    attachments=list(message.attachments),
                    idempotency_key=f"{self._request.request_id}:msg:{message.message_id}",
                ),
                "Post the partner's message in the case chat",
            )
            if self._bundle_key is None:
                self._bundle_key = f"msg:{message.message_id}:email"
            self._bundle.append(message.message)
            self._bundle_due = workflow.now() + timedelta(seconds=self._policy.bundle_quiet_seconds)

    async def _flush_bundle(self) -> None:
        assert self._bundle_key is not None
        await self._email(EmailKind.PARTNER_MESSAGES, self._bundle_key, messages=self._bundle)
        self._bundle, self._bundle_key, self._bundle_due = [], None, None

    async def _record_reviews(self) -> None:
        while self._reviews:
            review = self._reviews.popleft()
            self._reviews_recorded += 1
            outcome = "; ".join(
                f"{r.item_id} accepted" if r.accepted else f"{r.item_id} rejected ({r.reason})"
                for r in review.reviews
            )
            # The count restarts in each run (continue-as-new): the run ID keeps keys unique.
            await self._record_checklist(
                f"{self._request.request_id}:review:{workflow.info().run_id}:"
                f"{self._reviews_recorded}",
                f"Checklist reviewed by {review.reviewed_by}: {outcome}.",
            )

    async def _apply_extension(self, extension: ExtendDeadline) -> None:
        assert self._task is not None and self._round_started_at is not None
        self._task = await self._step(
            InfoRequestActivities.move_task_deadline,
            MoveDeadlineInput(
                case_id=self._request.case_id,
                task=self._task,
                round_requested_at=self._round_started_at,
                new_due_at=extension.new_due_at,
                requested_by=extension.requested_by,
                policy=self._policy,
            ),
            "Extend the client's deadline",
        )
        self._extension = None
        self._publish(sa.CLIENT_DEADLINE.value_set(self._task.due_at))

    async def _finish(self) -> RequestSummary:
        """Apply the decision or the withdrawal, then end with the summary."""
        request, key = self._request, self._request.request_id
        assert self._task is not None and self._requested_at is not None
        if self._task_open():
            await self._close_task(TaskOutcome.CANCELLED)
        if self._bundle:
            await self._flush_bundle()
        decision, withdrawal = self._decision, self._withdrawal
        if withdrawal is not None:
            new_status, close_code, by = (
                CaseStatus.PENDING_VERIFICATION,
                None,
                withdrawal.requested_by,
            )
            outcome = RequestOutcome.WITHDRAWN
        else:
            assert decision is not None
            accepted = decision.outcome is DecisionOutcome.ACCEPT
            new_status = CaseStatus.ACTIVE if accepted else CaseStatus.CLOSED
            close_code, by = decision.close_code, decision.decided_by
            outcome = RequestOutcome.ACCEPTED if accepted else RequestOutcome.CLOSED
        self._case_status = await self._step(
            InfoRequestActivities.set_case_status,
            SetStatusInput(
                case_id=request.case_id,
                new_status=new_status,
                close_code=close_code,
                changed_by=by,
                idempotency_key=f"{key}:decision:status",
                ends=EndRequest(request_id=key, outcome=outcome),
            ),
            "Withdraw the request" if withdrawal else "Apply the partner's decision to the case",
        )
        if withdrawal is not None:
            await self._email(
                EmailKind.REQUEST_WITHDRAWN, "withdrawn:email", note=withdrawal.reason
            )
        else:
            assert decision is not None
            await self._email(
                EmailKind.CASE_DECIDED,
                "decision:email",
                close_code=decision.close_code,
                note=decision.note,
            )
        await self._record_replies()  # any that arrived while the decision was applied
        if self._unposted_messages:  # the partner wrote while the decision was applied
            await self._post_partner_messages()
            await self._flush_bundle()
        self._summary = RequestSummary(
            request_id=key,
            case_id=request.case_id,
            final_status=self._case_status,
            close_code=close_code,
            task_outcome=self._task.outcome,
            replies=len(self._replies),
            requested_at=self._requested_at,
            decided_at=workflow.now(),
            outcome=outcome,
            rounds=self._round,
            items=self._items,
        )
        self._phase = Phase.DONE
        if self._upsert_only_changes:
            # No upsert at the end (it would cost an action): the closed run's status and
            # result say how it ended; InfoRequestPhase keeps the last phase it waited in.
            workflow.set_current_details(self._current_details())
        else:
            self._publish()
        self._meters.decisions.add(1, {"outcome": outcome.value})
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
        self._reply_in_round = True  # stops reminders at once
        self._unrecorded_replies.append((reply, workflow.now()))

    @workflow.signal(name="partner_message")
    def partner_message(self, message: PartnerMessage) -> None:
        """The partner wrote in the chat. A message ID seen before changes nothing."""
        if message.message_id in self._seen_message_ids or self._phase is Phase.DONE:
            return
        self._seen_message_ids.add(message.message_id)
        self._unposted_messages.append(message)

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
        self._refuse_when_ended()
        if (
            decision.outcome is DecisionOutcome.ACCEPT
            and not self._reply_in_round
            and (self._task is None or self._task.outcome is not TaskOutcome.EXPIRED)
        ):
            due = f" ({self._task.due_local})" if self._task else ""
            raise ApplicationError(
                f"case {self._request.case_id} cannot be accepted yet: the client has not "
                f"replied and the deadline{due} has not passed. Wait for the reply or the "
                "deadline, or close the case with a close code.",
                type="TooEarlyToAccept",
            )

    @workflow.update(name="withdraw")
    async def withdraw(self, withdrawal: Withdrawal) -> RequestSummary:
        """Take the request back: the case returns to Pending Verification, the task is
        cancelled and the client told."""
        self._withdrawal = withdrawal
        await workflow.wait_condition(lambda: self._summary is not None)
        assert self._summary is not None
        return self._summary

    @withdraw.validator
    def _validate_withdrawal(self, withdrawal: Withdrawal) -> None:
        self._refuse_when_ended()

    @workflow.update(name="review_items")
    def review_items(self, review: ReviewItems) -> RequestState:
        """Accept or reject checklist items; returns the state with the checklist."""
        verdicts = {r.item_id: r for r in review.reviews}
        self._items = [
            item.model_copy(
                update={
                    "status": ItemStatus.ACCEPTED
                    if verdicts[item.item_id].accepted
                    else ItemStatus.REJECTED,
                    "rejection_reason": None
                    if verdicts[item.item_id].accepted
                    else verdicts[item.item_id].reason,
                }
            )
            if item.item_id in verdicts
            else item
            for item in self._items
        ]
        self._reviews.append(review)
        return self.state()

    @review_items.validator
    def _validate_review(self, review: ReviewItems) -> None:
        self._refuse_when_ended()
        known = {i.item_id for i in self._items}
        unknown = sorted({r.item_id for r in review.reviews} - known)
        if unknown:
            raise ApplicationError(
                f"case {self._request.case_id} has no checklist item {', '.join(unknown)}; "
                f"its items are {', '.join(sorted(known))}",
                type="UnknownItem",
            )

    @workflow.update(name="follow_up")
    async def follow_up(self, follow_up: FollowUp) -> RequestState:
        """Ask again, within the same request, for what is still missing (every item not
        accepted, plus any new ones): a new round with a new task and deadline. Returns the
        state once the round is open."""
        target = self._round + 1
        self._follow_up = follow_up
        await workflow.wait_condition(
            lambda: (self._round >= target and self._follow_up is None) or self._summary is not None
        )
        return self.state()

    @follow_up.validator
    def _validate_follow_up(self, follow_up: FollowUp) -> None:
        self._refuse_when_ended()
        case_id = self._request.case_id
        if self._follow_up is not None:
            raise ApplicationError(
                f"case {case_id}: a follow-up round is already being opened",
                type="FollowUpPending",
            )
        if self._phase is not Phase.WAITING_FOR_DECISION:
            raise ApplicationError(
                f"case {case_id}: the client's task of round {self._round} is still open; a "
                "follow-up can be sent once the client replied or the deadline passed",
                type="RoundStillOpen",
            )
        outstanding = [i for i in self._items if i.status is not ItemStatus.ACCEPTED]
        if not outstanding and not follow_up.new_items:
            raise ApplicationError(
                f"case {case_id}: every item is accepted; name new items to ask for more",
                type="NothingOutstanding",
            )

    @workflow.update(name="extend_deadline")
    async def extend_deadline(self, extension: ExtendDeadline) -> RequestState:
        """Move the open task's deadline later; the timer, the reminders, the task and the
        ClientDeadline search attribute follow. Returns the state with the moved task."""
        self._extension = extension
        await workflow.wait_condition(lambda: self._extension is None)
        return self.state()

    @extend_deadline.validator
    def _validate_extension(self, extension: ExtendDeadline) -> None:
        self._refuse_when_ended()
        case_id = self._request.case_id
        task = self._task
        if task is None or task.outcome is not TaskOutcome.OPEN or self._extension is not None:
            raise ApplicationError(
                f"case {case_id} has no open client task whose deadline could move",
                type="NoOpenTask",
            )
        if extension.new_due_at <= workflow.now():
            raise ApplicationError(
                f"case {case_id}: the new deadline {extension.new_due_at.isoformat()} is in "
                "the past",
                type="DeadlineInPast",
            )
        if extension.new_due_at <= task.due_at:
            raise ApplicationError(
                f"case {case_id}: the new deadline must be later than the current one "
                f"({task.due_local})",
                type="DeadlineNotLater",
            )
        if task.latest_due_at is not None and extension.new_due_at > task.latest_due_at:
            raise ApplicationError(
                f"case {case_id}: the deadline can move to {task.latest_due_at.isoformat()} at "
                f"the latest ({self._policy.max_deadline_business_days} business days after "
                "the round was requested)",
                type="DeadlineTooLate",
            )

    def _refuse_when_ended(self) -> None:
        case_id = self._request.case_id
        # Taken during the opening, an update would wait on an opening that may yet be
        # refused, and then the run could never end.
        if self._open_error is not None:
            raise ApplicationError(
                f"the info request on case {case_id} was refused: {self._open_error.message}",
                type="RequestRefused",
            )
        if self._phase is Phase.OPENING:
            raise ApplicationError(
                f"the info request on case {case_id} is still opening; try again in a moment",
                type="NotOpenYet",
            )
        if self._withdrawal is not None:
            raise ApplicationError(
                f"the info request on case {case_id} was withdrawn", type="AlreadyWithdrawn"
            )
        if self._decision is not None:
            raise ApplicationError(
                f"case {case_id} was already decided ({self._decision.outcome.value}); "
                "a request takes one decision",
                type="AlreadyDecided",
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
            round=self._round,
            items=list(self._items),
            reminders_sent=self._reminders_sent,
            withdrawn=self._withdrawal is not None,
        )

    @functools.cached_property
    def _meters(self) -> _Metrics:
        """Created once a run, at first use (the meter belongs to the running workflow)."""
        return _Metrics()

    # ---- what operators see ----------------------------------------------------------------

    def _publish(self, *extra: SearchAttributeUpdate[Any]) -> None:
        """Say what the run waits for, and upsert the search attributes whose value changed:
        each upsert is a billable action, so one the run started with (the starter's forecast)
        or already set is not sent again. Only IDs, codes and dates: no personal data reaches
        Temporal's visibility store."""
        workflow.set_current_details(self._current_details())
        if not self._upsert_only_changes:
            workflow.upsert_search_attributes(
                [
                    sa.LEGACY_CASE_STATUS.value_set(self._case_status.value),
                    sa.INFO_REQUEST_PHASE.value_set(self._phase.value),
                    *extra,
                ]
            )
            return
        current = workflow.info().typed_search_attributes
        changed = [
            update
            for update in (sa.INFO_REQUEST_PHASE.value_set(self._phase.value), *extra)
            if current.get(update.key) != update.value
        ]
        if changed:
            workflow.upsert_search_attributes(changed)

    def _current_details(self) -> str:
        case = self._request.case_id
        match self._phase:
            case Phase.OPENING:
                return f"Opening the request on case {case}"
            case Phase.WAITING_FOR_CLIENT:
                due = self._task.due_at.isoformat() if self._task else "?"
                return (
                    f"Round {self._round}: waiting for the client's reply (signal "
                    f"`client_reply`) or the deadline {due}; a `decide` update with a "
                    "close, or `withdraw`, ends the wait"
                )
            case Phase.WAITING_FOR_DECISION:
                outcome = self._task.outcome.value if self._task else "?"
                return (
                    f"Round {self._round}: task {outcome}; waiting for the partner's decision "
                    "(update `decide`: accept, or close with a close code) or a `follow_up`"
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
            local_retry_threshold=STEP_RETRY_IN_WORKER,
            summary=summary,
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

    async def _record_checklist(self, key: str, note: str | None) -> None:
        await self._step(
            InfoRequestActivities.record_checklist,
            ChecklistInput(
                case_id=self._request.case_id,
                request_id=self._request.request_id,
                items=self._items,
                note=note,
                idempotency_key=key,
            ),
            "Record the checklist",
        )

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
            "info_request_decisions", "How requests ended, by outcome (accepted, closed, withdrawn)"
        )
        self.time_to_reply = meter.create_histogram(
            "info_request_time_to_reply", "From the request to the client's first reply", "s"
        )


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


def _request_chat_text(
    message: str, items: list[ChecklistItem], heading: str = "Requested:"
) -> str:
    lines = [message, "", heading]
    for item in items:
        lines.append(f"{item.item_id}. {item.label()} (why: {item.reason})")
        if item.status is ItemStatus.REJECTED and item.rejection_reason:
            lines.append(f"    not accepted yet: {item.rejection_reason}")
    return "\n".join(lines)
