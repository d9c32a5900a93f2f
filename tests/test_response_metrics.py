"""Response metrics on SQLite and PostgreSQL, from requests, tasks and outcomes written through
the case store the way the workflow's steps write them.

Two partners and three clients:

| request | partner  | client | reply after | tasks (rounds)     | ended as                    |
| ------- | -------- | ------ | ----------- | ------------------ | --------------------------- |
| r1      | P-TEST   | CL-DK  | 2 h         | replied            | accepted                    |
| r2      | P-TEST   | CL-DK  | 6 h         | expired, replied   | closed (paid)               |
| r3      | P-TEST   | CL-DK  | none        | expired            | closed (unresponsive)       |
| r4      | P-TEST   | CL-BY  | 10 h        | replied            | still open                  |
| r5      | P-SECOND | CL-DK  | none        | open               | still open                  |
| r6      | P-SECOND | CL-US  | none        | expired            | closed (unresponsive)       |
| r7      | P-SECOND | CL-US  | none        | cancelled          | withdrawn                   |
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from domain.models import CaseStatus, CloseCode
from store.cases import CaseStore, NewCase, RequestRecord
from store.response_metrics import PartyResponseMetrics, no_requests, response_metrics
from store.views import PartyView
from tests.conftest import CLIENT_DE_BY, CLIENT_DK, CLIENT_US, PARTNER, PARTNER_USER

SECOND_PARTNER = PartyView(
    id="P-SECOND",
    kind="partner",
    name="Second Collect AB",
    email="desk@second-collect.example",
    country="SE",
    subdivision=None,
    time_zone="Europe/Stockholm",
)


class Builder:
    def __init__(self, store: CaseStore) -> None:
        self.store = store

    def request(self, request_id: str, partner: PartyView, client: PartyView, hours: float) -> str:
        """A case with an open request made `hours` ago (the reply, if any, comes now)."""
        case_id = f"C-{uuid.uuid4().hex[:10]}"
        self.store.add_case(
            NewCase(
                id=case_id,
                client_id=client.id,
                partner_id=partner.id,
                reference=f"REF-{request_id}",
                debtor_name="Debtor ApS",
                amount_minor=100_00,
                currency="DKK",
                description="Unpaid invoice",
            )
        )
        self.store.change_status(
            case_id=case_id,
            new_status=CaseStatus.MORE_INFO_REQUIRED,
            close_code=None,
            changed_by=PARTNER_USER,
            idempotency_key=f"{request_id}:open:status",
            opens=RequestRecord(
                request_id=request_id,
                run_id=f"run-{request_id}",
                requested_by=PARTNER_USER,
                items=[],
                requested_at=datetime.now(UTC) - timedelta(hours=hours),
            ),
        )
        return case_id

    def task(self, case_id: str, request_id: str, round_: int, outcome: str | None) -> None:
        key = f"{request_id}:r{round_}:task"
        self.store.create_task(
            case_id=case_id,
            request_id=request_id,
            title=f"Round {round_}",
            due_at=datetime.now(UTC) + timedelta(days=2),
            idempotency_key=key,
        )
        if outcome == "replied":
            self.reply(case_id, request_id, f"{request_id}-{round_}")
        if outcome is not None:
            self.store.close_task(idempotency_key=key, outcome=outcome)

    def reply(self, case_id: str, request_id: str, reply_id: str) -> None:
        """The client's reply in the chat as the portal posts it, then as the workflow's reply
        step posts it again under the same key, noting the request's first reply."""
        for first_reply_to in (None, request_id):
            self.store.post_message(
                case_id=case_id,
                kind="message",
                author_user_id=None,
                body="Here it is.",
                idempotency_key=f"{case_id}:reply:{reply_id}",
                first_reply_to=first_reply_to,
            )

    def end(
        self, case_id: str, request_id: str, outcome: str, close_code: CloseCode | None = None
    ) -> None:
        new_status = {
            "accepted": CaseStatus.ACTIVE,
            "closed": CaseStatus.CLOSED,
            "withdrawn": CaseStatus.PENDING_VERIFICATION,
        }[outcome]
        self.store.change_status(
            case_id=case_id,
            new_status=new_status,
            close_code=close_code,
            changed_by=PARTNER_USER,
            idempotency_key=f"{request_id}:decision:status",
            ends_request=(request_id, outcome),
        )


@pytest.fixture
def world(store: CaseStore) -> CaseStore:
    store.add_party(SECOND_PARTNER)
    b = Builder(store)
    r = {}  # request ID -> case ID
    r["r1"] = b.request("r1", PARTNER, CLIENT_DK, hours=2)
    b.task(r["r1"], "r1", 1, "replied")
    b.end(r["r1"], "r1", "accepted")

    r["r2"] = b.request("r2", PARTNER, CLIENT_DK, hours=6)
    b.task(r["r2"], "r2", 1, "expired")
    b.task(r["r2"], "r2", 2, "replied")
    b.end(r["r2"], "r2", "closed", CloseCode.PAID)

    r["r3"] = b.request("r3", PARTNER, CLIENT_DK, hours=30)
    b.task(r["r3"], "r3", 1, "expired")
    b.end(r["r3"], "r3", "closed", CloseCode.UNRESPONSIVE_CLIENT)

    r["r4"] = b.request("r4", PARTNER, CLIENT_DE_BY, hours=10)
    b.task(r["r4"], "r4", 1, "replied")

    r["r5"] = b.request("r5", SECOND_PARTNER, CLIENT_DK, hours=1)
    b.task(r["r5"], "r5", 1, None)

    r["r6"] = b.request("r6", SECOND_PARTNER, CLIENT_US, hours=80)
    b.task(r["r6"], "r6", 1, "expired")
    b.end(r["r6"], "r6", "closed", CloseCode.UNRESPONSIVE_CLIENT)

    r["r7"] = b.request("r7", SECOND_PARTNER, CLIENT_US, hours=3)
    b.task(r["r7"], "r7", 1, "cancelled")
    b.end(r["r7"], "r7", "withdrawn")
    return store


def _by_id(rows: list[PartyResponseMetrics]) -> dict[str, PartyResponseMetrics]:
    return {m.party_id: m for m in rows}


def _hours(value: float | None, expected: float) -> bool:
    # The reply is recorded at the real clock when the task closes: a little after "now".
    return value is not None and abs(value - expected) < 0.05


def test_by_partner(world: CaseStore) -> None:
    rows = response_metrics(world, "partner")
    assert [m.party_id for m in rows] == ["P-SECOND", "P-TEST"]
    test, second = _by_id(rows)["P-TEST"], _by_id(rows)["P-SECOND"]

    assert test.party_name == "Test Collect ApS"
    assert (test.requests, test.ended, test.replied) == (4, 3, 3)  # r3 never replied
    assert _hours(test.median_hours_to_reply, 6) and _hours(test.mean_hours_to_reply, 6)
    assert test.share_needing_second_round == 0.25  # r2 of four
    assert test.share_unresponsive_client == 0.333  # r3 of the three that ended

    # Nobody replied: counted as requests, not as replies; no time to reply at all.
    assert (second.requests, second.ended, second.replied) == (3, 2, 0)
    assert second.median_hours_to_reply is None and second.mean_hours_to_reply is None
    assert second.share_needing_second_round == 0.0
    assert second.share_unresponsive_client == 0.5  # r6 of r6 and r7 (withdrawn)


def test_by_client(world: CaseStore) -> None:
    rows = _by_id(response_metrics(world, "client"))
    assert sorted(rows) == ["CL-BY", "CL-DK", "CL-US"]

    dk = rows["CL-DK"]  # r1, r2, r3 at P-TEST and r5 at P-SECOND
    assert dk.party_name == "Dansk Kunde A/S"
    assert (dk.requests, dk.ended, dk.replied) == (4, 3, 2)
    assert _hours(dk.median_hours_to_reply, 4) and _hours(dk.mean_hours_to_reply, 4)
    assert dk.share_needing_second_round == 0.25
    assert dk.share_unresponsive_client == 0.333

    by = rows["CL-BY"]  # r4: replied, still open
    assert (by.requests, by.ended, by.replied) == (1, 0, 1)
    assert _hours(by.median_hours_to_reply, 10)
    assert by.share_unresponsive_client is None  # nothing ended yet

    us = rows["CL-US"]
    assert (us.requests, us.ended, us.replied, us.share_unresponsive_client) == (2, 2, 0, 0.5)


def test_median_and_mean_differ(store: CaseStore) -> None:
    b = Builder(store)
    for request_id, hours in (("m1", 1), ("m2", 2), ("m3", 12)):
        case_id = b.request(request_id, PARTNER, CLIENT_US, hours=hours)
        b.task(case_id, request_id, 1, "replied")
    [us] = response_metrics(store, "client", "CL-US")
    assert _hours(us.median_hours_to_reply, 2) and _hours(us.mean_hours_to_reply, 5)


def test_party_filter(world: CaseStore) -> None:
    [dk] = response_metrics(world, "client", "CL-DK")
    assert dk == _by_id(response_metrics(world, "client"))["CL-DK"]
    [second] = response_metrics(world, "partner", "P-SECOND")
    assert second.requests == 3
    assert response_metrics(world, "partner", "P-NOBODY") == []
    assert response_metrics(world, "client", "P-TEST") == []  # a partner is no client


def test_received_by_keeps_one_partners_cases(world: CaseStore) -> None:
    """What a partner may see of its clients: only the requests on cases it received."""
    rows = _by_id(response_metrics(world, "client", received_by="P-TEST"))
    assert sorted(rows) == ["CL-BY", "CL-DK"]  # CL-US sent P-TEST nothing
    dk = rows["CL-DK"]  # r1, r2, r3 only: r5 went to P-SECOND
    assert (dk.requests, dk.ended, dk.replied) == (3, 3, 2)
    assert dk.share_needing_second_round == 0.333
    assert response_metrics(world, "client", "CL-US", received_by="P-TEST") == []
    [own] = response_metrics(world, "partner", "P-TEST", received_by="P-TEST")
    assert own == _by_id(response_metrics(world, "partner"))["P-TEST"]


def test_no_requests_at_all(store: CaseStore) -> None:
    assert response_metrics(store, "partner") == []
    assert response_metrics(store, "client") == []
    empty = no_requests("CL-DK", "Dansk Kunde A/S")
    assert (empty.requests, empty.ended, empty.replied) == (0, 0, 0)
    assert empty.median_hours_to_reply is None and empty.share_needing_second_round is None


def test_a_reply_after_the_deadline_still_counts_as_a_reply(store: CaseStore) -> None:
    """The task expired first, so no task closed as replied; the reply still counts."""
    b = Builder(store)
    case_id = b.request("late-1", PARTNER, CLIENT_US, hours=50)
    b.task(case_id, "late-1", 1, "expired")
    b.reply(case_id, "late-1", "late-reply")

    [metrics] = response_metrics(store, "client", CLIENT_US.id)

    assert metrics.requests == 1 and metrics.replied == 1
    assert metrics.median_hours_to_reply is not None
    assert 49.9 < metrics.median_hours_to_reply < 50.1
