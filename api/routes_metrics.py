"""Response metrics for both roles: a partner sees its own numbers and, per client, those of
the cases it received; a client sees its own numbers only (over every partner it sent a case
to). Nobody sees what happens on another partner's cases."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from api.auth import AnyUser, Context
from api.errors import error_responses
from api.schemas import ResponseMetricsOut
from store.cases import CaseStore
from store.response_metrics import no_requests, response_metrics
from store.tokens import Principal

router = APIRouter(tags=["metrics"], responses=error_responses(401))


@router.get("/metrics/response", summary="How quickly clients reply to info requests")
async def get_response_metrics(ctx: Context, principal: AnyUser) -> ResponseMetricsOut:
    """Per party: `requests`, `ended`, `replied`, median and mean hours from the request to
    the client's first reply, the share of requests that needed a second round, and the
    share of ended requests closed as `unresponsive_client`. Shares are 0 to 1; a value
    with nothing to measure is null."""
    return await run_in_threadpool(_metrics, ctx.store, principal)


def _metrics(store: CaseStore, principal: Principal) -> ResponseMetricsOut:
    party_id = principal.party_id
    if principal.party_kind == "partner":
        own = response_metrics(store, "partner", party_id)
        clients = response_metrics(store, "client", received_by=party_id)
    else:
        own = response_metrics(store, "client", party_id)
        clients = []
    if own:
        return ResponseMetricsOut(party=own[0], clients=clients)
    party = store.party(party_id)
    return ResponseMetricsOut(
        party=no_requests(party_id, party.name if party else party_id), clients=clients
    )
