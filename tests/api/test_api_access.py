"""Who may call what: every endpoint x (own party, other party, wrong role, no token, revoked
token). A case of another party is the same 404 as a case that does not exist."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest

import starter
from domain.models import ClientReply, ItemKind, Phase, RequestedItem, RequestState
from store.tokens import issue_token, revoke_token
from tests.api.conftest import (
    OTHER_CLIENT_USER,
    OTHER_PARTNER,
    OTHER_PARTNER_USER,
    Api,
    error_of,
    shared_api,
)
from tests.api.files import PDF_BYTES
from tests.conftest import CLIENT_DE_BY, CLIENT_DK, CLIENT_USER, PARTNER, PARTNER_USER, add_case

ANONYMOUS = "anonymous"
REVOKED = "revoked"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
async def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Api]:
    async with shared_api(request, tmp_path_factory.mktemp("access"), request.param) as api:
        revoked = issue_token(api.stack.store, CLIENT_USER, label="to revoke")
        assert revoke_token(api.stack.store, revoked)
        api.tokens[REVOKED] = revoked
        yield api


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: str  # {case} and {sha} are filled in per test
    # What the case must have before the call: "pending", "waiting" (an open request) or
    # "replied" (an open request the client has answered).
    setup: str = "pending"
    # A body, or one built from the open request's state (e.g. a deadline after its own).
    json: dict[str, Any] | Callable[[RequestState], dict[str, Any]] | None = None
    form: dict[str, str] | None = None
    files: bool = False
    key: bool = False  # sends an Idempotency-Key
    # Expected status per caller; callers not named get the default for their kind.
    expect: dict[str, int] = field(default_factory=dict)
    case_scoped: bool = True


NEW_CASE_FORM = {
    "partner_id": PARTNER.id,
    "reference": "REF-ACCESS",
    "debtor_name": "Debtor ApS",
    "amount_minor": "10000",
    "currency": "DKK",
    "description": "Unpaid invoice",
}
READ = {
    CLIENT_USER: 200,
    PARTNER_USER: 200,
    OTHER_CLIENT_USER: 404,
    OTHER_PARTNER_USER: 404,
}
ENDPOINTS = [
    Endpoint("case", "GET", "/cases/{case}", expect=READ),
    Endpoint("chat", "GET", "/cases/{case}/chat", expect=READ),
    Endpoint("history", "GET", "/cases/{case}/history", expect=READ),
    Endpoint("file", "GET", "/cases/{case}/files/{sha}", expect=READ),
    Endpoint("list cases", "GET", "/cases", case_scoped=False, expect=dict.fromkeys(READ, 200)),
    Endpoint(
        "list tasks",
        "GET",
        "/tasks?status=all",
        setup="waiting",
        case_scoped=False,
        expect=dict.fromkeys(READ, 200),
    ),
    Endpoint(
        "submit case",
        "POST",
        "/cases",
        form=NEW_CASE_FORM,
        files=True,
        case_scoped=False,
        expect={
            CLIENT_USER: 201,
            OTHER_CLIENT_USER: 201,
            PARTNER_USER: 403,
            OTHER_PARTNER_USER: 403,
        },
    ),
    Endpoint(
        "reply",
        "POST",
        "/cases/{case}/replies",
        setup="waiting",
        form={"message": "Here it is."},
        files=True,
        key=True,
        expect={
            CLIENT_USER: 201,
            OTHER_CLIENT_USER: 404,
            PARTNER_USER: 403,
            OTHER_PARTNER_USER: 403,
        },
    ),
    Endpoint(
        "request info",
        "POST",
        "/cases/{case}/info-requests",
        json={
            "items": [{"kind": "invoice_or_contract", "reason": "Proof of the claim"}],
            "message": "Please send the invoice.",
        },
        expect={
            PARTNER_USER: 201,
            OTHER_PARTNER_USER: 404,
            CLIENT_USER: 403,
            OTHER_CLIENT_USER: 403,
        },
    ),
    Endpoint(
        "decide",
        "POST",
        "/cases/{case}/decision",
        setup="waiting",
        json={"outcome": "close", "close_code": "paid"},
        expect={
            PARTNER_USER: 200,
            OTHER_PARTNER_USER: 404,
            CLIENT_USER: 403,
            OTHER_CLIENT_USER: 403,
        },
    ),
]
PARTNER_ONLY = {
    PARTNER_USER: 200,
    OTHER_PARTNER_USER: 404,
    CLIENT_USER: 403,
    OTHER_CLIENT_USER: 403,
}


def _later_deadline(state: RequestState) -> dict[str, Any]:
    assert state.task is not None
    return {"due_at": (state.task.due_at + timedelta(hours=1)).isoformat()}


ENDPOINTS += [
    Endpoint(
        "message",
        "POST",
        "/cases/{case}/messages",
        setup="waiting",
        form={"message": "Could you also send the delivery note?"},
        files=True,
        key=True,
        expect={**PARTNER_ONLY, PARTNER_USER: 202},
    ),
    Endpoint(
        "review",
        "POST",
        "/cases/{case}/info-request/review",
        setup="waiting",
        json={"reviews": [{"item_id": "i1", "accepted": False, "reason": "Unreadable scan"}]},
        expect=PARTNER_ONLY,
    ),
    Endpoint(
        "follow-up",
        "POST",
        "/cases/{case}/info-request/follow-up",
        setup="replied",
        json={"message": "Please send a readable scan."},
        expect=PARTNER_ONLY,
    ),
    Endpoint(
        "extend deadline",
        "POST",
        "/cases/{case}/info-request/deadline",
        setup="waiting",
        json=_later_deadline,
        expect=PARTNER_ONLY,
    ),
    Endpoint(
        "withdraw",
        "POST",
        "/cases/{case}/info-request/withdraw",
        setup="waiting",
        json={"reason": "Sent by mistake"},
        expect=PARTNER_ONLY,
    ),
    Endpoint(
        "response metrics",
        "GET",
        "/metrics/response",
        setup="waiting",
        case_scoped=False,
        expect=dict.fromkeys(READ, 200),
    ),
]
CALLERS = [CLIENT_USER, PARTNER_USER, OTHER_CLIENT_USER, OTHER_PARTNER_USER, ANONYMOUS, REVOKED]
# The party each caller speaks for in the metrics.
PARTY_OF = {
    CLIENT_USER: CLIENT_DK.id,
    PARTNER_USER: PARTNER.id,
    OTHER_CLIENT_USER: CLIENT_DE_BY.id,
    OTHER_PARTNER_USER: OTHER_PARTNER.id,
}


async def _prepare(api: Api, endpoint: Endpoint) -> tuple[str, str, RequestState | None]:
    """A fresh case of CL-DK at P-TEST with a submitted file; with an open request (answered
    by the client) if the endpoint needs one. Returns the case ID, the file's hash and the
    request's state."""
    store = api.stack.store
    case_id = add_case(store)
    ref = api.stack.files.put_bytes(
        PDF_BYTES, filename="invoice.pdf", content_type="application/pdf"
    )
    store.post_message(
        case_id=case_id,
        kind="message",
        author_user_id=CLIENT_USER,
        body="The invoice, as promised.",
        attachments=[ref],
        idempotency_key=f"{case_id}:access-test",
    )
    if endpoint.setup == "pending":
        return case_id, ref.sha256, None
    state = await starter.request_info(
        api.stack.client,
        starter.new_request(
            case_id=case_id,
            partner_user_id=PARTNER_USER,
            items=[RequestedItem(kind=ItemKind.INVOICE_OR_CONTRACT, reason="Proof")],
            message="Please send the invoice.",
        ),
        task_queue=api.stack.task_queue,
    )
    if endpoint.setup == "replied":
        await starter.send_client_reply(
            api.stack.client, case_id, ClientReply(reply_id="r-1", message="Attached.")
        )
        for _ in range(200):  # a signal: recorded a moment later
            state = await starter.get_state(api.stack.client, case_id)
            if state.phase is Phase.WAITING_FOR_DECISION:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"the reply on {case_id} was not recorded")
    return case_id, ref.sha256, state


async def _call(
    api: Api,
    endpoint: Endpoint,
    caller: str,
    case_id: str,
    sha: str,
    state: RequestState | None = None,
) -> httpx.Response:
    headers = {} if caller == ANONYMOUS else api.auth(caller)
    if endpoint.key:
        headers["Idempotency-Key"] = uuid.uuid4().hex
    url = endpoint.path.format(case=case_id, sha=sha)
    files = [("files", ("note.pdf", PDF_BYTES, "application/pdf"))] if endpoint.files else None
    body = endpoint.json
    if callable(body):
        assert state is not None
        body = body(state)
    return await api.http.request(
        endpoint.method, url, headers=headers, json=body, data=endpoint.form, files=files
    )


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
async def test_access(world: Api, endpoint: Endpoint, caller: str) -> None:
    case_id, sha, state = await _prepare(world, endpoint)
    response = await _call(world, endpoint, caller, case_id, sha, state)

    if caller in (ANONYMOUS, REVOKED):
        assert response.status_code == 401, response.text
        assert error_of(response)["code"] == "unauthenticated"
        assert response.headers["www-authenticate"] == "Bearer"
        return
    expected = endpoint.expect[caller]
    assert response.status_code == expected, response.text
    if expected == 403:
        assert error_of(response)["code"] == "forbidden"
    if expected == 404:
        # Exactly what a case that does not exist gets: nothing tells them apart.
        missing_id = f"C-{uuid.uuid4().hex[:10]}"
        missing = await _call(world, endpoint, caller, missing_id, sha, state)
        assert missing.status_code == 404
        assert response.text.replace(case_id, missing_id) == missing.text
        assert error_of(response) == {"code": "not_found", "message": f"case {case_id!r} not found"}
    if endpoint.path == "/metrics/response":
        # Each party's own numbers; a partner's clients only as seen on its own cases.
        metrics = response.json()
        assert metrics["party"]["party_id"] == PARTY_OF[caller]
        clients = {m["party_id"] for m in metrics["clients"]}
        if caller == PARTNER_USER:
            assert CLIENT_DK.id in clients and metrics["party"]["requests"] >= 1
        elif caller == CLIENT_USER:
            assert clients == set() and metrics["party"]["requests"] >= 1
        else:  # the other parties have no request, and see nothing of this one
            assert clients == set() and metrics["party"]["requests"] == 0
    elif not endpoint.case_scoped and endpoint.method == "GET":
        # Lists show the case to its own parties only.
        listed = response.json()
        ids = (
            [c["id"] for c in listed["items"]]
            if "items" in listed
            else [t["case_id"] for t in listed]
        )
        assert (case_id in ids) == (caller in (CLIENT_USER, PARTNER_USER))


async def test_a_file_of_another_case_is_not_served_through_yours(world: Api) -> None:
    """The file store is shared by all cases; a hash must belong to the case in the URL."""
    theirs, sha, _ = await _prepare(world, ENDPOINTS[0])
    mine = add_case(world.stack.store)
    assert (
        await world.http.get(f"/cases/{theirs}/files/{sha}", headers=world.client)
    ).status_code == 200
    response = await world.http.get(f"/cases/{mine}/files/{sha}", headers=world.client)
    assert response.status_code == 404
    assert error_of(response) == {"code": "not_found", "message": "file not found"}


async def test_malformed_authorization_headers_are_401(world: Api) -> None:
    for value in ("Bearer", "Basic dXNlcjpwYXNz", "Bearer not-a-token", "Bearer irq_" + "x" * 300):
        response = await world.http.get("/cases", headers={"Authorization": value})
        assert response.status_code == 401, value
        assert error_of(response)["code"] == "unauthenticated"
