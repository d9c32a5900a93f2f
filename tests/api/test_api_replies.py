"""The client's reply: stored in the chat, then signalled; the Idempotency-Key is the reply's
ID, so a portal's retry changes nothing; no open request means 409 and nothing written."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import pytest

import starter
from domain.ids import reply_message_key
from domain.models import ItemKind, RequestedItem
from store import queries
from tests.api.conftest import Api, error_of, eventually, shared_api
from tests.api.files import PNG_BYTES, TEXT_BYTES
from tests.conftest import CLIENT_USER, PARTNER_USER, add_case


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
async def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Api]:
    async with shared_api(request, tmp_path_factory.mktemp("replies"), request.param) as api:
        yield api


async def waiting_case(api: Api) -> str:
    case_id = add_case(api.stack.store)
    asked = await api.http.post(
        f"/cases/{case_id}/info-requests",
        headers=api.partner,
        json={
            "items": [{"kind": "proof_of_delivery", "reason": "The debtor disputes delivery"}],
            "message": "Please send the signed delivery note.",
        },
    )
    assert asked.status_code == 201, asked.text
    return case_id


async def post_reply(
    api: Api, case_id: str, key: str, message: str = "Here it is.", content: bytes = PNG_BYTES
) -> tuple[int, dict[str, object]]:
    response = await api.http.post(
        f"/cases/{case_id}/replies",
        headers={**api.client, "Idempotency-Key": key},
        data={"message": message},
        files=[("files", ("note.png", content, "image/png"))],
    )
    return response.status_code, response.json()


def client_messages(api: Api, case_id: str) -> list[str]:
    chat = api.stack.store.chat(case_id)
    return [m.body for m in chat if m.kind == "message" and m.author_user_id == CLIENT_USER]


def notes(api: Api, case_id: str, text: str) -> int:
    return sum(text in m.body for m in api.stack.store.chat(case_id) if m.kind == "system")


async def test_the_same_idempotency_key_twice_is_one_reply(world: Api) -> None:
    case_id = await waiting_case(world)
    first_status, first = await post_reply(world, case_id, "portal-retry-1")
    assert first_status == 201 and first["replayed"] is False
    await eventually(
        lambda: world.stack.store.tasks(case_id=case_id)[0].status == "replied",
        "the task to close",
    )
    again_status, again = await post_reply(
        world, case_id, "portal-retry-1", message="A retry with other text", content=TEXT_BYTES
    )

    assert again_status == 200 and again["replayed"] is True
    assert again["message"] == first["message"]
    assert client_messages(world, case_id) == ["Here it is."]
    # The retry's file was not even stored: the key was checked first.
    assert not world.stack.files.exists(hashlib.sha256(TEXT_BYTES).hexdigest())
    await asyncio.sleep(0.3)  # let a wrongly repeated signal show, if there were one
    assert notes(world, case_id, "closed by itself") == 1
    state = await starter.get_state(world.stack.client, case_id)
    assert [r.reply_id for r in state.replies] == ["portal-retry-1"]
    assert len([e for e in world.stack.store.emails(case_id) if "replied" in e.subject]) == 1


async def test_concurrent_retries_still_make_one_reply(world: Api) -> None:
    case_id = await waiting_case(world)
    results = await asyncio.gather(*(post_reply(world, case_id, "double-click") for _ in range(3)))
    assert {status for status, _ in results} <= {200, 201}
    assert len({body["message"]["id"] for _, body in results}) == 1  # type: ignore[index]
    await eventually(
        lambda: world.stack.store.tasks(case_id=case_id)[0].status == "replied",
        "the task to close",
    )
    await asyncio.sleep(0.3)
    assert client_messages(world, case_id) == ["Here it is."]
    assert notes(world, case_id, "closed by itself") == 1


async def test_the_workflow_finds_the_portals_message_and_does_not_repeat_it(world: Api) -> None:
    case_id = await waiting_case(world)
    status, body = await post_reply(world, case_id, "r-1")
    assert status == 201
    await eventually(
        lambda: len(world.stack.store.emails(case_id)) == 2,
        "the partner's email about the reply",
    )
    stored = queries.message_by_key(world.stack.store, reply_message_key(case_id, "r-1"))
    assert stored is not None and stored.id == body["message"]["id"]  # type: ignore[index]
    assert client_messages(world, case_id) == ["Here it is."]


async def test_a_second_reply_with_a_new_key_is_kept_and_the_task_closes_once(world: Api) -> None:
    case_id = await waiting_case(world)
    assert (await post_reply(world, case_id, "first", message="Part one."))[0] == 201
    assert (await post_reply(world, case_id, "second", message="Part two."))[0] == 201
    await eventually(
        lambda: len(world.stack.store.emails(case_id)) == 3,
        "both replies to reach the partner",
    )
    assert client_messages(world, case_id) == ["Part one.", "Part two."]
    assert notes(world, case_id, "closed by itself") == 1


async def test_no_open_request_is_409_and_nothing_is_written(world: Api) -> None:
    case_id = add_case(world.stack.store)
    unique = PNG_BYTES + b"no-request"
    status, body = await post_reply(world, case_id, "k-1", content=unique)
    assert status == 409
    assert body["error"]["code"] == "no_open_request"  # type: ignore[index]
    assert world.stack.store.chat(case_id) == []
    assert not world.stack.files.exists(hashlib.sha256(unique).hexdigest())


async def test_after_the_decision_a_reply_is_409_but_a_retry_gets_the_first_answer(
    world: Api,
) -> None:
    case_id = await waiting_case(world)
    assert (await post_reply(world, case_id, "before"))[0] == 201
    await eventually(
        lambda: world.stack.store.tasks(case_id=case_id)[0].status == "replied",
        "the task to close",
    )
    decided = await world.http.post(
        f"/cases/{case_id}/decision", headers=world.partner, json={"outcome": "accept"}
    )
    assert decided.status_code == 200, decided.text
    chat_before = world.stack.store.chat(case_id)

    late_status, late = await post_reply(world, case_id, "after", content=PNG_BYTES + b"late")
    assert late_status == 409
    assert late["error"]["code"] == "request_closed"  # type: ignore[index]
    retry_status, retry = await post_reply(world, case_id, "before")
    assert retry_status == 200 and retry["replayed"] is True
    assert world.stack.store.chat(case_id) == chat_before


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        ({}, "header.Idempotency-Key"),
        ({"Idempotency-Key": "has spaces!"}, "header.Idempotency-Key"),
        ({"Idempotency-Key": "k" * 65}, "header.Idempotency-Key"),
    ],
)
async def test_the_idempotency_key_is_required_and_checked(
    world: Api, headers: dict[str, str], field: str
) -> None:
    case_id = await waiting_case(world)
    response = await world.http.post(
        f"/cases/{case_id}/replies",
        headers={**world.client, **headers},
        data={"message": "Here it is."},
    )
    assert response.status_code == 422
    fields = error_of(response)["fields"]
    assert isinstance(fields, list) and [f["field"] for f in fields] == [field]
    assert client_messages(world, case_id) == []


async def test_a_reply_with_control_characters_is_422(world: Api) -> None:
    case_id = await waiting_case(world)
    status, body = await post_reply(world, case_id, "nul", message="bad\x00text")
    assert status == 422
    assert body["error"]["fields"][0]["field"] == "body.message"  # type: ignore[index]
    assert client_messages(world, case_id) == []


async def test_a_partner_cannot_reply_for_the_client(world: Api) -> None:
    case_id = await waiting_case(world)
    response = await world.http.post(
        f"/cases/{case_id}/replies",
        headers={**world.partner, "Idempotency-Key": "x"},
        data={"message": "Pretending"},
    )
    assert response.status_code == 403
    state = await starter.get_state(world.stack.client, case_id)
    assert state.replies == []


async def test_request_info_through_the_starter_is_answerable_through_the_api(world: Api) -> None:
    """Other services open requests over Temporal; the portal answers them over HTTP."""
    case_id = add_case(world.stack.store)
    await starter.request_info(
        world.stack.client,
        starter.new_request(
            case_id=case_id,
            partner_user_id=PARTNER_USER,
            items=[RequestedItem(kind=ItemKind.BANK_STATEMENTS, reason="Loan claim")],
            message="Please send the bank statement.",
        ),
        task_queue=world.stack.task_queue,
    )
    assert (await post_reply(world, case_id, "via-http"))[0] == 201
    await eventually(
        lambda: world.stack.store.tasks(case_id=case_id)[0].status == "replied",
        "the task to close",
    )
