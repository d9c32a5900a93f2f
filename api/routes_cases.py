"""What both roles read: their cases (a client's own, a partner's Cases Received), a case with
its files and chat, a file, the whole history, and the Tasks list."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from api import files as file_rules
from api.access import require_case, scope_of
from api.auth import AnyUser, Context
from api.context import ApiContext
from api.errors import error_responses, not_found
from api.present import case_files_out, chat_out, detail_out, task_out
from api.schemas import (
    CaseDetailOut,
    CasePage,
    ChatMessageOut,
    HistoryOut,
    InfoRequestRecord,
    TaskOut,
)
from domain.models import CaseStatus, ChecklistItem
from store import queries
from store.tokens import Principal

router = APIRouter(tags=["cases"], responses=error_responses(401, 404, 422))

MAX_PAGE = 200
TaskStatus = Literal["open", "replied", "expired", "cancelled", "all"]


@router.get("/cases", summary="My cases (client) or Cases Received (partner)")
async def list_cases(
    ctx: Context,
    principal: AnyUser,
    status: Annotated[CaseStatus | None, Query(description="Only cases in this status")] = None,
    sort: Annotated[queries.CaseSort, Query()] = queries.CaseSort.CREATED_DESC,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> CasePage:
    """A client sees the cases it submitted; a partner the cases it received. Sorted, one
    page at a time, with the total across pages."""
    items, total = await run_in_threadpool(
        queries.page_cases,
        ctx.store,
        scope_of(principal),
        status=status,
        sort=sort,
        limit=limit,
        offset=offset,
    )
    next_offset = offset + len(items) if offset + len(items) < total else None
    return CasePage(items=items, total=total, limit=limit, offset=offset, next_offset=next_offset)


@router.get("/cases/{case_id}", summary="A case with its files and chat")
async def get_case(ctx: Context, principal: AnyUser, case_id: str) -> CaseDetailOut:
    await require_case(ctx, principal, case_id)
    detail = await run_in_threadpool(ctx.store.case_detail, case_id)
    chat = await run_in_threadpool(ctx.store.chat, case_id)
    return detail_out(detail, chat)


@router.get("/cases/{case_id}/chat", summary="The case chat (Communication Center)")
async def get_chat(ctx: Context, principal: AnyUser, case_id: str) -> list[ChatMessageOut]:
    """Every message and file of the case in order, with system notes for status changes
    and task events: the audit trail both parties see."""
    await require_case(ctx, principal, case_id)
    return [chat_out(m) for m in await run_in_threadpool(ctx.store.chat, case_id)]


@router.get(
    "/cases/{case_id}/files/{sha256}",
    summary="Download a file of the case",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The file"}},
)
async def download_file(
    ctx: Context, principal: AnyUser, case_id: str, sha256: str
) -> FileResponse:
    await require_case(ctx, principal, case_id)
    ref = await run_in_threadpool(queries.case_file, ctx.store, case_id, sha256)
    if ref is None:
        raise not_found("file")
    return file_rules.download(ctx.files, ref)


@router.get("/cases/{case_id}/history", summary="Export the case's whole history as JSON")
async def export_history(
    ctx: Context, principal: AnyUser, case_id: str, response: Response
) -> HistoryOut:
    """The case, its files, chat, info requests, tasks, status history and emails."""
    await require_case(ctx, principal, case_id)
    response.headers["Content-Disposition"] = file_rules.content_disposition(
        f"case-{case_id}-history.json"
    )
    return await run_in_threadpool(_history, ctx, principal, case_id)


def _history(ctx: ApiContext, principal: Principal, case_id: str) -> HistoryOut:
    store = ctx.store
    detail = store.case_detail(case_id)
    return HistoryOut(
        exported_at=datetime.now(UTC),
        case=detail.case,
        debtor_name=detail.debtor_name,
        description=detail.description,
        client=detail.client,
        files=case_files_out(detail),
        chat=[chat_out(m) for m in store.chat(case_id)],
        info_requests=[
            InfoRequestRecord(
                request_id=r.request_id,
                requested_by=r.requested_by,
                requested_at=r.requested_at,
                items=[ChecklistItem.model_validate(i) for i in r.items],
            )
            for r in queries.info_requests(store, case_id)
        ],
        tasks=[
            task_out(row)
            for row in queries.tasks_for(store, scope_of(principal), status=None, case_id=case_id)
        ],
        status_history=store.status_history(case_id),
        emails=store.emails(case_id),
    )


@router.get("/tasks", summary="Tasks: a client's to-dos, or the tasks on a partner's cases")
async def list_tasks(
    ctx: Context,
    principal: AnyUser,
    status: Annotated[TaskStatus, Query(description="'all' for every task")] = "open",
) -> list[TaskOut]:
    """A client sees the tasks it must answer, each with its deadline in the client's own
    time; a partner sees the tasks of the cases it received. Soonest deadline first."""
    rows = await run_in_threadpool(
        queries.tasks_for,
        ctx.store,
        scope_of(principal),
        status=None if status == "all" else status,
    )
    return [task_out(row) for row in rows]
