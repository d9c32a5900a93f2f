"""The JSON Schemas in docs/schemas/ and the JSON contract they describe.

Callers in other languages send plain JSON; the worker decodes it with the pydantic data
converter, so the behaviour checks go through that converter from raw JSON bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel, ValidationError
from temporalio import workflow
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter

from domain import schemas
from domain.models import ClientReply, Decision, InfoRequestInput, ItemKind
from workflows.info_request import InfoRequestWorkflow

M = TypeVar("M", bound=BaseModel)

SHA = "0" * 64
VALID_REQUEST: dict[str, Any] = {
    "request_id": "3f2b9c1e8a7d4b6f9e0a1b2c3d4e5f60",
    "case_id": "C-1001",
    "partner_user_id": "U-PARTNER-ANNA",
    "items": [
        {"kind": "invoice_or_contract", "reason": "The claim amount must be proven"},
        {
            "kind": "other",
            "reason": "The debtor disputes one delivery",
            "description": "The signed delivery note for 14 May",
        },
    ],
    "message": "Please send the signed contract and the delivery note.",
    "attachments": [
        {"sha256": SHA, "filename": "reminder.pdf", "content_type": "application/pdf", "size": 1}
    ],
}


def receive(model: type[M], data: dict[str, Any]) -> M:
    """Decode a JSON payload as the worker does (encoding json/plain, pydantic converter)."""
    payload = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(data).encode())
    [value] = pydantic_data_converter.payload_converter.from_payloads([payload], [model])
    assert isinstance(value, model)
    return value


def refusal(model: type[BaseModel], data: dict[str, Any]) -> ValidationError:
    with pytest.raises(ValidationError) as refused:
        receive(model, data)
    return refused.value


# ---- the committed files -------------------------------------------------------------------


def test_committed_schemas_are_up_to_date() -> None:
    expected = schemas.render_schemas()
    committed = {p.name: p.read_text(encoding="utf-8") for p in schemas.SCHEMA_DIR.glob("*.json")}
    stale = sorted(
        name
        for name in expected.keys() | committed.keys()
        if expected.get(name) != committed.get(name)
    )
    assert not stale, (
        f"docs/schemas/ is stale ({', '.join(stale)}): run `make schemas` and commit the result"
    )


def test_check_flag_lists_stale_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert schemas.main([], directory=tmp_path) == 0
    assert schemas.main(["--check"], directory=tmp_path) == 0
    (tmp_path / "Decision.schema.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "Old.schema.json").write_text("{}\n", encoding="utf-8")
    capsys.readouterr()
    assert schemas.main(["--check"], directory=tmp_path) == 1
    err = capsys.readouterr().err
    assert "Decision.schema.json" in err and "Old.schema.json" in err
    assert "make schemas" in err
    assert "InfoRequestInput.schema.json" not in err


def test_each_schema_names_its_temporal_message_and_has_no_id() -> None:
    rendered = {name: json.loads(text) for name, text in schemas.render_schemas().items()}
    assert rendered["Decision.schema.json"]["description"] == "Argument of update decide"
    assert rendered["RequestSummary.schema.json"]["description"] == (
        "Result of workflow InfoRequestWorkflow; Result of update decide; Result of update withdraw"
    )
    for name, schema in rendered.items():
        assert name == f"{schema['title']}.schema.json"
        assert "$id" not in schema


def test_schemas_cover_every_message_of_the_workflow() -> None:
    """Renaming a handler or changing its payload type must change the schemas too."""
    defn = workflow._Definition.must_from_class(InfoRequestWorkflow)
    uses: dict[type[Any], set[str]] = {}

    def use(model: Any, text: str) -> None:
        uses.setdefault(model, set()).add(text)

    assert defn.name == schemas.WORKFLOW_TYPE
    [run_arg] = defn.arg_types or []
    use(run_arg, f"Input of workflow {defn.name}")
    use(defn.ret_type, f"Result of workflow {defn.name}")
    for name, signal in defn.signals.items():
        for arg in signal.arg_types or []:
            use(arg, f"Argument of signal {name}")
    for name, query in defn.queries.items():
        use(query.ret_type, f"Result of query {name}")
    for name, update in defn.updates.items():
        for arg in update.arg_types or []:
            use(arg, f"Argument of update {name}")
        use(update.ret_type, f"Result of update {name}")
    assert {spec.model: set(spec.uses) for spec in schemas.SCHEMAS} == uses


# ---- plain JSON, as another language sends it ----------------------------------------------


def test_a_valid_request_parses() -> None:
    request = receive(InfoRequestInput, VALID_REQUEST)
    assert request.case_id == "C-1001"
    assert [item.kind for item in request.items] == [ItemKind.INVOICE_OR_CONTRACT, ItemKind.OTHER]
    assert request.attachments[0].filename == "reminder.pdf"


def test_a_valid_reply_and_decisions_parse() -> None:
    reply = receive(ClientReply, {"reply_id": "r-1", "message": "Attached."})
    assert reply.client_user_id is None and reply.attachments == []
    receive(Decision, {"outcome": "accept", "decided_by": "U-PARTNER-ANNA"})
    receive(
        Decision,
        {"outcome": "close", "close_code": "paid", "decided_by": "U-PARTNER-ANNA", "note": "Paid"},
    )


def test_an_empty_checklist_is_refused() -> None:
    error = refusal(InfoRequestInput, {**VALID_REQUEST, "items": []})
    assert error.errors()[0]["loc"] == ("items",)
    assert "the checklist is empty" in str(error)


def test_an_unknown_item_kind_is_refused() -> None:
    items = [{"kind": "passport_copy", "reason": "Identity check"}]
    error = refusal(InfoRequestInput, {**VALID_REQUEST, "items": items})
    assert error.errors()[0]["loc"] == ("items", 0, "kind")
    assert "'invoice_or_contract'" in str(error) and "'other'" in str(error)


def test_an_other_item_without_description_is_refused() -> None:
    items = [{"kind": "other", "reason": "Needed"}]
    error = refusal(InfoRequestInput, {**VALID_REQUEST, "items": items})
    assert "an item of kind 'other' needs a description" in str(error)


def test_an_unknown_field_is_refused() -> None:
    error = refusal(ClientReply, {"reply_id": "r-1", "message": "Hi", "sent_at": "now"})
    assert error.errors()[0]["loc"] == ("sent_at",)
    assert "Extra inputs are not permitted" in str(error)


def test_a_close_without_a_code_is_refused() -> None:
    error = refusal(Decision, {"outcome": "close", "decided_by": "U-PARTNER-ANNA"})
    assert "a close needs a close code; use one of: invalid_case_data" in str(error)


def test_an_unknown_close_code_is_refused() -> None:
    data = {"outcome": "close", "close_code": "bankrupt", "decided_by": "U-PARTNER-ANNA"}
    error = refusal(Decision, data)
    assert error.errors()[0]["loc"] == ("close_code",)
    assert "unknown close code 'bankrupt'; use one of: invalid_case_data" in str(error)


def test_an_accept_with_a_code_is_refused() -> None:
    data = {"outcome": "accept", "close_code": "paid", "decided_by": "U-PARTNER-ANNA"}
    assert "an accept takes no close code" in str(refusal(Decision, data))
