"""Response metrics per partner and per client: how long clients take to reply, how often a
second round is needed, how many requests end with an unresponsive client.

One row per info request, grouped by the partner that received the case or by the client that
submitted it:
- time to reply: from the request to the client's first reply that closed a task (hours);
- second round: the request needed more than one task (a follow-up round);
- unresponsive client: of the requests that ended, those closed with `unresponsive_client`.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import datetime
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select

from domain.models import CloseCode, RequestOutcome
from store.cases import CaseStore
from store.schema import Case, ClientTask, InfoRequest, Party

GroupBy = Literal["partner", "client"]


class PartyResponseMetrics(BaseModel):
    model_config = ConfigDict(frozen=True)

    party_id: str
    party_name: str
    requests: int
    ended: int
    replied: int
    median_hours_to_reply: float | None
    mean_hours_to_reply: float | None
    share_needing_second_round: float | None
    share_unresponsive_client: float | None  # of the requests that ended


class _Request(NamedTuple):
    requested_at: datetime
    first_reply_at: datetime | None
    outcome: str | None
    close_code: str | None
    rounds: int


def response_metrics(
    store: CaseStore,
    group_by: GroupBy,
    party_id: str | None = None,
    *,
    received_by: str | None = None,
) -> list[PartyResponseMetrics]:
    """One entry per party with at least one request, ordered by party ID. `party_id` keeps
    that party only; `received_by` counts only the requests on cases that partner received
    (what a partner may see of its clients)."""
    party_column = Case.partner_id if group_by == "partner" else Case.client_id
    rounds = (
        select(ClientTask.request_id, func.count(ClientTask.id).label("rounds"))
        .group_by(ClientTask.request_id)
        .subquery()
    )
    query = (
        select(
            party_column,
            Party.name,
            InfoRequest.requested_at,
            InfoRequest.first_reply_at,
            InfoRequest.outcome,
            InfoRequest.close_code,
            func.coalesce(rounds.c.rounds, 0),
        )
        .select_from(InfoRequest)
        .join(Case, Case.id == InfoRequest.case_id)
        .join(Party, Party.id == party_column)
        .outerjoin(rounds, rounds.c.request_id == InfoRequest.id)
    )
    if party_id is not None:
        query = query.where(party_column == party_id)
    if received_by is not None:
        query = query.where(Case.partner_id == received_by)
    by_party: dict[tuple[str, str], list[_Request]] = defaultdict(list)
    with store.reading() as s:
        for pid, name, requested, first_reply, outcome, close_code, count in s.execute(query):
            by_party[(pid, name)].append(
                _Request(requested, first_reply, outcome, close_code, int(count))
            )
    return [_summarise(pid, name, rows) for (pid, name), rows in sorted(by_party.items())]


def no_requests(party_id: str, party_name: str) -> PartyResponseMetrics:
    """The metrics of a party without any request: counts 0, the rest null."""
    return _summarise(party_id, party_name, [])


def _summarise(party_id: str, name: str, rows: list[_Request]) -> PartyResponseMetrics:
    hours = [
        (r.first_reply_at - r.requested_at).total_seconds() / 3600
        for r in rows
        if r.first_reply_at is not None
    ]
    ended = [r for r in rows if r.outcome is not None]
    unresponsive = [
        r
        for r in ended
        if r.outcome == RequestOutcome.CLOSED.value
        and r.close_code == CloseCode.UNRESPONSIVE_CLIENT.value
    ]
    second_round = [r for r in rows if r.rounds > 1]
    return PartyResponseMetrics(
        party_id=party_id,
        party_name=name,
        requests=len(rows),
        ended=len(ended),
        replied=len(hours),
        median_hours_to_reply=round(statistics.median(hours), 2) if hours else None,
        mean_hours_to_reply=round(statistics.fmean(hours), 2) if hours else None,
        share_needing_second_round=round(len(second_round) / len(rows), 3) if rows else None,
        share_unresponsive_client=round(len(unresponsive) / len(ended), 3) if ended else None,
    )
