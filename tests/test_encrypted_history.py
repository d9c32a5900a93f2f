"""What Temporal stores of a run: ciphertext only, on the time-skipping server with the real
worker. The history is read by a client WITHOUT the codec, as the server or anyone with
access to its database sees it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError
from temporalio.worker import Replayer

import starter
from codec.encryption import ENCODING, KEY_ID_METADATA
from codec.keys import KeyRing
from domain.ids import info_request_workflow_id
from domain.models import (
    ClientReply,
    Decision,
    DecisionOutcome,
    InfoRequestInput,
    ItemKind,
    RequestedItem,
)
from tests.conftest import CLIENT_USER, PARTNER_USER, Stack, add_case
from workflows.info_request import InfoRequestWorkflow

DEBTOR = "Sigrid Hemmelig-Skyldnersen"
MESSAGE = f"Please send the contract {DEBTOR} signed on 3 March."
REPLY = f"Attached: the contract, signed by {DEBTOR} (CPR 010203-XXXX)."
OLD_HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def payloads_in(message: Message, path: str = "") -> Iterator[tuple[str, Payload]]:
    """Every Payload inside a proto message, with where it is."""
    if isinstance(message, Payload):
        yield path, message
        return
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        name = f"{path}.{field.name}"
        if field.message_type.GetOptions().map_entry:
            for key, item in value.items():
                if isinstance(item, Message):
                    yield from payloads_in(item, f"{name}[{key}]")
        elif isinstance(value, Message):
            yield from payloads_in(value, name)
        else:
            for i, item in enumerate(value):
                yield from payloads_in(item, f"{name}[{i}]")


def readable_by_design(path: str) -> bool:
    """Search attributes are indexed by the server (IDs, codes and dates only); a local
    activity marker's `data` detail is the SDK's own bookkeeping (seq, type, attempt), and a
    patch marker's `patch-data` the patch's ID (workflow.patched)."""
    return ".search_attributes." in path or any(
        detail in path for detail in (".details[data].", ".details[patch-data].")
    )


def raw_client(client: Client) -> Client:
    """The same connection, without the codec."""
    return Client(
        client.service_client, namespace=client.namespace, data_converter=pydantic_data_converter
    )


async def run_a_request(stack: Stack) -> tuple[InfoRequestInput, WorkflowHistory]:
    case_id = add_case(stack.store)
    request = starter.new_request(
        case_id=case_id,
        partner_user_id=PARTNER_USER,
        items=[RequestedItem(kind=ItemKind.INVOICE_OR_CONTRACT, reason=f"{DEBTOR} denies it")],
        message=MESSAGE,
    )
    await starter.request_info(stack.client, request, task_queue=stack.task_queue)
    await starter.send_client_reply(
        stack.client,
        case_id,
        ClientReply(reply_id="r-enc", client_user_id=CLIENT_USER, message=REPLY),
    )
    await starter.decide(
        stack.client, case_id, Decision(outcome=DecisionOutcome.ACCEPT, decided_by=PARTNER_USER)
    )
    handle = raw_client(stack.client).get_workflow_handle(info_request_workflow_id(case_id))
    return request, await handle.fetch_history()


async def test_history_holds_only_ciphertext(
    stack: Stack, payload_key_ring: KeyRing, test_data_converter: DataConverter
) -> None:
    request, history = await run_a_request(stack)
    key_id = payload_key_ring.current_id.encode()

    found: dict[str, list[Payload]] = {}
    for event in history.events:
        kind = EventType.Name(event.event_type)
        for path, payload in payloads_in(event, kind):
            found.setdefault(path, []).append(payload)
            if readable_by_design(path):
                continue
            assert payload.metadata["encoding"] == ENCODING, path
            assert payload.metadata[KEY_ID_METADATA] == key_id, path
            assert set(payload.metadata) == {"encoding", KEY_ID_METADATA}, path

    # The places that carry the request's and the reply's content are among them.
    for expected in (
        "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED.workflow_execution_started_event_attributes"
        ".input.payloads[0]",
        "EVENT_TYPE_MARKER_RECORDED.marker_recorded_event_attributes.details[result].payloads[0]",
        "EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED.workflow_execution_signaled_event_attributes"
        ".input.payloads[0]",
        "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED"
        ".workflow_execution_update_accepted_event_attributes.accepted_request.input.args"
        ".payloads[0]",
        "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED.workflow_execution_completed_event_attributes"
        ".result.payloads[0]",
        "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED.user_metadata.summary",
        "EVENT_TYPE_MARKER_RECORDED.user_metadata.summary",
    ):
        assert expected in found, sorted(found)
    assert len(found[next(p for p in found if "details[result]" in p)]) >= 7  # every step

    raw = b"".join(event.SerializeToString() for event in history.events)
    for secret in (DEBTOR, MESSAGE, REPLY, "Sigrid"):
        assert secret.encode() not in raw, secret
    assert b"json/plain" in raw  # the check would see plaintext: search attributes are

    # The codec gives the input back.
    [started] = found[
        "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED.workflow_execution_started_event_attributes"
        ".input.payloads[0]"
    ]
    [decoded] = await test_data_converter.decode([started], [InfoRequestInput])
    assert decoded == request
    with pytest.raises(KeyError, match="Unknown payload encoding binary/encrypted"):
        await pydantic_data_converter.decode([started], [InfoRequestInput])

    # The encrypted history replays with the codec (the worker's view after a restart).
    replayer = Replayer(workflows=[InfoRequestWorkflow], data_converter=test_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


async def test_failure_messages_are_encrypted_too(stack: Stack) -> None:
    """A ValidationError quotes the bad input, personal data included: the failure's message
    and stack trace go through the codec as well, and the caller still reads them."""
    case_id = add_case(stack.store)
    too_long = f"{DEBTOR} says she never signed. " * 40
    raw_input = {
        "request_id": uuid.uuid4().hex,
        "case_id": case_id,
        "partner_user_id": PARTNER_USER,
        "items": [{"kind": "invoice_or_contract", "reason": too_long}],
        "message": MESSAGE,
    }
    with pytest.raises(WorkflowFailureError) as failed:
        await stack.client.execute_workflow(
            "InfoRequestWorkflow",
            raw_input,
            id=info_request_workflow_id(case_id),
            task_queue=stack.task_queue,
        )
    assert isinstance(failed.value.cause, ApplicationError)
    assert "at most 1000 characters" in failed.value.cause.message
    assert "'Sigrid Hemmelig" in failed.value.cause.message  # would be stored in plain text

    handle = raw_client(stack.client).get_workflow_handle(info_request_workflow_id(case_id))
    history = await handle.fetch_history()
    event = history.events[-1]
    assert event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED
    failure = event.workflow_execution_failed_event_attributes.failure
    assert failure.message == "Encoded failure"
    assert failure.stack_trace == ""
    assert failure.encoded_attributes.metadata["encoding"] == ENCODING
    raw = b"".join(e.SerializeToString() for e in history.events)
    assert b"Sigrid" not in raw


@pytest.mark.parametrize("path", OLD_HISTORIES, ids=[p.stem for p in OLD_HISTORIES])
async def test_histories_from_before_encryption_still_replay(
    path: Path, test_data_converter: DataConverter
) -> None:
    """Runs started before encryption was turned on go on: unencrypted payloads pass through."""
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    assert not any(
        p.metadata.get("encoding") == ENCODING
        for event in history.events
        for _, p in payloads_in(event)
    )
    replayer = Replayer(workflows=[InfoRequestWorkflow], data_converter=test_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
