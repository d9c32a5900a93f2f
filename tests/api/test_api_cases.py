"""Cases: submitting (idempotent with a key), Cases Received (filter, sort, pages, total), and
the partner's actions with the refusals the workflow gives (409 with its message)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from store.queries import CaseSort
from store.tokens import issue_token
from tests.api.conftest import OTHER_PARTNER, Api, error_of, shared_api
from tests.conftest import CLIENT_DE_BY, CLIENT_DK, PARTNER, add_case

FORM = {
    "partner_id": PARTNER.id,
    "reference": "REF-1",
    "debtor_name": "Debtor ApS",
    "amount_minor": "10000",
    "currency": "DKK",
    "description": "Unpaid invoice",
}
ASK = {
    "items": [{"kind": "invoice_or_contract", "reason": "Proof of the claim"}],
    "message": "Please send the invoice.",
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
async def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Api]:
    async with shared_api(request, tmp_path_factory.mktemp("cases"), request.param) as api:
        # A partner of its own, so its Cases Received holds only this module's cases.
        api.stack.store.add_user("U-LISTER", OTHER_PARTNER.id, "Lis Lister", "lis@x.example")
        api.tokens["U-LISTER"] = issue_token(api.stack.store, "U-LISTER")
        yield api


async def test_submitting_with_the_same_key_twice_is_one_case(world: Api) -> None:
    headers = {**world.client, "Idempotency-Key": "submit-1"}
    first = await world.http.post("/cases", headers=headers, data=FORM)
    again = await world.http.post("/cases", headers=headers, data={**FORM, "reference": "X"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assert first.json()["case"]["reference"] == "REF-1"
    # Keys are per client: another client's same key is another case.
    other = issue_token(world.stack.store, "U-CLIENT-BY")
    theirs = await world.http.post(
        "/cases",
        headers={"Authorization": f"Bearer {other}", "Idempotency-Key": "submit-1"},
        data=FORM,
    )
    assert theirs.status_code == 201
    assert theirs.json()["case"]["id"] != first.json()["case"]["id"]
    assert theirs.json()["case"]["client_id"] == CLIENT_DE_BY.id


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"partner_id": "P-NOPE"}, "body.partner_id"),
        ({"partner_id": CLIENT_DK.id}, "body.partner_id"),  # a client is not a partner
        ({"amount_minor": "0"}, "body.amount_minor"),
        ({"amount_minor": "99999999999"}, "body.amount_minor"),
        ({"currency": "dkk"}, "body.currency"),
        ({"reference": "   "}, "body.reference"),
        ({"description": "nul\x00byte"}, "body.description"),
    ],
)
async def test_a_bad_submission_is_422_naming_the_field(
    world: Api, change: dict[str, str], field: str
) -> None:
    response = await world.http.post("/cases", headers=world.client, data={**FORM, **change})
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert [f["field"] for f in error["fields"]] == [field]


async def test_cases_received_filters_sorts_and_pages(world: Api) -> None:
    lister = world.auth("U-LISTER")
    created = []
    for n in range(5):
        response = await world.http.post(
            "/cases",
            headers=world.client,
            data={**FORM, "partner_id": OTHER_PARTNER.id, "reference": f"R-{n}"},
        )
        created.append(response.json()["case"]["id"])

    first = await world.http.get("/cases", params={"sort": "reference", "limit": 2}, headers=lister)
    page = first.json()
    assert [c["reference"] for c in page["items"]] == ["R-0", "R-1"]
    assert (page["total"], page["limit"], page["offset"], page["next_offset"]) == (5, 2, 0, 2)
    last = await world.http.get(
        "/cases", params={"sort": "-reference", "limit": 2, "offset": 4}, headers=lister
    )
    assert [c["reference"] for c in last.json()["items"]] == ["R-0"]
    assert last.json()["next_offset"] is None
    newest = await world.http.get("/cases", params={"sort": "-created_at"}, headers=lister)
    assert [c["id"] for c in newest.json()["items"]] == created[::-1]
    for sort in CaseSort:
        assert (await world.http.get("/cases", params={"sort": sort}, headers=lister)).json()[
            "total"
        ] == 5

    asked = await world.http.post(f"/cases/{created[2]}/info-requests", headers=lister, json=ASK)
    assert asked.status_code == 201
    waiting = await world.http.get(
        "/cases", params={"status": "more_info_required"}, headers=lister
    )
    assert [c["id"] for c in waiting.json()["items"]] == [created[2]]
    assert waiting.json()["total"] == 1
    assert [t["case_id"] for t in (await world.http.get("/tasks", headers=lister)).json()] == [
        created[2]
    ]


async def test_a_case_already_waiting_is_409_with_the_workflows_message(world: Api) -> None:
    case_id = add_case(world.stack.store)
    assert (
        await world.http.post(f"/cases/{case_id}/info-requests", headers=world.partner, json=ASK)
    ).status_code == 201
    again = await world.http.post(
        f"/cases/{case_id}/info-requests", headers=world.partner, json=ASK
    )
    assert again.status_code == 409
    error = error_of(again)
    assert error["code"] == "request_already_open"
    assert "already has an open info request" in str(error["message"])
    assert len(world.stack.store.tasks(case_id=case_id)) == 1


async def test_accepting_before_a_reply_is_409_with_the_validators_message(world: Api) -> None:
    case_id = add_case(world.stack.store)
    await world.http.post(f"/cases/{case_id}/info-requests", headers=world.partner, json=ASK)
    early = await world.http.post(
        f"/cases/{case_id}/decision", headers=world.partner, json={"outcome": "accept"}
    )
    assert early.status_code == 409
    error = error_of(early)
    assert error["code"] == "too_early_to_accept"
    assert "has not replied" in str(error["message"])

    closed = await world.http.post(
        f"/cases/{case_id}/decision",
        headers=world.partner,
        json={"outcome": "close", "close_code": "unresponsive_client", "note": "No answer."},
    )
    assert closed.status_code == 200, closed.text
    assert (closed.json()["status"], closed.json()["close_code"]) == (
        "closed",
        "unresponsive_client",
    )
    twice = await world.http.post(
        f"/cases/{case_id}/decision",
        headers=world.partner,
        json={"outcome": "close", "close_code": "paid"},
    )
    assert twice.status_code == 409
    assert error_of(twice)["code"] in {"already_decided", "request_closed"}

    # A closed case cannot be asked again: refused before any workflow starts.
    again = await world.http.post(
        f"/cases/{case_id}/info-requests", headers=world.partner, json=ASK
    )
    assert again.status_code == 409
    assert error_of(again)["code"] == "invalid_transition"
    assert "Closed" in str(error_of(again)["message"])


async def test_deciding_a_case_without_a_request_is_409(world: Api) -> None:
    case_id = add_case(world.stack.store)
    response = await world.http.post(
        f"/cases/{case_id}/decision",
        headers=world.partner,
        json={"outcome": "close", "close_code": "paid"},
    )
    assert response.status_code == 409
    assert error_of(response)["code"] == "no_request"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"outcome": "close"}, "body"),
        ({"outcome": "accept", "close_code": "paid"}, "body"),
        ({"outcome": "close", "close_code": "bribed"}, "body.close_code"),
        ({"outcome": "maybe"}, "body.outcome"),
        ({"outcome": "accept", "extra": 1}, "body.extra"),
    ],
)
async def test_a_bad_decision_is_422_naming_the_field(
    world: Api, body: dict[str, object], field: str
) -> None:
    case_id = add_case(world.stack.store)
    response = await world.http.post(f"/cases/{case_id}/decision", headers=world.partner, json=body)
    assert response.status_code == 422, response.text
    fields = error_of(response)["fields"]
    assert field in [f["field"] for f in fields]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"items": [], "message": "x"}, "body.items"),
        ({"items": [{"kind": "other", "reason": "r"}], "message": "x"}, "body.items.0"),
        (
            {"items": [{"kind": "invoice_or_contract", "reason": "a\x00b"}], "message": "x"},
            "body.items",
        ),
        ({"items": ASK["items"], "message": ""}, "body.message"),
        ({"items": ASK["items"]}, "body.message"),
    ],
)
async def test_a_bad_info_request_is_422_and_starts_nothing(
    world: Api, body: dict[str, object], field: str
) -> None:
    case_id = add_case(world.stack.store)
    response = await world.http.post(
        f"/cases/{case_id}/info-requests", headers=world.partner, json=body
    )
    assert response.status_code == 422, response.text
    assert field in [f["field"] for f in error_of(response)["fields"]]
    assert world.stack.store.case_status(case_id).value == "pending_verification"
