"""What only client users do: submit a case with its files, and reply to an info request."""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from typing import Annotated

from fastapi import APIRouter, File, Form, Header, Response, UploadFile
from fastapi.concurrency import run_in_threadpool

import starter
from api import files as file_rules
from api.access import require_case, scope_of
from api.auth import ClientUser, Context
from api.context import MAX_FILES_PER_REQUEST, ApiContext
from api.errors import ApiError, FieldError, error_responses, invalid
from api.present import chat_out, detail_out
from api.schemas import CaseDetailOut, NewCaseForm, ReplyForm, ReplyOut
from domain.ids import reply_message_key
from domain.models import ClientReply, FileRef, Phase
from store import queries
from store.cases import NewCase
from store.tokens import Principal
from store.views import ChatMessageView

router = APIRouter(tags=["client"], responses=error_responses(401, 403, 413, 415, 422))

IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9_.:-]+$"
IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=64,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="Chosen by the caller (a UUID, say); a retry with the same key changes "
        "nothing and gets the first answer",
    ),
]
Uploads = Annotated[
    list[UploadFile] | None,
    File(description=f"Up to {MAX_FILES_PER_REQUEST} files: {file_rules.ALLOWED_TYPES_TEXT}"),
]


def _check_file_count(files: list[UploadFile]) -> None:
    if len(files) > MAX_FILES_PER_REQUEST:
        raise invalid([{"loc": ("body", "files"), "msg": f"at most {MAX_FILES_PER_REQUEST} files"}])


@router.post(
    "/cases",
    status_code=201,
    summary="Submit a case with its files (client)",
    responses={200: {"model": CaseDetailOut, "description": "A retry: the case it created"}},
)
async def submit_case(
    ctx: Context,
    principal: ClientUser,
    form: Annotated[NewCaseForm, Form()],
    response: Response,
    files: Uploads = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=64,
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="Optional: a retry with the same key returns the case created first",
        ),
    ] = None,
) -> CaseDetailOut:
    """The case arrives as Pending Verification in the chosen partner's Cases Received."""
    uploads = files or []
    _check_file_count(uploads)
    partner = await run_in_threadpool(ctx.store.party, form.partner_id)
    if partner is None or partner.kind != "partner":
        raise ApiError(
            422,
            "invalid_request",
            "the request is not valid: check body.partner_id",
            fields=[
                FieldError(field="body.partner_id", message="no collection partner has this ID")
            ],
        )
    case_id = _case_id(principal, idempotency_key)
    if idempotency_key is not None and await _is_visible(ctx, principal, case_id):
        response.status_code = 200
        return await _detail(ctx, case_id)
    refs = await file_rules.store_uploads(ctx.files, uploads)
    new = NewCase(
        id=case_id,
        client_id=principal.party_id,
        partner_id=partner.id,
        reference=form.reference,
        debtor_name=form.debtor_name,
        amount_minor=form.amount_minor,
        currency=form.currency,
        description=form.description,
    )
    added = await run_in_threadpool(ctx.store.add_case, new, refs, principal.user_id)
    if not added:
        if idempotency_key is None or not await _is_visible(ctx, principal, case_id):
            raise ApiError(409, "case_conflict", "the case could not be created; try again")
        response.status_code = 200  # a concurrent retry with the same key created it
    response.headers["Location"] = f"/cases/{case_id}"
    return await _detail(ctx, case_id)


def _case_id(principal: Principal, idempotency_key: str | None) -> str:
    """A fresh ID, or one derived from the key so that a retry names the same case."""
    if idempotency_key is None:
        return f"C-{uuid.uuid4().hex[:16]}"
    digest = hashlib.sha256(f"{principal.party_id}\0{idempotency_key}".encode()).hexdigest()
    return f"C-{digest[:16]}"


async def _is_visible(ctx: ApiContext, principal: Principal, case_id: str) -> bool:
    return await run_in_threadpool(queries.can_see_case, ctx.store, scope_of(principal), case_id)


async def _detail(ctx: ApiContext, case_id: str) -> CaseDetailOut:
    detail = await run_in_threadpool(ctx.store.case_detail, case_id)
    chat = await run_in_threadpool(ctx.store.chat, case_id)
    return detail_out(detail, chat)


@router.post(
    "/cases/{case_id}/replies",
    status_code=201,
    summary="Reply to the open info request with a message and files (client)",
    responses={
        **error_responses(404, 409),
        200: {"model": ReplyOut, "description": "A retry: the reply stored first"},
    },
)
async def reply(
    ctx: Context,
    principal: ClientUser,
    case_id: str,
    form: Annotated[ReplyForm, Form()],
    idempotency_key: IdempotencyKey,
    response: Response,
    files: Uploads = None,
) -> ReplyOut:
    """Stores the message and files in the case chat, then tells the workflow, which closes
    the client's task. The Idempotency-Key is the reply's ID: a retry changes nothing."""
    await require_case(ctx, principal, case_id)
    uploads = files or []
    _check_file_count(uploads)
    key = reply_message_key(case_id, idempotency_key)

    earlier = await run_in_threadpool(queries.message_by_key, ctx.store, key)
    if earlier is not None:
        # A retry. Deliver again in case the first attempt stored the message but did not get
        # to signal; the workflow ignores a reply ID it has seen.
        await _redeliver(ctx, case_id, idempotency_key, earlier)
        response.status_code = 200
        return ReplyOut(reply_id=idempotency_key, replayed=True, message=chat_out(earlier))

    # Refuse before writing anything when there is no request to answer.
    try:
        state = await starter.get_state(ctx.temporal, case_id)
    except starter.RequestError as e:
        raise ApiError(409, "no_open_request", f"{e.message}: there is nothing to reply to") from e
    if state.phase is Phase.DONE:
        raise ApiError(
            409,
            "request_closed",
            f"the info request on case {case_id} has been decided; there is nothing to reply to",
        )

    refs = await file_rules.store_uploads(ctx.files, uploads)
    message_id = await run_in_threadpool(
        lambda: ctx.store.post_message(
            case_id=case_id,
            kind="message",
            author_user_id=principal.user_id,
            body=form.message,
            attachments=refs,
            idempotency_key=key,
        )
    )
    await _deliver(ctx, case_id, idempotency_key, principal.user_id, form.message, refs)
    stored = await run_in_threadpool(queries.message_by_key, ctx.store, key)
    assert stored is not None and stored.id == message_id
    return ReplyOut(reply_id=idempotency_key, replayed=False, message=chat_out(stored))


async def _deliver(
    ctx: ApiContext,
    case_id: str,
    reply_id: str,
    user_id: str | None,
    message: str,
    refs: list[FileRef],
) -> None:
    reply = ClientReply(
        reply_id=reply_id, client_user_id=user_id, message=message, attachments=refs
    )
    try:
        await starter.send_client_reply(ctx.temporal, case_id, reply)
    except starter.RequestError as e:
        # Decided in the moment between our check and the signal: the message stays in the
        # chat (the client did say it), but it answers no request.
        raise ApiError(409, e.code, e.message) from e


async def _redeliver(
    ctx: ApiContext, case_id: str, reply_id: str, earlier: ChatMessageView
) -> None:
    # A request closed or gone since then: the first attempt's answer still stands.
    with contextlib.suppress(ApiError):
        await _deliver(
            ctx, case_id, reply_id, earlier.author_user_id, earlier.body, earlier.attachments
        )
