"""The partner's actions on an open request over HTTP: chat messages (JSON or multipart,
idempotent by key), checklist review, follow-up rounds, deadline extensions, withdrawal, and
the response metrics each party may see. Refusals are 409 with the workflow's code."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

import starter
from domain.models import ItemKind, Phase, RequestedItem
from store.cases import NewCase
from tests.api.conftest import OTHER_PARTNER, Api, error_of, eventually, shared_api
from tests.api.files import PNG_BYTES
from tests.conftest import CLIENT_DE_BY, CLIENT_DK, PARTNER_USER, add_case

TWO_ITEMS = [
    {"kind": "invoice_or_contract", "reason": "The amount must be proven"},
    {"kind": "proof_of_delivery", "reason": "The debtor disputes delivery"},
]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
async def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Api]:
    async with shared_api(request, tmp_path_factory.mktemp("partner"), request.param) as api:
        yield api


async def waiting_case(
    api: Api, items: list[dict[str, Any]] | None = None, case_id: str | None = None
) -> tuple[str, dict[str, Any]]:
    case_id = case_id or add_case(api.stack.store)
    asked = await api.http.post(
        f"/cases/{case_id}/info-requests",
        headers=api.partner,
        json={"items": items or TWO_ITEMS, "message": "Please send the documents."},
    )
    assert asked.status_code == 201, asked.text
    return case_id, asked.json()


async def client_replies(api: Api, case_id: str) -> None:
    response = await api.http.post(
        f"/cases/{case_id}/replies",
        headers={**api.client, "Idempotency-Key": uuid.uuid4().hex},
        data={"message": "Attached."},
    )
    assert response.status_code == 201, response.text
    for _ in range(200):
        state = await starter.get_state(api.stack.client, case_id)
        if state.phase is Phase.WAITING_FOR_DECISION:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the reply was not recorded")


def partner_messages(api: Api, case_id: str) -> list[str]:
    chat = api.stack.store.chat(case_id)
    return [m.body for m in chat if m.kind == "message" and m.author_user_id == PARTNER_USER]


async def post(api: Api, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
    return await api.http.post(path, headers=api.partner, json=body, **kwargs)


def refusal(response: httpx.Response, code: str) -> str:
    assert response.status_code == 409, response.text
    error = error_of(response)
    assert error["code"] == code, error
    return str(error["message"])


# ---- messages ---------------------------------------------------------------------------


async def test_a_json_message_reaches_the_chat_once(world: Api) -> None:
    case_id, opened = await waiting_case(world)
    headers = {**world.partner, "Idempotency-Key": "msg-1"}
    first = await world.http.post(
        f"/cases/{case_id}/messages", headers=headers, json={"message": "Any news?"}
    )
    assert first.status_code == 202, first.text
    assert first.json() == {
        "case_id": case_id,
        "request_id": opened["state"]["request_id"],
        "message_id": "msg-1",
        "status": "accepted",
        "files": [],
    }
    await eventually(lambda: "Any news?" in partner_messages(world, case_id), "the message")

    again = await world.http.post(
        f"/cases/{case_id}/messages", headers=headers, json={"message": "Any news?"}
    )
    assert again.status_code == 202
    await asyncio.sleep(0.3)  # a repeated message would show by now
    assert partner_messages(world, case_id).count("Any news?") == 1


async def test_a_multipart_message_carries_files(world: Api) -> None:
    case_id, _ = await waiting_case(world)
    response = await world.http.post(
        f"/cases/{case_id}/messages",
        headers={**world.partner, "Idempotency-Key": "msg-files"},
        data={"message": "The signed order, for reference."},
        files=[("files", ("order.png", PNG_BYTES, "image/png"))],
    )
    assert response.status_code == 202, response.text
    [stored] = response.json()["files"]
    assert stored["content_type"] == "image/png" and stored["filename"] == "order.png"

    def posted() -> bool:
        return any(
            m.attachments and m.author_user_id == PARTNER_USER
            for m in world.stack.store.chat(case_id)
        )

    await eventually(posted, "the message with its file")
    download = await world.http.get(stored["download_url"], headers=world.client)
    assert download.status_code == 200 and download.content == PNG_BYTES


async def test_a_message_needs_an_open_request(world: Api) -> None:
    pending = add_case(world.stack.store)
    unique = f"never stored {uuid.uuid4().hex}".encode()
    response = await world.http.post(
        f"/cases/{pending}/messages",
        headers={**world.partner, "Idempotency-Key": "m"},
        data={"message": "Hello?"},
        files=[("files", ("note.txt", unique, "text/plain"))],
    )
    assert "no info request" in refusal(response, "no_open_request")
    assert not world.stack.files.exists(hashlib.sha256(unique).hexdigest())  # nothing kept
    assert world.stack.store.chat(pending) == []

    case_id, _ = await waiting_case(world)
    assert (await post(world, f"/cases/{case_id}/info-request/withdraw")).status_code == 200
    late = await world.http.post(
        f"/cases/{case_id}/messages",
        headers={**world.partner, "Idempotency-Key": "late"},
        json={"message": "Hello?"},
    )
    refusal(late, "request_closed")


async def test_bad_messages_are_refused_with_the_field(world: Api) -> None:
    case_id, _ = await waiting_case(world)
    url = f"/cases/{case_id}/messages"
    headers = {**world.partner, "Idempotency-Key": "bad"}

    async def error(status: int, **kwargs: Any) -> dict[str, Any]:
        response = await world.http.post(url, **{"headers": headers, **kwargs})
        assert response.status_code == status, response.text
        return error_of(response)

    assert (await error(415, content=b"hi", headers={**headers, "Content-Type": "text/plain"}))[
        "code"
    ] == "unsupported_media_type"
    not_json = await error(
        422, content=b"{", headers={**headers, "Content-Type": "application/json"}
    )
    assert not_json["fields"] == [{"field": "body", "message": "the body is not valid JSON"}]
    empty = await error(422, json={"message": "  "})
    assert empty["fields"][0]["field"] == "body.message"
    assert (await error(422, json={"message": "x", "cc": "boss"}))["fields"][0]["field"] == (
        "body.cc"
    )
    control = await error(422, json={"message": "a\x00b"})
    assert "control character" in control["fields"][0]["message"]
    assert (await error(422, data={"text": "x"}, files=[("files", ("a.png", PNG_BYTES))]))[
        "fields"
    ][0]["field"] == "body.text"
    assert (await error(422, data={"message": "x", "files": "not a file"}))["fields"][0][
        "field"
    ] == "body.files"
    no_key = await world.http.post(url, headers=world.partner, json={"message": "x"})
    assert no_key.status_code == 422
    await asyncio.sleep(0.2)
    assert len(partner_messages(world, case_id)) == 1  # the request's own message only


# ---- review and follow-up ------------------------------------------------------------------


async def test_review_then_follow_up_round(world: Api) -> None:
    case_id, opened = await waiting_case(world)
    base = f"/cases/{case_id}/info-request"
    message = refusal(
        await post(world, f"{base}/follow-up", {"message": "More?"}), "round_still_open"
    )
    assert "round 1 is still open" in message

    reviewed = await post(
        world,
        f"{base}/review",
        {
            "reviews": [
                {"item_id": "i1", "accepted": True},
                {"item_id": "i2", "accepted": False, "reason": "The note is unsigned"},
            ]
        },
    )
    assert reviewed.status_code == 200, reviewed.text
    items = {i["item_id"]: i for i in reviewed.json()["state"]["items"]}
    assert items["i1"]["status"] == "accepted"
    assert (items["i2"]["status"], items["i2"]["rejection_reason"]) == (
        "rejected",
        "The note is unsigned",
    )
    assert reviewed.json()["task"]["id"] == opened["task"]["id"]

    unknown = await post(world, f"{base}/review", {"reviews": [{"item_id": "i9", "accepted": 1}]})
    assert "no checklist item i9" in refusal(unknown, "unknown_item")
    no_reason = await post(
        world, f"{base}/review", {"reviews": [{"item_id": "i2", "accepted": False}]}
    )
    assert no_reason.status_code == 422
    assert "needs a reason" in error_of(no_reason)["fields"][0]["message"]

    await client_replies(world, case_id)
    followed = await post(
        world,
        f"{base}/follow-up",
        {
            "message": "Please send a signed delivery note.",
            "new_items": [{"kind": "bank_statements", "reason": "Show the disbursement"}],
        },
    )
    assert followed.status_code == 200, followed.text
    state, task = followed.json()["state"], followed.json()["task"]
    assert (state["round"], state["phase"]) == (2, "waiting_for_client")
    assert [(i["item_id"], i["status"], i["round"]) for i in state["items"]] == [
        ("i1", "accepted", 1),
        ("i2", "requested", 1),
        ("i3", "requested", 2),
    ]
    assert task["id"] != opened["task"]["id"] and task["status"] == "open"
    assert "(round 2)" in task["title"]
    assert [t.status for t in world.stack.store.tasks(case_id=case_id)] == ["replied", "open"]
    assert any("Still needed (round 2):" in m for m in partner_messages(world, case_id))


async def test_follow_up_with_nothing_outstanding_is_refused(world: Api) -> None:
    case_id, _ = await waiting_case(world, items=TWO_ITEMS[:1])
    await client_replies(world, case_id)
    base = f"/cases/{case_id}/info-request"
    accepted = await post(world, f"{base}/review", {"reviews": [{"item_id": "i1", "accepted": 1}]})
    assert accepted.status_code == 200
    refusal(await post(world, f"{base}/follow-up", {"message": "More?"}), "nothing_outstanding")


# ---- deadline and withdrawal ------------------------------------------------------------


async def test_extend_the_deadline(world: Api) -> None:
    case_id, opened = await waiting_case(world)
    url = f"/cases/{case_id}/info-request/deadline"
    due = datetime.fromisoformat(opened["state"]["task"]["due_at"])
    latest = datetime.fromisoformat(opened["state"]["task"]["latest_due_at"])

    for value in ("2026-12-10T12:00:00", "0001-01-01T00:00:00+14:00", "tomorrow"):
        response = await post(world, url, {"due_at": value})
        assert response.status_code == 422, value
    refusal(await post(world, url, {"due_at": "2021-01-01T00:00:00Z"}), "deadline_in_past")
    earlier = (due - timedelta(hours=1)).isoformat()
    refusal(await post(world, url, {"due_at": earlier}), "deadline_not_later")
    too_late = (latest + timedelta(hours=1)).isoformat()
    refusal(await post(world, url, {"due_at": too_late}), "deadline_too_late")

    new_due = (due + timedelta(days=1)).astimezone(UTC)
    moved = await post(world, url, {"due_at": new_due.isoformat()})
    assert moved.status_code == 200, moved.text
    assert datetime.fromisoformat(moved.json()["state"]["task"]["due_at"]) == new_due
    assert datetime.fromisoformat(moved.json()["task"]["due_at"]) == new_due
    [task] = world.stack.store.tasks(case_id=case_id)
    assert task.due_at == new_due
    assert any("Deadline extended" in m.body for m in world.stack.store.chat(case_id))


async def test_withdraw_returns_the_case_to_pending(world: Api) -> None:
    case_id, _ = await waiting_case(world)
    url = f"/cases/{case_id}/info-request/withdraw"
    withdrawn = await post(world, url)  # no body at all
    assert withdrawn.status_code == 200, withdrawn.text
    body = withdrawn.json()
    assert body["status"] == "pending_verification"
    assert body["summary"]["outcome"] == "withdrawn"
    assert body["summary"]["task_outcome"] == "cancelled"
    assert world.stack.store.case_status(case_id).value == "pending_verification"

    again = await post(world, url, {"reason": "Twice"})
    assert again.status_code == 409 and error_of(again)["code"] in (
        "request_closed",
        "already_withdrawn",
    )
    await waiting_case(world, case_id=case_id)  # a new request may follow


async def test_actions_on_a_case_without_request_are_refused(world: Api) -> None:
    pending = add_case(world.stack.store)
    base = f"/cases/{pending}/info-request"
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    for path, body in (
        ("review", {"reviews": [{"item_id": "i1", "accepted": True}]}),
        ("follow-up", {"message": "More?"}),
        ("deadline", {"due_at": tomorrow}),
        ("withdraw", {}),
    ):
        message = refusal(await post(world, f"{base}/{path}", body), "no_request")
        assert message == f"case {pending} has no info request"


# ---- metrics -------------------------------------------------------------------------------


async def test_response_metrics_per_party(api: Api) -> None:
    """P-TEST: CL-DK replied then accepted, CL-DK closed unresponsive, CL-BY still waiting.
    CL-DK also has a request at P-OTHER, which P-TEST must not see."""
    replied, _ = await waiting_case(api)
    await client_replies(api, replied)
    accepted = await post(api, f"/cases/{replied}/decision", {"outcome": "accept"})
    assert accepted.status_code == 200, accepted.text
    silent, _ = await waiting_case(api)
    closed = await post(
        api, f"/cases/{silent}/decision", {"outcome": "close", "close_code": "unresponsive_client"}
    )
    assert closed.status_code == 200, closed.text
    await waiting_case(api, case_id=add_case(api.stack.store, CLIENT_DE_BY))
    elsewhere = f"C-{uuid.uuid4().hex[:10]}"
    api.stack.store.add_case(
        NewCase(
            id=elsewhere,
            client_id=CLIENT_DK.id,
            partner_id=OTHER_PARTNER.id,
            reference="ELSEWHERE",
            debtor_name="Debtor ApS",
            amount_minor=100_00,
            currency="DKK",
            description="Unpaid invoice",
        )
    )
    await starter.request_info(
        api.stack.client,
        starter.new_request(
            case_id=elsewhere,
            partner_user_id="U-PARTNER-OTHER",
            items=[RequestedItem(kind=ItemKind.OTHER, reason="r", description="d")],
            message="Please send it.",
        ),
        task_queue=api.stack.task_queue,
    )

    partner = await api.http.get("/metrics/response", headers=api.partner)
    assert partner.status_code == 200, partner.text
    own, clients = partner.json()["party"], {c["party_id"]: c for c in partner.json()["clients"]}
    assert own["party_id"] == "P-TEST" and own["party_name"] == "Test Collect ApS"
    assert (own["requests"], own["ended"], own["replied"]) == (3, 2, 1)
    assert own["share_unresponsive_client"] == 0.5 and own["share_needing_second_round"] == 0
    assert own["median_hours_to_reply"] is not None and own["median_hours_to_reply"] < 0.1
    assert sorted(clients) == ["CL-BY", "CL-DK"]
    assert (clients["CL-DK"]["requests"], clients["CL-DK"]["replied"]) == (2, 1)
    assert (clients["CL-BY"]["requests"], clients["CL-BY"]["ended"]) == (1, 0)

    client = await api.http.get("/metrics/response", headers=api.client)
    assert client.status_code == 200
    assert client.json()["clients"] == []
    mine = client.json()["party"]
    assert (mine["party_id"], mine["requests"], mine["replied"]) == ("CL-DK", 3, 1)

    other = await api.http.get("/metrics/response", headers=api.auth("U-PARTNER-OTHER"))
    assert other.json()["party"]["requests"] == 1
    assert [c["party_id"] for c in other.json()["clients"]] == ["CL-DK"]
    assert other.json()["clients"][0]["requests"] == 1  # not P-TEST's two
