"""The real thing, as processes: a Temporal dev server, `python worker.py`, and the command line
(`python -m starter ...`) as a person at a second terminal uses it, on a SQLite case store with
the demo cases."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from config import PROJECT_ROOT
from devstack.binaries import dev_server_path
from devstack.demo import load_demo
from store.cases import CaseStore
from store.files import FileStore
from store.migrate import upgrade
from workflows.search_attributes import dev_server_flags

PARTNER_USER = "U-PARTNER-ANNA"
CLIENT_USER = "U-HYGGE-LARS"
CLI_SECONDS = 60
# Settings the processes must not inherit from the shell running the tests.
_NOT_INHERITED = ("DATABASE_URL", "FILE_STORE_DIR", "INFO_REQUESTS_DATA_DIR", "SENDGRID_API_KEY")


@dataclass
class Service:
    env: dict[str, str]
    database_url: str
    worker_log: Path

    def cli(self, *argv: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "starter", *argv],
            cwd=PROJECT_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=CLI_SECONDS,
        )
        assert done.returncode == expect, (
            f"`starter {' '.join(argv)}` exited {done.returncode}, expected {expect}\n"
            f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}\n"
            f"worker log:\n{self.worker_log.read_text(errors='replace')[-4000:]}"
        )
        return done

    def json(self, *argv: str) -> Any:
        return json.loads(self.cli("--json", *argv).stdout)

    def store(self) -> CaseStore:
        return CaseStore.from_url(self.database_url)


@pytest.fixture(scope="module")
async def service(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Service]:
    data_dir = tmp_path_factory.mktemp("e2e")
    database_url = f"sqlite:///{data_dir / 'cases.db'}"
    upgrade(database_url)
    store = CaseStore.from_url(database_url)
    load_demo(store, FileStore(data_dir / "files", 25 * 1024 * 1024))
    store.engine.dispose()

    server = await WorkflowEnvironment.start_local(
        dev_server_existing_path=dev_server_path(),
        data_converter=pydantic_data_converter,
        dev_server_extra_args=dev_server_flags(),
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("TEMPORAL_") and key not in _NOT_INHERITED
    }
    env |= {
        "TEMPORAL_ADDRESS": server.client.service_client.config.target_host,
        "DATABASE_URL": database_url,
        "FILE_STORE_DIR": str(data_dir / "files"),
        "INFO_REQUESTS_DATA_DIR": str(data_dir),
        "PYTHONUNBUFFERED": "1",
        # The partner's messages are emailed after one quiet second instead of ten minutes.
        "BUNDLE_QUIET_SECONDS": "1",
    }
    worker_log = data_dir / "worker.log"
    try:
        with worker_log.open("wb") as log:
            worker = subprocess.Popen(
                [sys.executable, "worker.py"],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                yield Service(env, database_url, worker_log)
            finally:
                worker.terminate()
                try:
                    worker.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()
    finally:
        await server.shutdown()


def test_request_reply_accept(service: Service, tmp_path: Path) -> None:
    contract = tmp_path / "contract.pdf"
    contract.write_bytes(b"%PDF-1.4 the signed order for 12 dining tables")
    photos = tmp_path / "delivery-photos.zip"
    photos.write_bytes(b"PK\x03\x04 photos of the tables at delivery")

    opened = service.json(
        "request",
        "C-1001",
        "--by",
        PARTNER_USER,
        "--item",
        "invoice_or_contract:The claim amount must be proven",
        "--item",
        "other:Delivery photos:The debtor says the tables arrived damaged",
        "--message",
        "Please send the signed order and photos from the delivery.",
        "--file",
        str(contract),
    )
    assert opened["phase"] == "waiting_for_client"
    assert opened["case_status"] == "more_info_required"
    assert opened["task"]["outcome"] == "open"
    assert opened["task"]["due_local"].endswith("23:59 (Europe/Copenhagen)")

    reply = ["reply", "C-1001", "--as", CLIENT_USER, "--message", "The photos are attached."]
    sent = service.cli(*reply, "--file", str(photos), "--reply-id", "lars-1")
    assert "reply ID lars-1" in sent.stdout
    service.cli(*reply, "--file", str(photos), "--reply-id", "lars-1")  # resent: no duplicate

    summary = service.json("accept", "C-1001", "--by", PARTNER_USER, "--note", "Thank you.")
    assert summary["final_status"] == "active" and summary["close_code"] is None
    assert summary["task_outcome"] == "replied" and summary["replies"] == 1

    case = service.json("case", "C-1001")
    assert case["case"]["case"]["status"] == "active"
    messages = [m for m in case["chat"] if m["kind"] == "message"]
    assert [m["author_user_id"] for m in messages] == [PARTNER_USER, CLIENT_USER]
    request_message, reply_message = messages
    assert "Please send the signed order" in request_message["body"]
    assert (
        "Delivery photos (why: The debtor says the tables arrived damaged)"
        in (request_message["body"])
    )
    assert request_message["attachments"] == [_file_ref(contract, "application/pdf")]
    assert reply_message["body"] == "The photos are attached."
    assert reply_message["attachments"] == [_file_ref(photos, "application/zip")]
    notes = " | ".join(m["body"] for m in case["chat"] if m["kind"] == "system")
    assert "More Info Required" in notes and "closed by itself" in notes and "Active" in notes
    [task] = case["tasks"]
    assert task["status"] == "replied" and task["due_local"] == opened["task"]["due_local"]
    assert [(h["from_status"], h["to_status"]) for h in case["status_history"]] == [
        (None, "pending_verification"),
        ("pending_verification", "more_info_required"),
        ("more_info_required", "active"),
    ]
    emails = case["emails"]
    assert [e["to_email"] for e in emails] == [
        "finance@hygge-mobler.example",  # the request
        "anna@nordic-collect.example",  # the client replied
        "finance@hygge-mobler.example",  # the decision
    ]
    assert "replied" in emails[1]["subject"] and "accepted" in emails[2]["subject"]
    assert {e["status"] for e in emails} == {"outbox"}
    assert case["state"]["phase"] == "done"
    assert [r["reply_id"] for r in case["state"]["replies"]] == ["lars-1"]

    # What a person reads: the email bodies, and the case with its live state.
    outbox = service.cli("emails", "--case", "C-1001").stdout
    assert "The debtor says the tables arrived damaged" in outbox and "Thank you." in outbox
    shown = service.cli("case", "C-1001").stdout
    assert f"{CLIENT_USER}\n      The photos are attached." in shown
    assert "decision  accept by U-PARTNER-ANNA: Thank you." in shown


def test_request_then_close_as_unresponsive(service: Service) -> None:
    service.cli(
        "request",
        "C-1002",
        "--by",
        PARTNER_USER,
        "--item",
        "dispute_evidence:The debtor disputes the May delivery",
        "--message",
        "Please send the signed delivery note for May.",
    )
    closed = service.cli(
        "close", "C-1002", "--code", "unresponsive_client", "--by", PARTNER_USER
    ).stdout
    assert "Case C-1002 is now closed (unresponsive_client)." in closed

    case = service.json("case", "C-1002")
    assert case["case"]["case"]["status"] == "closed"
    assert case["case"]["case"]["close_code"] == "unresponsive_client"
    assert [t["status"] for t in case["tasks"]] == ["cancelled"]
    assert case["status_history"][-1]["close_code"] == "unresponsive_client"
    assert "closed" in case["emails"][-1]["subject"]
    assert case["state"]["decision"]["close_code"] == "unresponsive_client"


def test_second_request_while_open_is_refused(service: Service) -> None:
    ask = ["request", "C-1003", "--by", PARTNER_USER, "--message", "Please send the contract."]
    service.cli(*ask, "--item", "invoice_or_contract:The instalment plan must be proven")
    refused = service.cli(*ask, "--item", "bank_statements:Show the payments", expect=2)
    assert refused.stdout == ""
    assert (
        "error: case C-1003 already has an open info request; reply to it or decide it before "
        "asking again\n"
    ) in refused.stderr
    store = service.store()
    try:
        assert len(store.tasks(case_id="C-1003")) == 1
        assert len(store.emails("C-1003")) == 1
    finally:
        store.engine.dispose()


def test_message_extend_review_follow_up_withdraw_and_metrics(service: Service) -> None:
    """C-1004 (Hygge, Copenhagen): the partner writes (emailed after the quiet period),
    extends the deadline by a plain date, reviews the checklist, asks again once the client
    replied, and withdraws; the metrics count the second round."""
    by = ["--by", PARTNER_USER]
    before = _counts(service.json("metrics", "--client", "CL-HYGGE"))
    opened = service.json(
        "request",
        "C-1004",
        *by,
        "--item",
        "invoice_or_contract:The claim amount must be proven",
        "--item",
        "payment_reminders:The debtor says no reminder came",
        "--message",
        "Please send invoice 2026-140 and your reminders.",
    )
    assert [i["item_id"] for i in opened["items"]] == ["i1", "i2"]

    for n, text in enumerate(["Invoice first, please.", "The reminders can follow."], start=1):
        sent = service.cli("message", "C-1004", *by, "--message", text, "--message-id", f"m-{n}")
        assert f"message ID m-{n}" in sent.stdout

    zone = ZoneInfo("Europe/Copenhagen")
    due_day = datetime.fromisoformat(opened["task"]["due_at"]).astimezone(zone).date()
    new_day = due_day + timedelta(days=1)
    extended = service.json("extend", "C-1004", *by, "--until", new_day.isoformat())
    assert datetime.fromisoformat(extended["task"]["due_at"]) == datetime.combine(
        new_day, clock(23, 59, 59), zone
    )

    reviewed = service.json(
        "review", "C-1004", *by, "--accept", "i1", "--reject", "i2:Only one reminder is dated"
    )
    assert [(i["item_id"], i["status"]) for i in reviewed["items"]] == [
        ("i1", "accepted"),
        ("i2", "rejected"),
    ]
    early = service.cli("follow-up", "C-1004", *by, "--message", "More, please.", expect=2)
    assert "the client's task of round 1 is still open" in early.stderr

    service.cli("reply", "C-1004", "--as", CLIENT_USER, "--message", "Both attached.")
    _wait_for(lambda: service.json("state", "C-1004")["phase"] == "waiting_for_decision")
    followed = service.cli(
        "follow-up",
        "C-1004",
        *by,
        "--message",
        "Please send the dated reminders.",
        "--item",
        "bank_statements:Show that nothing was paid",
    ).stdout
    assert "Follow-up round 2 opened on case C-1004." in followed
    assert "round     2, reminders sent 0" in followed
    assert "  i1  accepted   Original invoice or signed contract" in followed
    assert "  i2  requested  Payment reminders" in followed
    assert "  i3  requested  Bank statements showing the disbursement  (added in round 2)" in (
        followed
    )

    # The quiet period passed long ago: the messages went out by email before the withdrawal.
    store = service.store()
    try:
        _wait_for(lambda: "can follow" in " ".join(e.body for e in store.emails("C-1004")))
    finally:
        store.engine.dispose()
    withdrawn = service.cli("withdraw", "C-1004", *by, "--reason", "Paid meanwhile").stdout
    assert "withdrawn; the case is pending_verification again" in withdrawn
    refused = service.cli("withdraw", "C-1004", *by, expect=2)
    assert "error: the info request on case C-1004 is closed" in refused.stderr

    case = service.json("case", "C-1004")
    assert case["case"]["case"]["status"] == "pending_verification"
    assert [t["status"] for t in case["tasks"]] == ["replied", "cancelled"]
    assert case["state"]["withdrawn"] and case["state"]["round"] == 2
    bundled = [e["body"] for e in case["emails"] if "new message" in e["subject"]]
    for text in ("Invoice first, please.", "The reminders can follow."):
        assert sum(text in body for body in bundled) == 1
    assert "Paid meanwhile" in case["emails"][-1]["body"]

    # One more request of Hygge's: replied, ended, in two rounds, not as unresponsive.
    after = _counts(service.json("metrics", "--client", "CL-HYGGE"))
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1, 1, 0]


def _counts(metrics: list[dict[str, Any]]) -> list[int]:
    """requests, replied, ended, second rounds, unresponsive: counts from one party's row."""
    if not metrics:
        return [0] * 5
    [m] = metrics
    return [
        m["requests"],
        m["replied"],
        m["ended"],
        round(m["requests"] * (m["share_needing_second_round"] or 0)),
        round(m["ended"] * (m["share_unresponsive_client"] or 0)),
    ]


def _wait_for(check: Any, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _file_ref(path: Path, content_type: str) -> dict[str, Any]:
    data = path.read_bytes()
    return {
        "sha256": hashlib.sha256(data).hexdigest(),
        "filename": path.name,
        "content_type": content_type,
        "size": len(data),
    }
