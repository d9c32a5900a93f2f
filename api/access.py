"""Which cases a caller may touch. Anything else is the same 404 as a case that does not
exist, so a caller can never learn that another party's case is there."""

from __future__ import annotations

from fastapi.concurrency import run_in_threadpool

from api.context import ApiContext
from api.errors import not_found
from store.queries import PartyScope, can_see_case
from store.tokens import Principal


def scope_of(principal: Principal) -> PartyScope:
    return PartyScope(party_id=principal.party_id, party_kind=principal.party_kind)


async def require_case(ctx: ApiContext, principal: Principal, case_id: str) -> None:
    if not await run_in_threadpool(can_see_case, ctx.store, scope_of(principal), case_id):
        raise not_found(f"case {case_id!r}")
