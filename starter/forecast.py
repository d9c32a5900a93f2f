"""What a request's opening will publish, worked out before the run starts.

The run learns the client's deadline, country and partner in its opening steps and would
upsert them as search attributes, one billable action per request. A starter that can read the
case store (the API, the CLI) works them out first with the same rule as the task step, and the
run starts with them (search attributes given at start are not billed); the run compares what
its steps found with what it started with and upserts only a difference (a request at local
midnight whose deadline moved on by a day while it started, or a case edited meanwhile).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from temporalio.common import SearchAttributePair

import workflows.search_attributes as sa
from domain.deadlines import CalendarError, ClientCalendar, client_deadline
from domain.models import InfoRequestInput, Phase
from store.cases import CaseStore, UnknownCase


@dataclass(frozen=True)
class OpeningForecast:
    client_deadline: datetime
    client_country: str
    partner_id: str

    def search_attributes(self) -> list[SearchAttributePair[Any]]:
        """The opening's attributes, as the run publishes them once the client's task exists."""
        return [
            SearchAttributePair(sa.INFO_REQUEST_PHASE, Phase.WAITING_FOR_CLIENT.value),
            SearchAttributePair(sa.CLIENT_DEADLINE, self.client_deadline),
            SearchAttributePair(sa.CLIENT_COUNTRY, self.client_country),
            SearchAttributePair(sa.PARTNER_ID, self.partner_id),
        ]


def forecast_opening(
    store: CaseStore, request: InfoRequestInput, now: datetime | None = None
) -> OpeningForecast | None:
    """None when the case cannot be read or its client's calendar is invalid: the run refuses
    such a request with the reason, and nothing is forecast for a run that will not open. A
    store that cannot be reached only costs the upsert: the run publishes what it finds."""
    try:
        case, client, _partner = store.case_parties(request.case_id)
        calendar = ClientCalendar(client.country, client.subdivision, client.time_zone)
    except (UnknownCase, CalendarError, SQLAlchemyError):
        return None
    due_at = client_deadline(
        now or datetime.now(UTC), calendar, request.policy.business_days_to_reply
    )
    return OpeningForecast(
        client_deadline=due_at.astimezone(UTC),
        client_country=client.country,
        partner_id=case.partner_id,
    )
