"""The seed article's whole story, through the HTTP API alone: submit, review, request, reply,
accept; the exported history shows every step."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from domain.ids import info_request_workflow_id
from tests.api.conftest import Api, eventually
from tests.api.files import PDF_BYTES, PNG_BYTES
from tests.conftest import CLIENT_DK, CLIENT_USER, PARTNER, PARTNER_USER


async def test_seed_story_through_the_api(api: Api) -> None:
    http = api.http

    # The client submits a case with its invoice.
    submitted = await http.post(
        "/cases",
        headers=api.client,
        data={
            "partner_id": PARTNER.id,
            "reference": "HM-2026-117",
            "debtor_name": "Café Sol ApS",
            "amount_minor": "4850000",
            "currency": "DKK",
            "description": "Unpaid invoice for 12 dining tables delivered in September.",
        },
        files=[("files", ("invoice-117.pdf", PDF_BYTES, "application/pdf"))],
    )
    assert submitted.status_code == 201, submitted.text
    case_id = submitted.json()["case"]["id"]
    assert submitted.headers["location"] == f"/cases/{case_id}"
    assert submitted.json()["case"]["status"] == "pending_verification"

    # The partner finds it in Cases Received and opens it.
    received = await http.get(
        "/cases", params={"status": "pending_verification"}, headers=api.partner
    )
    assert received.status_code == 200
    assert case_id in [c["id"] for c in received.json()["items"]]
    assert received.json()["total"] >= 1
    opened = await http.get(f"/cases/{case_id}", headers=api.partner)
    assert opened.status_code == 200
    detail = opened.json()
    assert detail["description"].startswith("Unpaid invoice")
    [invoice] = detail["files"]
    assert invoice["filename"] == "invoice-117.pdf"
    assert invoice["content_type"] == "application/pdf"
    assert invoice["uploaded_by"] == CLIENT_USER

    # The partner asks for two documents, with a message.
    asked = await http.post(
        f"/cases/{case_id}/info-requests",
        headers=api.partner,
        json={
            "items": [
                {"kind": "invoice_or_contract", "reason": "The claim amount must be proven"},
                {"kind": "proof_of_delivery", "reason": "The debtor says nothing arrived"},
            ],
            "message": "Please send the signed contract and the delivery note.",
        },
    )
    assert asked.status_code == 201, asked.text
    assert asked.json()["state"]["phase"] == "waiting_for_client"
    assert asked.json()["state"]["case_status"] == "more_info_required"
    # The API read the case first, so the run started with the opening's search attributes
    # (free) instead of upserting them (a billable action).
    history = await api.stack.client.get_workflow_handle(
        info_request_workflow_id(case_id)
    ).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    assert {"CaseId", "InfoRequestPhase", "ClientDeadline", "ClientCountry", "PartnerId"} <= set(
        started.search_attributes.indexed_fields
    )

    # The client sees the task, due at the end of a day in Copenhagen.
    tasks = await http.get("/tasks", headers=api.client)
    [task] = tasks.json()
    assert task["case_id"] == case_id and task["status"] == "open"
    assert [i["kind"] for i in task["items"]] == ["invoice_or_contract", "proof_of_delivery"]
    assert task["time_zone"] == CLIENT_DK.time_zone
    due_local = datetime.fromisoformat(task["due_local"])
    assert due_local.time() == time(23, 59, 59)
    assert due_local.utcoffset() == due_local.astimezone(ZoneInfo(CLIENT_DK.time_zone)).utcoffset()
    assert datetime.fromisoformat(task["due_at"]) == due_local
    assert task["due_local_text"].endswith("23:59 (Europe/Copenhagen)")
    partner_tasks = await http.get("/tasks", headers=api.partner)
    assert [t["id"] for t in partner_tasks.json()] == [task["id"]]

    # The client replies with the delivery note; the task closes by itself.
    replied = await http.post(
        f"/cases/{case_id}/replies",
        headers={**api.client, "Idempotency-Key": "reply-1"},
        data={"message": "Attached is the signed delivery note."},
        files=[("files", ("delivery-note.png", PNG_BYTES, "image/png"))],
    )
    assert replied.status_code == 201, replied.text
    [attachment] = replied.json()["message"]["attachments"]
    await eventually(
        lambda: api.stack.store.tasks(case_id=case_id)[0].status == "replied",
        "the task to close on the reply",
    )
    assert (await http.get("/tasks", headers=api.client)).json() == []
    closed = (await http.get("/tasks", params={"status": "all"}, headers=api.client)).json()
    assert [t["status"] for t in closed] == ["replied"]

    # The partner downloads the delivery note and accepts the case.
    note = await http.get(attachment["download_url"], headers=api.partner)
    assert note.status_code == 200 and note.content == PNG_BYTES
    assert note.headers["content-type"] == "image/png"
    accepted = await http.post(
        f"/cases/{case_id}/decision", headers=api.partner, json={"outcome": "accept"}
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "active"
    active = await http.get("/cases", params={"status": "active"}, headers=api.partner)
    assert [c["id"] for c in active.json()["items"]] == [case_id]

    # The exported history holds every step.
    exported = await http.get(f"/cases/{case_id}/history", headers=api.client)
    assert exported.status_code == 200
    assert exported.headers["content-disposition"].startswith("attachment;")
    history = exported.json()
    assert history["case"]["status"] == "active"
    assert [f["filename"] for f in history["files"]] == ["invoice-117.pdf"]
    assert [(s["from_status"], s["to_status"]) for s in history["status_history"]] == [
        (None, "pending_verification"),
        ("pending_verification", "more_info_required"),
        ("more_info_required", "active"),
    ]
    [request] = history["info_requests"]
    assert request["requested_by"] == PARTNER_USER and len(request["items"]) == 2
    assert [t["status"] for t in history["tasks"]] == ["replied"]
    people = [m for m in history["chat"] if m["kind"] == "message"]
    assert [m["author_user_id"] for m in people] == [PARTNER_USER, CLIENT_USER]
    assert "signed contract" in people[0]["body"]
    assert [a["filename"] for a in people[1]["attachments"]] == ["delivery-note.png"]
    notes = " | ".join(m["body"] for m in history["chat"] if m["kind"] == "system")
    for step in ("More Info Required", "Task created", "closed by itself", "Active"):
        assert step in notes
    subjects = [e["subject"] for e in history["emails"]]
    assert len(subjects) == 3 and "replied" in subjects[1] and "accepted" in subjects[2]
