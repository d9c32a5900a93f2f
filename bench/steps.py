"""Part "steps": what a request's step bodies cost on their own, outside Temporal.

One request's ten steps (open: status, chat, task, email; reply: chat, close the task, checklist,
email; decision: status, email) called one after the other on a fresh SQLite case store, N times:
CPU per request and per step. Then what one transaction of a select and an insert costs through
the ORM (CaseStore.post_message), through SQLAlchemy Core, and through the bare sqlite3 module:
where the steps' time goes.
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

from sqlalchemy import insert, select

import activities.info_request as steps
from bench.common import add_cases, new_store, sqlite_url
from domain.models import (
    CaseStatus,
    ChecklistItem,
    ItemKind,
    RequestedItem,
    RequestOutcome,
    TaskOutcome,
)
from store.cases import utcnow
from store.files import FileStore
from store.schema import ChatMessage
from tests.conftest import CLIENT_USER, PARTNER_USER, make_activities

ITEMS = [RequestedItem(kind=ItemKind.INVOICE_OR_CONTRACT, reason="The amount must be proven")]


def _one_request(acts: steps.InfoRequestActivities, case_id: str, spent: dict[str, float]) -> None:
    def timed(name: str, step: Callable[[Any], Any], arg: Any) -> Any:
        t = time.process_time()
        result = step(arg)
        spent[name] = spent.get(name, 0.0) + time.process_time() - t
        return result

    key, now = f"req-{case_id}", datetime.now(UTC)
    checklist = [ChecklistItem(item_id="i1", kind=ITEMS[0].kind, reason=ITEMS[0].reason, round=1)]
    timed(
        "set_case_status",
        acts.set_case_status,
        steps.SetStatusInput(
            case_id=case_id,
            new_status=CaseStatus.MORE_INFO_REQUIRED,
            changed_by=PARTNER_USER,
            idempotency_key=f"{key}:open:status",
            opens=steps.OpenRequest(request_id=key, requested_at=now, items=checklist),
        ),
    )
    timed(
        "post_chat_message",
        acts.post_chat_message,
        steps.PostMessageInput(
            case_id=case_id,
            kind="message",
            author_user_id=PARTNER_USER,
            body="Please send the invoice.",
            idempotency_key=f"{key}:open:message",
        ),
    )
    created = timed(
        "create_client_task",
        acts.create_client_task,
        steps.CreateTaskInput(
            case_id=case_id,
            request_id=key,
            requested_by=PARTNER_USER,
            requested_at=now,
            items=ITEMS,
            idempotency_key=f"{key}:task",
        ),
    )
    timed(
        "send_email",
        acts.send_email,
        steps.SendEmailInput(
            kind=steps.EmailKind.INFO_REQUESTED,
            case_id=case_id,
            partner_user_id=PARTNER_USER,
            idempotency_key=f"{key}:open:email",
            items=ITEMS,
            message="Please send the invoice.",
            due_at=created.task.due_at,
        ),
    )
    timed(
        "post_chat_message",
        acts.post_chat_message,
        steps.PostMessageInput(
            case_id=case_id,
            kind="message",
            author_user_id=CLIENT_USER,
            body="Here it is.",
            idempotency_key=f"{key}:reply",
            reply_to_request=key,
        ),
    )
    timed(
        "close_client_task",
        acts.close_client_task,
        steps.CloseTaskInput(case_id=case_id, task_key=f"{key}:task", outcome=TaskOutcome.REPLIED),
    )
    timed(
        "record_checklist",
        acts.record_checklist,
        steps.ChecklistInput(
            case_id=case_id,
            request_id=key,
            items=checklist,
            note="Marked as received: i1.",
            idempotency_key=f"{key}:checklist",
        ),
    )
    timed(
        "send_email",
        acts.send_email,
        steps.SendEmailInput(
            kind=steps.EmailKind.CLIENT_REPLIED,
            case_id=case_id,
            partner_user_id=PARTNER_USER,
            idempotency_key=f"{key}:reply:email",
            replied_at=now,
        ),
    )
    timed(
        "set_case_status",
        acts.set_case_status,
        steps.SetStatusInput(
            case_id=case_id,
            new_status=CaseStatus.ACTIVE,
            changed_by=PARTNER_USER,
            idempotency_key=f"{key}:decision:status",
            ends=steps.EndRequest(request_id=key, outcome=RequestOutcome.ACCEPTED),
        ),
    )
    timed(
        "send_email",
        acts.send_email,
        steps.SendEmailInput(
            kind=steps.EmailKind.CASE_DECIDED,
            case_id=case_id,
            partner_user_id=PARTNER_USER,
            idempotency_key=f"{key}:decision:email",
        ),
    )


def _per_transaction(url: str, db_path: Path, case_id: str, n: int) -> dict[str, float]:
    """CPU ms of one transaction that looks a key up and inserts a chat message."""
    store = new_store(url)
    t = time.process_time()
    for i in range(n):
        store.post_message(
            case_id=case_id, kind="system", author_user_id=None, body="b", idempotency_key=f"o{i}"
        )
    orm = time.process_time() - t
    t = time.process_time()
    for i in range(n):
        with store.engine.begin() as conn:
            conn.execute(select(ChatMessage.id).where(ChatMessage.idempotency_key == f"c{i}"))
            conn.execute(
                insert(ChatMessage).values(
                    case_id=case_id,
                    kind="system",
                    author_user_id=None,
                    body="b",
                    idempotency_key=f"c{i}",
                    created_at=utcnow(),
                )
            )
    core = time.process_time() - t
    store.engine.dispose()
    db = sqlite3.connect(db_path, isolation_level=None)
    t = time.process_time()
    for i in range(n):
        db.execute("BEGIN IMMEDIATE")
        db.execute("SELECT id FROM chat_messages WHERE idempotency_key = ?", (f"r{i}",)).fetchone()
        db.execute(
            "INSERT INTO chat_messages (case_id, kind, author_user_id, body, idempotency_key, "
            "created_at) VALUES (?, 'system', NULL, 'b', ?, ?)",
            (case_id, f"r{i}", utcnow().isoformat()),
        )
        db.execute("COMMIT")
    raw = time.process_time() - t
    db.close()
    return {
        "orm_ms": round(orm / n * 1000, 3),
        "core_ms": round(core / n * 1000, 3),
        "sqlite3_ms": round(raw / n * 1000, 3),
    }


def run(*, n: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-steps-"))
    url = sqlite_url(work)
    store = new_store(url)
    acts = make_activities(store, FileStore(work / "files", 1 << 20))
    case_ids = add_cases(store, n, "st")
    spent: dict[str, float] = {}
    # set_case_status reads the run ID from the activity context: give it one.
    with mock.patch("temporalio.activity.info", return_value=mock.Mock(workflow_run_id="r")):
        t = time.process_time()
        for case_id in case_ids:
            _one_request(acts, case_id, spent)
        total = time.process_time() - t
    store.engine.dispose()
    return {
        "n": n,
        "cpu_ms_per_request": round(total / n * 1000, 2),
        "per_step_ms": {k: round(v / n * 1000, 2) for k, v in sorted(spent.items())},
        "one_transaction": _per_transaction(url, work / "cases.db", case_ids[0], 10 * n),
    }
