"""The command line: `python -m starter --help` (or `make cli ARGS='--help'`).

For a person at a second terminal while `make run` runs. The read commands (cases, case, chat,
tasks, emails, metrics) read the case store; the actions (request, reply, message, review,
follow-up, extend, withdraw, accept, close, state) go through Temporal with the same `starter`
functions other services call.

Exit codes: 0 done, 1 unexpected failure, 2 refused or invalid input (nothing was started),
3 Temporal (or its worker) cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import mimetypes
import sys
import textwrap
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from temporalio.client import Client
from temporalio.envconfig import ClientConfig
from temporalio.service import RPCError, RPCStatusCode

import starter
from codec.keys import KeyRingError
from config import SettingError, Settings
from domain.models import (
    CaseStatus,
    ChecklistItem,
    ClientReply,
    CloseCode,
    Decision,
    ExtendDeadline,
    FileRef,
    FollowUp,
    InfoRequestInput,
    ItemKind,
    ItemReview,
    ItemStatus,
    PartnerMessage,
    RequestedItem,
    RequestOutcome,
    RequestState,
    RequestSummary,
    ReviewItems,
    TaskOutcome,
    Withdrawal,
)
from mail.templates import local_time_text
from starter.connection import DEFAULT_ADDRESS
from starter.forecast import forecast_opening
from store import queries, views
from store.cases import CaseStore, UnknownCase
from store.files import FileStore, FileTooLarge
from store.response_metrics import GroupBy, PartyResponseMetrics, response_metrics

EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_UNREACHABLE = 0, 1, 2, 3
# How long to wait for Temporal (and, for updates and queries, a worker) before giving up.
TEMPORAL_WAIT_SECONDS = 30.0
_UNREACHABLE = {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED}

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class CliError(Exception):
    """Input refused before anything happened: printed as `error: ...`, exit 2."""


class Unreachable(Exception):
    """Temporal or its worker did not answer: exit 3."""


@dataclass(frozen=True)
class Output:
    data: Any  # printed as JSON with --json (pydantic models, lists and dicts of them)
    text: str  # printed otherwise


Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, Output]]


# ---- reading the case store --------------------------------------------------------------


def _case_store() -> CaseStore:
    return CaseStore.from_url(Settings.from_env().database_url)


async def cmd_cases(args: argparse.Namespace) -> Output:
    store = _case_store()
    if store.party(args.partner) is None:
        raise CliError(f"unknown partner {args.partner!r}: no party has that ID")
    status = CaseStatus(args.status) if args.status else None
    cases = store.list_cases(partner_id=args.partner, status=status)
    rows = [
        [
            c.id,
            c.reference,
            c.client_name,
            _status(c.status, c.close_code),
            _money(c.amount_minor, c.currency),
            _when(c.updated_at),
        ]
        for c in cases
    ]
    empty = f"no cases received by {args.partner}" + (f" with status {status}" if status else "")
    text = _table(["ID", "REFERENCE", "CLIENT", "STATUS", "AMOUNT", "UPDATED"], rows) or empty
    return Output(cases, text)


async def cmd_case(args: argparse.Namespace) -> Output:
    store = _case_store()
    detail = store.case_detail(args.case_id)
    c, tz = detail.case, detail.client.time_zone
    chat = store.chat(c.id)
    tasks = store.tasks(case_id=c.id)
    history = store.status_history(c.id)
    emails = store.emails(c.id)
    state, state_note = await _live_state(c.id)
    live = _state_text(state) if state else state_note or ""
    stored = queries.info_requests(store, c.id)
    if state is None and stored:
        # Temporal cannot say: the checklist as the case store last recorded it.
        items = [ChecklistItem.model_validate(i) for i in stored[-1].items]
        live += "\n" + _checklist_text(items, "checklist (as last recorded in the case store)")

    text = "\n\n".join(
        [
            "\n".join(
                [
                    f"Case {c.id}  {c.reference}  {_status(c.status, c.close_code)}",
                    f"  client   {c.client_name} ({c.client_id}, {detail.client.country}, {tz})",
                    f"  partner  {c.partner_id}",
                    f"  debtor   {detail.debtor_name}",
                    f"  amount   {_money(c.amount_minor, c.currency)}",
                    f"  about    {detail.description}",
                    f"  created  {_when(c.created_at)}, updated {_when(c.updated_at)}",
                ]
            ),
            _section(
                "Files",
                [
                    f"{_file(f.file)}, by {f.uploaded_by} at {_when(f.created_at)}"
                    for f in detail.files
                ],
            ),
            _section("Chat", [_chat_entry(m) for m in chat]),
            _section("Tasks", [_task_entry(t, tz) for t in tasks]),
            _section(
                "Status history",
                [
                    f"{_when(h.created_at)}  {h.from_status or '(new)'} -> "
                    f"{_status(h.to_status, h.close_code)}  by {h.changed_by}"
                    for h in history
                ],
            ),
            _section(
                "Emails",
                [
                    f"#{e.id} {e.status} via {e.transport}  to {e.to_email}: {e.subject}"
                    for e in emails
                ],
            ),
            "Info request (live, from Temporal)\n" + textwrap.indent(live, "  "),
        ]
    )
    data = {
        "case": detail,
        "chat": chat,
        "tasks": [_task_data(t, tz) for t in tasks],
        "status_history": history,
        "emails": emails,
        "state": state,
        "state_note": state_note,
    }
    return Output(data, text)


async def cmd_chat(args: argparse.Namespace) -> Output:
    store = _case_store()
    store.case_status(args.case_id)  # UnknownCase if there is none
    chat = store.chat(args.case_id)
    return Output(chat, "\n".join(_chat_entry(m) for m in chat) or "the chat is empty")


async def cmd_tasks(args: argparse.Namespace) -> Output:
    store = _case_store()
    tasks = store.tasks(assignee_party_id=args.party, status=args.status)
    zones: dict[str, str] = {}
    for t in tasks:
        if t.assignee_party_id not in zones:
            party = store.party(t.assignee_party_id)
            zones[t.assignee_party_id] = party.time_zone if party else "UTC"
    rows = [
        [
            f"#{t.id}",
            t.case_id,
            t.assignee_party_id,
            t.status,
            local_time_text(t.due_at, zones[t.assignee_party_id]),
            _when(t.due_at),
            t.title,
        ]
        for t in tasks
    ]
    headers = ["TASK", "CASE", "CLIENT", "STATUS", "DUE (CLIENT'S TIME)", "DUE (UTC)", "TITLE"]
    data = [_task_data(t, zones[t.assignee_party_id]) for t in tasks]
    return Output(data, _table(headers, rows) or "no tasks")


async def cmd_emails(args: argparse.Namespace) -> Output:
    store = _case_store()
    if args.case:
        store.case_status(args.case)  # UnknownCase if there is none
    emails = store.emails(args.case)
    separator = "\n" + "-" * 78 + "\n"
    return Output(emails, separator.join(_email_text(e) for e in emails) or "no emails")


# ---- acting through Temporal ---------------------------------------------------------------


async def cmd_request(args: argparse.Namespace) -> Output:
    paths = _existing_files(args.file)
    items = _parse_items(args.item)

    def build(attachments: Sequence[FileRef]) -> InfoRequestInput:
        return starter.new_request(
            case_id=args.case_id,
            partner_user_id=args.by,
            items=items,
            message=args.message,
            attachments=attachments,
        )

    request = _built_with_files(build, paths)
    forecast = forecast_opening(_case_store(), request)
    client = await _connect()
    state = await _answer(
        starter.request_info(client, request, forecast=forecast),
        f"opening the request (it may have started; see `state {args.case_id}`)",
    )
    text = f"Info request opened on case {args.case_id}.\n" + _state_text(state)
    return Output(state, text)


async def cmd_reply(args: argparse.Namespace) -> Output:
    paths = _existing_files(args.file)
    reply_id = args.reply_id or uuid.uuid4().hex

    def build(attachments: Sequence[FileRef]) -> ClientReply:
        return ClientReply(
            reply_id=reply_id,
            client_user_id=args.as_user,
            message=args.message,
            attachments=list(attachments),
        )

    reply = _built_with_files(build, paths)
    client = await _connect()
    await _answer(starter.send_client_reply(client, args.case_id, reply), "sending the reply")
    text = (
        f"Reply sent on case {args.case_id} (reply ID {reply_id}).\n"
        f"Sending it again with --reply-id {reply_id} changes nothing."
    )
    return Output({"case_id": args.case_id, "reply_id": reply_id, "sent": True}, text)


async def cmd_message(args: argparse.Namespace) -> Output:
    paths = _existing_files(args.file)
    message_id = args.message_id or uuid.uuid4().hex

    def build(attachments: Sequence[FileRef]) -> PartnerMessage:
        return PartnerMessage(
            message_id=message_id,
            author_user_id=args.by,
            message=args.message,
            attachments=list(attachments),
        )

    message = _built_with_files(build, paths)
    client = await _connect()
    await _answer(
        starter.send_partner_message(client, args.case_id, message), "sending the message"
    )
    text = (
        f"Message sent on case {args.case_id} (message ID {message_id}); it appears in the chat "
        "at once and reaches the client by email after the quiet period, bundled with any "
        f"others.\nSending it again with --message-id {message_id} changes nothing."
    )
    return Output({"case_id": args.case_id, "message_id": message_id, "sent": True}, text)


async def cmd_review(args: argparse.Namespace) -> Output:
    if not args.reviews:
        raise CliError("name at least one item: --accept ITEM_ID or --reject ITEM_ID:REASON")
    review = ReviewItems(reviewed_by=args.by, reviews=_reviews(args.reviews))
    client = await _connect()
    state = await _answer(
        starter.review_items(client, args.case_id, review), "recording the review"
    )
    return Output(state, f"Checklist reviewed on case {args.case_id}.\n" + _state_text(state))


async def cmd_follow_up(args: argparse.Namespace) -> Output:
    follow_up = FollowUp(
        requested_by=args.by, message=args.message, new_items=_parse_items(args.item)
    )
    client = await _connect()
    state = await _answer(
        starter.follow_up(client, args.case_id, follow_up),
        f"opening the follow-up round (it may have opened; see `state {args.case_id}`)",
    )
    text = f"Follow-up round {state.round} opened on case {args.case_id}.\n" + _state_text(state)
    return Output(state, text)


async def cmd_extend(args: argparse.Namespace) -> Output:
    extension = ExtendDeadline(requested_by=args.by, new_due_at=_deadline(args.case_id, args.until))
    client = await _connect()
    state = await _answer(
        starter.extend_deadline(client, args.case_id, extension), "extending the deadline"
    )
    text = f"Deadline extended on case {args.case_id}.\n" + _state_text(state)
    return Output(state, text)


async def cmd_withdraw(args: argparse.Namespace) -> Output:
    withdrawal = Withdrawal(requested_by=args.by, reason=args.reason)
    client = await _connect()
    summary = await _answer(
        starter.withdraw(client, args.case_id, withdrawal), "withdrawing the request"
    )
    return Output(summary, _summary_text(summary))


async def cmd_metrics(args: argparse.Namespace) -> Output:
    store = _case_store()
    group_by: GroupBy = "partner" if args.partner or args.by == "partner" else "client"
    party_id: str | None = args.partner or args.client
    if party_id is not None:
        party = store.party(party_id)
        if party is None or party.kind != group_by:
            raise CliError(f"unknown {group_by} {party_id!r}: no {group_by} has that ID")
    rows = response_metrics(store, group_by, party_id)
    empty = "no info requests yet" + (f" for {party_id}" if party_id else "")
    return Output(rows, _metrics_table(group_by, rows) or empty)


async def cmd_accept(args: argparse.Namespace) -> Output:
    return await _decide(args, {"outcome": "accept"})


async def cmd_close(args: argparse.Namespace) -> Output:
    return await _decide(args, {"outcome": "close", "close_code": args.code})


async def _decide(args: argparse.Namespace, fields: dict[str, Any]) -> Output:
    decision = Decision.model_validate({**fields, "decided_by": args.by, "note": args.note})
    client = await _connect()
    summary = await _answer(starter.decide(client, args.case_id, decision), "deciding")
    return Output(summary, _summary_text(summary))


async def cmd_state(args: argparse.Namespace) -> Output:
    client = await _connect()
    state = await _answer(starter.get_state(client, args.case_id), "asking for the state")
    return Output(state, _state_text(state))


async def _connect() -> Client:
    try:
        return await asyncio.wait_for(starter.connect(), TEMPORAL_WAIT_SECONDS)
    except KeyRingError as e:
        raise CliError(f"payload encryption keys: {e}") from e
    except (RuntimeError, TimeoutError) as e:
        raise Unreachable(
            f"cannot reach Temporal at {_temporal_address()}: is `make run` running (or "
            f"TEMPORAL_ADDRESS set to your cluster)?\n({e or 'timed out'})"
        ) from e


async def _answer(call: Awaitable[T], doing: str) -> T:
    try:
        return await asyncio.wait_for(call, TEMPORAL_WAIT_SECONDS)
    except TimeoutError as e:
        raise Unreachable(
            f"no answer from Temporal at {_temporal_address()} within "
            f"{TEMPORAL_WAIT_SECONDS:.0f} s while {doing}; is the worker running?"
        ) from e


async def _live_state(case_id: str) -> tuple[RequestState | None, str | None]:
    """The request's state, or why there is none (never an error: the store part still shows)."""
    try:
        client = await _connect()
        return await _answer(starter.get_state(client, case_id), "asking for the state"), None
    except starter.RequestError as e:
        return None, "no info request yet" if e.code == "no_request" else e.message
    except Unreachable as e:
        return None, f"live state unavailable: {e}"
    except RPCError as e:
        return None, f"live state unavailable: {e.message}"


def _temporal_address() -> str:
    try:
        return ClientConfig.load_client_connect_config().get("target_host") or DEFAULT_ADDRESS
    except Exception:  # a broken profile: connect() reports it
        return DEFAULT_ADDRESS


# ---- input ---------------------------------------------------------------------------------

_ITEM_KINDS = [k.value for k in ItemKind]


def _parse_items(specs: Sequence[str]) -> list[RequestedItem]:
    """`KIND:REASON`, or `other:DESCRIPTION:REASON`; the reason may contain colons."""
    items = []
    for spec in specs:
        kind, sep, rest = (part.strip() for part in spec.partition(":"))
        if kind not in _ITEM_KINDS:
            raise CliError(
                f"--item {spec!r}: unknown item kind {kind!r}; use one of: "
                + ", ".join(_ITEM_KINDS)
            )
        description = None
        if kind == ItemKind.OTHER:
            description, sep, rest = (part.strip() for part in rest.partition(":"))
        if not sep:
            form = "other:DESCRIPTION:REASON" if kind == ItemKind.OTHER else "KIND:REASON"
            raise CliError(f"--item {spec!r}: write it as {form}")
        try:
            items.append(
                RequestedItem(kind=ItemKind(kind), reason=rest, description=description or None)
            )
        except ValidationError as e:
            raise CliError("\n".join(f"--item {spec!r}: {p}" for p in _problems(e))) from e
    return items


class _ReviewAction(argparse.Action):
    """--accept ITEM_ID / --reject ITEM_ID:REASON, kept in the order given."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        reviews = list(getattr(namespace, self.dest, None) or [])
        spec = str(values)
        if option_string == "--accept":
            reviews.append((spec, True, None))
        else:
            item_id, sep, reason = (part.strip() for part in spec.partition(":"))
            if not sep or not item_id or not reason:
                parser.error(f"--reject {spec!r}: write it as ITEM_ID:REASON")
            reviews.append((item_id, False, reason))
        setattr(namespace, self.dest, reviews)


def _reviews(specs: Sequence[tuple[str, bool, str | None]]) -> list[ItemReview]:
    reviews = []
    for item_id, accepted, reason in specs:
        option = "--accept" if accepted else "--reject"
        try:
            reviews.append(ItemReview(item_id=item_id, accepted=accepted, reason=reason))
        except ValidationError as e:
            raise CliError("\n".join(f"{option} {item_id!r}: {p}" for p in _problems(e))) from e
    return reviews


def _deadline(case_id: str, text: str) -> datetime:
    """An instant with its zone, or a plain date: the end of that day (23:59:59) in the
    client's time zone."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        if len(text) == 10:  # YYYY-MM-DD, not another ISO date form
            zone = _case_store().case_detail(case_id).client.time_zone
            return datetime.combine(day, time(23, 59, 59), ZoneInfo(zone))
    try:
        instant = datetime.fromisoformat(text)
    except ValueError as e:
        raise CliError(
            f"--until {text!r}: not a date or time; write 2026-12-10 (the end of that day in "
            "the client's time zone) or 2026-12-10T17:00:00+01:00"
        ) from e
    if instant.tzinfo is None:
        raise CliError(
            f"--until {text!r}: give the time zone (2026-12-10T17:00:00+01:00, or Z for "
            "UTC), or a plain date for the end of that day in the client's time zone"
        )
    return instant


def _existing_files(names: Sequence[str]) -> list[Path]:
    paths = [Path(name) for name in names]
    for path in paths:
        if not path.is_file():
            raise CliError(f"--file {str(path)!r}: no such file; nothing was sent")
    return paths


def _built_with_files(build: Callable[[Sequence[FileRef]], M], paths: Sequence[Path]) -> M:
    """Build once without the files, so bad input is refused before any file is stored; then
    store the files and build with them."""
    build([])
    return build(_store_files(paths))


def _store_files(paths: Sequence[Path]) -> list[FileRef]:
    """Put the files into the file store the worker reads; only their references travel."""
    if not paths:
        return []
    settings = Settings.from_env()
    files = FileStore(settings.file_store_dir, settings.max_file_bytes)
    refs = []
    for path in paths:
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        try:
            with path.open("rb") as source:
                refs.append(files.put_file(source, filename=path.name, content_type=content_type))
        except FileTooLarge as e:
            raise CliError(f"--file {str(path)!r}: {e}; nothing was sent") from e
    return refs


def _problems(error: ValidationError) -> list[str]:
    """One line per problem, naming the field: `items: the checklist is empty: ...`."""
    lines = []
    for problem in error.errors():
        field = "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in problem["loc"]
        ).lstrip(".")
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"{field}: {message}" if field else message)
    return lines


# ---- rendering -----------------------------------------------------------------------------


def _when(instant: datetime) -> str:
    return f"{instant.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _money(minor: int, currency: str) -> str:
    return f"{minor // 100:,}.{minor % 100:02d} {currency}"


def _status(status: CaseStatus, close_code: CloseCode | None) -> str:
    return f"{status} ({close_code})" if close_code else str(status)


def _file(ref: FileRef) -> str:
    return f"{ref.filename} ({ref.content_type}, {ref.size} bytes, sha256 {ref.sha256[:12]})"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return ""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    )


def _section(title: str, entries: list[str]) -> str:
    return f"{title}\n" + textwrap.indent("\n".join(entries) or "none", "  ")


def _chat_entry(m: views.ChatMessageView) -> str:
    author = "system" if m.kind == "system" else m.author_user_id or "(client, no user ID)"
    lines = [m.body, *(f"attachment: {_file(a)}" for a in m.attachments)]
    return f"[{_when(m.created_at)}] {author}\n" + textwrap.indent("\n".join(lines), "    ")


def _task_entry(t: views.TaskRecordView, time_zone: str) -> str:
    return (
        f"#{t.id} {t.status}  due {local_time_text(t.due_at, time_zone)} = {_when(t.due_at)}"
        f"\n    {t.title}"
    )


def _task_data(t: views.TaskRecordView, time_zone: str) -> dict[str, Any]:
    return {**t.model_dump(mode="json"), "due_local": local_time_text(t.due_at, time_zone)}


def _email_text(e: views.EmailView) -> str:
    sent = f", sent {_when(e.sent_at)}" if e.sent_at else ""
    error = f"\nError:   {e.error}" if e.error else ""
    return (
        f"Email #{e.id} on case {e.case_id}: {e.status} via {e.transport}{sent}{error}\n"
        f"To:      {e.to_name} <{e.to_email}>\n"
        f"Subject: {e.subject}\n\n{e.body.rstrip()}"
    )


def _state_text(state: RequestState) -> str:
    lines = [
        f"request   {state.request_id}",
        f"phase     {state.phase}" + (" (withdrawn)" if state.withdrawn else ""),
        f"case      {state.case_id}, {state.case_status}",
        f"round     {state.round}, reminders sent {state.reminders_sent}",
    ]
    if state.task:
        lines.append(
            f"task      {state.task.outcome}, due {state.task.due_local} "
            f"= {_when(state.task.due_at)}"
        )
        if state.task.outcome is TaskOutcome.OPEN and state.task.latest_due_at:
            lines.append(f"          may be extended to {_when(state.task.latest_due_at)} at most")
    lines += [
        f"reply     {r.reply_id} at {_when(r.received_at)} ({r.attachments} attachment(s))"
        for r in state.replies
    ] or ["replies   none yet"]
    if state.decision:
        d = state.decision
        code = f" ({d.close_code})" if d.close_code else ""
        note = f": {d.note}" if d.note else ""
        lines.append(f"decision  {d.outcome}{code} by {d.decided_by}{note}")
    if state.items:
        lines.append(_checklist_text(state.items))
    return "\n".join(lines)


def _checklist_text(items: Sequence[ChecklistItem], heading: str = "checklist") -> str:
    """One line per item: ID, status, label (and the round it was added in, after the first),
    with the rejection reason under a rejected one."""
    if not items:
        return f"{heading}  (empty)"
    width = max(len(i.item_id) for i in items)
    lines = [heading]
    for item in items:
        added = f"  (added in round {item.round})" if item.round > 1 else ""
        lines.append(f"  {item.item_id.ljust(width)}  {item.status:<9}  {item.label()}{added}")
        if item.status is ItemStatus.REJECTED and item.rejection_reason:
            lines.append(f"  {' ' * width}  rejected: {item.rejection_reason}")
    return "\n".join(lines)


def _summary_text(s: RequestSummary) -> str:
    headline = (
        f"The info request on case {s.case_id} was withdrawn; the case is "
        f"{_status(s.final_status, s.close_code)} again."
        if s.outcome is RequestOutcome.WITHDRAWN
        else f"Case {s.case_id} is now {_status(s.final_status, s.close_code)}."
    )
    return "\n".join(
        [
            headline,
            f"request    {s.request_id}",
            f"task       {s.task_outcome}",
            f"rounds     {s.rounds}",
            f"replies    {s.replies}",
            f"requested  {_when(s.requested_at)}",
            f"ended      {_when(s.decided_at)}"
            if s.outcome is RequestOutcome.WITHDRAWN
            else f"decided    {_when(s.decided_at)}",
        ]
    )


def _metrics_table(kind: str, rows: Sequence[PartyResponseMetrics]) -> str:
    def hours(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} h"

    def share(value: float | None) -> str:
        return "-" if value is None else f"{value:.0%}"

    return _table(
        [
            kind.upper(),
            "NAME",
            "REQUESTS",
            "REPLIED",
            "ENDED",
            "MEDIAN REPLY",
            "MEAN REPLY",
            "2ND ROUND",
            "UNRESPONSIVE",
        ],
        [
            [
                m.party_id,
                m.party_name,
                str(m.requests),
                str(m.replied),
                str(m.ended),
                hours(m.median_hours_to_reply),
                hours(m.mean_hours_to_reply),
                share(m.share_needing_second_round),
                share(m.share_unresponsive_client),
            ]
            for m in rows
        ],
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


# ---- the parser and main --------------------------------------------------------------------

HANDLERS: dict[str, Handler] = {
    "cases": cmd_cases,
    "case": cmd_case,
    "chat": cmd_chat,
    "tasks": cmd_tasks,
    "emails": cmd_emails,
    "request": cmd_request,
    "reply": cmd_reply,
    "message": cmd_message,
    "review": cmd_review,
    "follow-up": cmd_follow_up,
    "extend": cmd_extend,
    "withdraw": cmd_withdraw,
    "accept": cmd_accept,
    "close": cmd_close,
    "state": cmd_state,
    "metrics": cmd_metrics,
}

EPILOG = f"""\
examples:
  python -m starter cases --partner P-NORDIC
  python -m starter request C-1001 --by U-PARTNER-ANNA \\
      --item invoice_or_contract:"The amount must be proven" \\
      --item other:"Delivery photos":"The debtor says the tables were damaged" \\
      --message "Please send the signed order and the delivery photos." --file order.pdf
  python -m starter reply C-1001 --as U-HYGGE-LARS --message "Attached." --file photos.zip
  python -m starter message C-1001 --by U-PARTNER-ANNA --message "The photos are enough."
  python -m starter review C-1001 --by U-PARTNER-ANNA --accept i1 --reject i2:"Unreadable scan"
  python -m starter follow-up C-1001 --by U-PARTNER-ANNA --message "Please rescan page 2." \\
      --item bank_statements:"Show the disbursement"
  python -m starter extend C-1001 --by U-PARTNER-ANNA --until 2026-12-18
  python -m starter withdraw C-1001 --by U-PARTNER-ANNA --reason "Sent by mistake"
  python -m starter accept C-1001 --by U-PARTNER-ANNA
  python -m starter close C-1002 --code unresponsive_client --by U-PARTNER-ANNA
  python -m starter case C-1001
  python -m starter emails --case C-1001
  python -m starter metrics --by client

item kinds:  {", ".join(_ITEM_KINDS)}
close codes: {", ".join(c.value for c in CloseCode)}
exit codes: 0 done, 1 unexpected failure, 2 refused or invalid input, 3 Temporal unreachable
environment: TEMPORAL_ADDRESS (default {DEFAULT_ADDRESS}), DATABASE_URL, FILE_STORE_DIR
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m starter",
        description="Read debt-collection cases and act on their info requests.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    # --json also after the command (`case C-1001 --json`), without undoing one given before.
    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="print JSON instead of text"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=summary, description=summary, parents=[json_flag])

    p = command("cases", "the cases a partner received (Cases Received)")
    p.add_argument("--partner", required=True, metavar="PARTY_ID", help="e.g. P-NORDIC")
    p.add_argument("--status", choices=[s.value for s in CaseStatus])
    p = command("case", "one case: files, chat, tasks, history, emails, live state")
    p.add_argument("case_id", metavar="CASE_ID")
    p = command("chat", "the chat of a case")
    p.add_argument("case_id", metavar="CASE_ID")
    p = command("tasks", "the clients' tasks")
    p.add_argument("--party", metavar="PARTY_ID", help="only the tasks of this client")
    p.add_argument("--status", choices=[o.value for o in TaskOutcome])
    p = command("emails", "the emails sent or in the outbox, with their bodies")
    p.add_argument("--case", metavar="CASE_ID", help="only the emails of this case")

    p = command("request", "ask the client of a case for missing information")
    p.add_argument("case_id", metavar="CASE_ID")
    p.add_argument("--by", required=True, metavar="USER_ID", help="the partner user who asks")
    p.add_argument(
        "--item",
        action="append",
        default=[],
        metavar="KIND:REASON",
        help="an item the client must send, and why; repeat; other:DESCRIPTION:REASON; "
        f"kinds: {', '.join(_ITEM_KINDS)}",
    )
    p.add_argument("--message", required=True, help="the message to the client")
    p.add_argument("--file", action="append", default=[], metavar="PATH", help="attach (repeat)")
    p = command("reply", "reply as the client (as the client portal does)")
    p.add_argument("case_id", metavar="CASE_ID")
    p.add_argument("--message", required=True)
    p.add_argument("--file", action="append", default=[], metavar="PATH", help="attach (repeat)")
    p.add_argument("--reply-id", metavar="ID", help="idempotency key (default: a new one)")
    p.add_argument("--as", dest="as_user", metavar="USER_ID", help="the client user replying")
    p = command("message", "write to the client in the case chat while a request is open")
    p.add_argument("case_id", metavar="CASE_ID")
    p.add_argument("--by", required=True, metavar="USER_ID", help="the partner user writing")
    p.add_argument(
        "--message",
        required=True,
        help="posted at once; emailed after the quiet period, bundled with others",
    )
    p.add_argument("--file", action="append", default=[], metavar="PATH", help="attach (repeat)")
    p.add_argument("--message-id", metavar="ID", help="idempotency key (default: a new one)")
    p = command("review", "accept or reject checklist items (a rejection needs a reason)")
    p.add_argument("case_id", metavar="CASE_ID")
    p.add_argument("--by", required=True, metavar="USER_ID", help="the partner user reviewing")
    p.add_argument(
        "--accept",
        dest="reviews",
        action=_ReviewAction,
        default=[],
        metavar="ITEM_ID",
        help="accept an item (repeat; IDs as in `state`: i1, i2, ...)",
    )
    p.add_argument(
        "--reject",
        dest="reviews",
        action=_ReviewAction,
        default=[],
        metavar="ITEM_ID:REASON",
        help="reject an item, with the reason the client reads (repeat)",
    )
    p = command(
        "follow-up",
        "ask again for what is still missing (every item not accepted, plus new ones): "
        "a new round with a new task and deadline",
    )
    p.add_argument("case_id", metavar="CASE_ID")
    p.add_argument("--by", required=True, metavar="USER_ID", help="the partner user who asks")
    p.add_argument("--message", required=True, help="the message to the client")
    p.add_argument(
        "--item",
        action="append",
        default=[],
        metavar="KIND:REASON",
        help="a new item, as for `request` (repeat; optional)",
    )
    p = command("extend", "move the open task's deadline later")
    p.add_argument("case_id", metavar="CASE_ID")
    p.add_argument("--by", required=True, metavar="USER_ID", help="the partner user extending")
    p.add_argument(
        "--until",
        required=True,
        metavar="WHEN",
        help="2026-12-10T17:00:00+01:00 (with its zone), or 2026-12-10: the end of that day "
        "(23:59:59) in the client's time zone",
    )
    p = command(
        "withdraw",
        "take the request back: the case returns to Pending Verification, the task is "
        "cancelled and the client told",
    )
    p.add_argument("case_id", metavar="CASE_ID")
    p.add_argument("--by", required=True, metavar="USER_ID", help="the partner user withdrawing")
    p.add_argument("--reason", help="told to the client")
    p = command("accept", "accept the case: it becomes Active")
    p.add_argument("case_id", metavar="CASE_ID")
    p.add_argument("--by", required=True, metavar="USER_ID", help="the partner user deciding")
    p.add_argument("--note", help="a note to the client")
    p = command("close", "close the case with a close code")
    p.add_argument("case_id", metavar="CASE_ID")
    p.add_argument(
        "--code",
        required=True,
        metavar="CLOSE_CODE",
        help=f"one of: {', '.join(c.value for c in CloseCode)}",
    )
    p.add_argument("--by", required=True, metavar="USER_ID", help="the partner user deciding")
    p.add_argument("--note", help="a note to the client")
    p = command("state", "the live state of the case's info request (from Temporal)")
    p.add_argument("case_id", metavar="CASE_ID")
    p = command(
        "metrics",
        "response metrics: requests, time to reply (median, mean), share needing a second "
        "round, share ended with unresponsive_client",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--partner", metavar="PARTY_ID", help="one partner's numbers")
    which.add_argument("--client", metavar="PARTY_ID", help="one client's numbers")
    which.add_argument("--by", choices=["partner", "client"], help="every partner, or every client")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help, or a usage error argparse has already printed
        return e.code if isinstance(e.code, int) else EXIT_REFUSED
    try:
        output = asyncio.run(HANDLERS[args.command](args))
    except starter.RequestError as e:
        # Refused, nothing started (2); or started but not confirmed (1: look at its state).
        return _fail(str(e), EXIT_FAILED if e.code == "not_confirmed" else EXIT_REFUSED)
    except (CliError, UnknownCase, SettingError) as e:
        return _fail(str(e), EXIT_REFUSED)
    except ValidationError as e:
        return _fail("\n".join(_problems(e)), EXIT_REFUSED)
    except Unreachable as e:
        return _fail(str(e), EXIT_UNREACHABLE)
    except RPCError as e:
        if e.status in _UNREACHABLE:
            return _fail(f"cannot reach Temporal at {_temporal_address()}: {e}", EXIT_UNREACHABLE)
        return _fail(f"Temporal refused the call: {e}", EXIT_FAILED)
    except SQLAlchemyError as e:
        url = make_url(Settings.from_env().database_url).render_as_string(hide_password=True)
        return _fail(
            f"cannot read the case store at {url}: {getattr(e, 'orig', None) or e}\n"
            "(is it migrated? `make run` does it, or `python -m store.migrate`)",
            EXIT_FAILED,
        )
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except Exception as e:
        return _fail(f"unexpected {type(e).__name__}: {e}", EXIT_FAILED)
    if args.json:
        print(json.dumps(_jsonable(output.data), indent=2, ensure_ascii=False))
    else:
        print(output.text)
    return EXIT_OK


def _fail(message: str, code: int) -> int:
    for line in message.splitlines():
        print(f"error: {line}", file=sys.stderr)
    return code
