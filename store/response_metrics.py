"""Response metrics per partner and per client: how long clients take to reply, how often a
second round is needed, how many requests end with an unresponsive client."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Literal

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


def response_metrics(
    store: CaseStore, group_by: GroupBy, party_id: str | None = None
) -> list[PartyResponseMetrics]:
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
        .join(Case, Case.id == InfoRequest.case_id)
        .join(Party, Party.id == party_column)
        .outerjoin(rounds, rounds.c.request_id == InfoRequest.id)
    )
    if party_id:
        query = query.where(party_column == party_id)
    by_party: dict[tuple[str, str], list[tuple[object, ...]]] = defaultdict(list)
    with store.session() as s:
        for row in s.execute(query).all():
            by_party[(row[0], row[1])].append(tuple(row[2:]))
    return [_summarise(pid, name, rows) for (pid, name), rows in sorted(by_party.items())]


def _summarise(party_id: str, name: str, rows: list[tuple[object, ...]]) -> PartyResponseMetrics:
    hours = [
        (first_reply - requested).total_seconds() / 3600  # type: ignore[operator]
        for requested, first_reply, *_ in rows
        if first_reply is not None
    ]
    ended = [row for row in rows if row[2] is not None]
    unresponsive = [
        row
        for row in ended
        if row[2] == RequestOutcome.CLOSED.value and row[3] == CloseCode.UNRESPONSIVE_CLIENT.value
    ]
    second_round = [row for row in rows if int(row[4]) > 1]  # type: ignore[call-overload]
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
