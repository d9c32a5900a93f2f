"""The command line without a Temporal server: parsing, refusals and reading the case store.

Each test gets its own SQLite store with the demo data; TEMPORAL_ADDRESS points at a closed
port, so any command that reached for Temporal would fail with exit 3, not pass by accident.
"""

from __future__ import annotations

import json
import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from config import Settings
from devstack.demo import load_demo
from domain.models import (
    CaseStatus,
    ChecklistItem,
    CloseCode,
    ItemKind,
    ItemStatus,
    Phase,
    RequestState,
    TaskOutcome,
    TaskView,
)
from starter.cli import _deadline, _state_text, main
from store.cases import CaseStore, RequestRecord
from store.files import FileStore
from store.migrate import upgrade


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def demo_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in ("TEMPORAL_PROFILE", "TEMPORAL_CONFIG_FILE", "TEMPORAL_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("INFO_REQUESTS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cases.db'}")
    monkeypatch.setenv("FILE_STORE_DIR", str(tmp_path / "files"))
    monkeypatch.setenv("TEMPORAL_ADDRESS", f"127.0.0.1:{_closed_port()}")
    settings = Settings.from_env()
    upgrade(settings.database_url)
    store = CaseStore.from_url(settings.database_url)
    load_demo(store, FileStore(settings.file_store_dir, settings.max_file_bytes))
    store.engine.dispose()
    return settings


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


REQUEST = ["request", "C-1001", "--by", "U-PARTNER-ANNA", "--message", "Please send it."]


def test_cases_as_json_lists_the_partners_cases(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "--json", "cases", "--partner", "P-NORDIC")
    assert (code, err) == (0, "")
    cases = json.loads(out)
    assert sorted(c["id"] for c in cases) == ["C-1001", "C-1002", "C-1003", "C-1004"]
    assert {c["status"] for c in cases} == {"pending_verification"}
    c1001 = next(c for c in cases if c["id"] == "C-1001")
    assert c1001["client_name"] == "Hygge Møbler A/S" and c1001["amount_minor"] == 4_850_000

    # --json may also follow the command; a status filter narrows the list.
    code, out, _ = run(capsys, "cases", "--partner", "P-NORDIC", "--status", "active", "--json")
    assert (code, json.loads(out)) == (0, [])


def test_cases_as_text_is_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "cases", "--partner", "P-NORDIC")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["ID", "REFERENCE", "CLIENT", "STATUS", "AMOUNT", "UPDATED"]
    assert any("C-1001" in r and "48,500.00 DKK" in r and "pending_verification" in r for r in rows)


def test_unknown_partner_and_bad_status_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "cases", "--partner", "P-NOBODY")
    assert code == 2 and "error: unknown partner 'P-NOBODY'" in err
    code, _, err = run(capsys, "cases", "--partner", "P-NORDIC", "--status", "open")
    assert code == 2 and "invalid choice: 'open'" in err


def test_bad_item_kind_lists_the_valid_kinds(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, *REQUEST, "--item", "invoice:The amount must be proven")
    assert (code, out) == (2, "")
    assert err.startswith("error: --item 'invoice:The amount must be proven': unknown item kind")
    assert "invoice_or_contract, proof_of_delivery" in err and "other" in err
    assert "Traceback" not in err


def test_items_need_a_reason_and_other_a_description(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, *REQUEST, "--item", "proof_of_delivery")
    assert code == 2 and "write it as KIND:REASON" in err
    code, _, err = run(capsys, *REQUEST, "--item", "other:The debtor disputes it")
    assert code == 2 and "write it as other:DESCRIPTION:REASON" in err
    code, _, err = run(capsys, *REQUEST, "--item", "proof_of_delivery:  ")
    assert code == 2 and "reason: String should have at least 1 character" in err


def test_a_bad_timing_setting_is_refused_naming_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_REMINDERS", "abc")
    code, out, err = run(capsys, *REQUEST, "--item", "proof_of_delivery:The debtor says no")
    assert (code, out) == (2, "")
    assert err.startswith("error: bad request timing setting: MAX_REMINDERS='abc'")
    assert "unexpected" not in err and "Traceback" not in err


def test_empty_checklist_names_the_field(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, *REQUEST)
    assert (code, out) == (2, "")
    assert err == (
        "error: items: the checklist is empty: name at least one item the client must send\n"
    )


def test_missing_file_starts_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, demo_env: Settings
) -> None:
    present = tmp_path / "contract.pdf"
    present.write_bytes(b"%PDF-1.4 signed")
    missing = tmp_path / "delivery-note.pdf"
    code, _, err = run(
        capsys,
        *REQUEST,
        "--item",
        "invoice_or_contract:The amount must be proven",
        "--file",
        str(present),
        "--file",
        str(missing),
    )
    assert code == 2
    assert f"error: --file '{missing}': no such file; nothing was sent" in err
    stored = [p for p in demo_env.file_store_dir.rglob("*") if p.is_file()]
    assert len(stored) == 4  # the demo invoices only: not even the file that exists


def test_reply_with_missing_file_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "reply", "C-1001", "--message", "Here", "--file", "/no/such.pdf")
    assert code == 2 and "no such file" in err


def test_close_with_unknown_code_names_the_codes(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "close", "C-1001", "--code", "bankrupt", "--by", "U-PARTNER-ANNA")
    assert code == 2
    assert "error: close_code: unknown close code 'bankrupt'; use one of:" in err
    assert "unresponsive_client" in err


def test_unknown_case_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["case", "C-9999"], ["chat", "C-9999"], ["emails", "--case", "C-9999"]):
        code, out, err = run(capsys, *argv)
        assert (code, out) == (2, "")
        assert err == "error: unknown case 'C-9999': no case has that ID\n"


def test_case_shows_the_store_when_temporal_is_unreachable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "case", "C-1002")
    assert (code, err) == (0, "")
    assert "Case C-1002  AB-88-301  pending_verification" in out
    assert "invoice-AB-88-301.txt (text/plain" in out and "sha256 " in out
    assert "live state unavailable: cannot reach Temporal at 127.0.0.1:" in out

    code, out, _ = run(capsys, "case", "C-1002", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["case"]["case"]["status"] == "pending_verification"
    assert shown["chat"] == [] and shown["tasks"] == [] and shown["emails"] == []
    assert shown["state"] is None and "cannot reach Temporal" in shown["state_note"]


def test_temporal_commands_exit_3_when_temporal_is_unreachable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for argv in (
        ["state", "C-1001"],
        ["accept", "C-1001", "--by", "U-PARTNER-ANNA"],
        [*REQUEST, "--item", "invoice_or_contract:The amount must be proven"],
        ["message", "C-1001", "--by", "U-PARTNER-ANNA", "--message", "Any news?"],
        ["review", "C-1001", "--by", "U-PARTNER-ANNA", "--accept", "i1", "--reject", "i2:Blurry"],
        ["follow-up", "C-1001", "--by", "U-PARTNER-ANNA", "--message", "Still missing."],
        ["extend", "C-1001", "--by", "U-PARTNER-ANNA", "--until", "2026-12-10"],
        ["extend", "C-1001", "--by", "U-PARTNER-ANNA", "--until", "2026-12-10T12:00Z"],
        ["withdraw", "C-1001", "--by", "U-PARTNER-ANNA", "--reason", "By mistake"],
    ):
        code, out, err = run(capsys, *argv)
        assert (code, out) == (3, "")
        assert "error: cannot reach Temporal at 127.0.0.1:" in err


def test_empty_lists_say_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "emails") == (0, "no emails\n", "")
    assert run(capsys, "tasks", "--status", "open") == (0, "no tasks\n", "")
    assert run(capsys, "chat", "C-1001") == (0, "the chat is empty\n", "")


def test_usage_errors_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys)
    assert code == 2 and "required: COMMAND" in err
    code, _, err = run(capsys, "request", "C-1001", "--message", "hi")
    assert code == 2 and "required: --by" in err
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in (
        "cases",
        "case",
        "request",
        "reply",
        "message",
        "review",
        "follow-up",
        "extend",
        "withdraw",
        "accept",
        "close",
        "state",
        "emails",
        "metrics",
    ):
        # A whole word at the start of a help line ("case" must not pass on "cases").
        assert re.search(rf"^    {re.escape(command)}(\s|$)", out, re.MULTILINE), command
    assert "unresponsive_client" in out and "invoice_or_contract" in out


def test_unmigrated_store_gives_a_hint(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    code, _, err = run(capsys, "cases", "--partner", "P-NORDIC")
    assert code == 1
    assert "error: cannot read the case store at sqlite:///" in err and "migrate" in err


# ---- the commands on an open request: refused before Temporal is asked ----------------------

PARTNER_USER = "U-PARTNER-ANNA"


def test_review_needs_items_and_reasons(capsys: pytest.CaptureFixture[str]) -> None:
    review = ["review", "C-1001", "--by", PARTNER_USER]
    code, out, err = run(capsys, *review)
    assert (code, out) == (2, "")
    assert err == "error: name at least one item: --accept ITEM_ID or --reject ITEM_ID:REASON\n"
    code, _, err = run(capsys, *review, "--reject", "i2")
    assert code == 2 and "--reject 'i2': write it as ITEM_ID:REASON" in err
    code, _, err = run(capsys, *review, "--reject", "i2:  ")
    assert code == 2 and "write it as ITEM_ID:REASON" in err
    code, _, err = run(capsys, *review, "--accept", "no spaces please")
    assert code == 2 and "error: --accept 'no spaces please': item_id: String should match" in err


def test_follow_up_items_use_the_request_syntax(capsys: pytest.CaptureFixture[str]) -> None:
    follow_up = ["follow-up", "C-1001", "--by", PARTNER_USER, "--message", "More, please."]
    code, _, err = run(capsys, *follow_up, "--item", "invoice:The amount")
    assert code == 2 and "unknown item kind 'invoice'" in err
    code, _, err = run(capsys, *follow_up, "--item", "other:Photos")
    assert code == 2 and "write it as other:DESCRIPTION:REASON" in err
    code, _, err = run(capsys, "follow-up", "C-1001", "--by", PARTNER_USER)
    assert code == 2 and "required: --message" in err


def test_extend_needs_a_zone_or_a_plain_date(capsys: pytest.CaptureFixture[str]) -> None:
    extend = ["extend", "C-1001", "--by", PARTNER_USER, "--until"]
    code, out, err = run(capsys, *extend, "2026-12-10T17:00:00")
    assert (code, out) == (2, "")
    assert "error: --until '2026-12-10T17:00:00': give the time zone" in err
    code, _, err = run(capsys, *extend, "next friday")
    assert code == 2 and "error: --until 'next friday': not a date or time" in err
    code, _, err = run(capsys, "extend", "C-9999", "--by", PARTNER_USER, "--until", "2026-12-10")
    assert (code, err) == (2, "error: unknown case 'C-9999': no case has that ID\n")


def test_a_plain_date_is_the_end_of_that_day_for_the_client() -> None:
    # C-1001 is Hygge (Copenhagen), C-1002 Alpenbräu (Berlin), C-1003 Acme (Los Angeles).
    copenhagen = _deadline("C-1001", "2026-12-10")
    assert copenhagen == datetime(2026, 12, 10, 23, 59, 59, tzinfo=ZoneInfo("Europe/Copenhagen"))
    assert copenhagen.astimezone(UTC) == datetime(2026, 12, 10, 22, 59, 59, tzinfo=UTC)
    la = _deadline("C-1003", "2026-07-01")
    assert la.astimezone(UTC) == datetime(2026, 7, 2, 6, 59, 59, tzinfo=UTC)  # PDT, UTC-7
    given = _deadline("C-9999", "2026-12-10T17:00:00+01:00")  # an instant: no lookup
    assert given.utcoffset() == timedelta(hours=1)
    assert _deadline("C-9999", "2026-12-10T16:00Z").tzinfo is not None


def test_message_with_missing_file_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys,
        *["message", "C-1001", "--by", PARTNER_USER, "--message", "See attached."],
        *["--file", "/no/such.pdf", "--message-id", "m-1"],
    )
    assert code == 2 and "error: --file '/no/such.pdf': no such file; nothing was sent" in err
    code, _, err = run(capsys, "message", "C-1001", "--by", PARTNER_USER, "--message", " ")
    assert code == 2 and "error: message: String should have at least 1 character" in err


def _record_requests(settings: Settings) -> None:
    """Two requests as the workflow's steps record them: C-1001 (Hygge) replied after 3 hours
    and accepted; C-1002 (Alpenbräu) unanswered, closed as unresponsive."""
    store = CaseStore.from_url(settings.database_url)
    items = [
        ChecklistItem(item_id="i1", kind=ItemKind.INVOICE_OR_CONTRACT, reason="Proof"),
        ChecklistItem(
            item_id="i2",
            kind=ItemKind.OTHER,
            description="Delivery photos",
            reason="Damage claimed",
            status=ItemStatus.REJECTED,
            rejection_reason="The photos are too dark",
        ),
    ]
    for case_id, request_id, hours in (("C-1001", "req-1", 3), ("C-1002", "req-2", 50)):
        store.change_status(
            case_id=case_id,
            new_status=CaseStatus.MORE_INFO_REQUIRED,
            close_code=None,
            changed_by=PARTNER_USER,
            idempotency_key=f"{request_id}:open:status",
            opens=RequestRecord(
                request_id=request_id,
                run_id="run",
                requested_by=PARTNER_USER,
                items=[i.model_dump(mode="json") for i in items],
                requested_at=datetime.now(UTC) - timedelta(hours=hours),
            ),
        )
        store.create_task(
            case_id=case_id,
            request_id=request_id,
            title="Send it",
            due_at=datetime.now(UTC) + timedelta(days=1),
            idempotency_key=f"{request_id}:task",
        )
    # The reply step: the client's message in the chat, its time the request's first reply.
    store.post_message(
        case_id="C-1001",
        kind="message",
        author_user_id="U-HYGGE-LARS",
        body="Here.",
        idempotency_key="C-1001:reply:r-1",
        first_reply_to="req-1",
    )
    store.close_task(idempotency_key="req-1:task", outcome="replied")
    store.close_task(idempotency_key="req-2:task", outcome="expired")
    store.change_status(
        case_id="C-1002",
        new_status=CaseStatus.CLOSED,
        close_code=CloseCode.UNRESPONSIVE_CLIENT,
        changed_by=PARTNER_USER,
        idempotency_key="req-2:decision:status",
        ends_request=("req-2", "closed"),
    )
    store.engine.dispose()


def test_metrics(capsys: pytest.CaptureFixture[str], demo_env: Settings) -> None:
    assert run(capsys, "metrics", "--by", "partner") == (0, "no info requests yet\n", "")
    _record_requests(demo_env)

    code, out, err = run(capsys, "metrics", "--partner", "P-NORDIC")
    assert (code, err) == (0, "")
    header, row = out.splitlines()
    assert header.split()[:5] == ["PARTNER", "NAME", "REQUESTS", "REPLIED", "ENDED"]
    assert row.split() == [
        *["P-NORDIC", "Nordic", "Collect", "ApS", "2", "1", "1"],
        *["3.0", "h", "3.0", "h", "0%", "100%"],
    ]

    code, out, _ = run(capsys, "--json", "metrics", "--by", "client")
    rows = {m["party_id"]: m for m in json.loads(out)}
    assert code == 0 and sorted(rows) == ["CL-ALPEN", "CL-HYGGE"]
    assert rows["CL-HYGGE"]["replied"] == 1 and rows["CL-HYGGE"]["ended"] == 0
    assert rows["CL-ALPEN"]["replied"] == 0 and rows["CL-ALPEN"]["median_hours_to_reply"] is None
    assert rows["CL-ALPEN"]["share_unresponsive_client"] == 1.0

    code, out, _ = run(capsys, "metrics", "--client", "CL-ACME")
    assert (code, out) == (0, "no info requests yet for CL-ACME\n")


def test_metrics_refusals(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "metrics", "--partner", "CL-HYGGE")
    assert (code, err) == (2, "error: unknown partner 'CL-HYGGE': no partner has that ID\n")
    code, _, err = run(capsys, "metrics", "--client", "CL-NOBODY")
    assert code == 2 and "unknown client 'CL-NOBODY'" in err
    code, _, err = run(capsys, "metrics")
    assert code == 2 and "one of the arguments --partner --client --by is required" in err
    code, _, err = run(capsys, "metrics", "--partner", "P-NORDIC", "--by", "client")
    assert code == 2 and "not allowed with argument" in err


def test_case_shows_the_recorded_checklist_when_temporal_is_unreachable(
    capsys: pytest.CaptureFixture[str], demo_env: Settings
) -> None:
    _record_requests(demo_env)
    code, out, _ = run(capsys, "case", "C-1001")
    assert code == 0
    live = out[out.index("Info request (live, from Temporal)") :]
    assert "live state unavailable" in live
    assert "checklist (as last recorded in the case store)" in live
    assert "i1  requested  Original invoice or signed contract" in live
    assert "    i2  rejected   Delivery photos\n        rejected: The photos are too dark" in live


def test_state_text_shows_round_reminders_and_checklist() -> None:
    due = datetime(2026, 12, 10, 22, 59, 59, tzinfo=UTC)
    state = RequestState(
        request_id="req-1",
        case_id="C-1001",
        phase=Phase.WAITING_FOR_CLIENT,
        case_status=CaseStatus.MORE_INFO_REQUIRED,
        task=TaskView(
            task_id="req-1:r2:task",
            due_at=due,
            due_local="Thursday 10 December 2026, 23:59 (Europe/Copenhagen)",
            outcome=TaskOutcome.OPEN,
            round=2,
            latest_due_at=due + timedelta(days=8),
        ),
        round=2,
        reminders_sent=1,
        items=[
            ChecklistItem(
                item_id="i1",
                kind=ItemKind.INVOICE_OR_CONTRACT,
                reason="Proof",
                status=ItemStatus.ACCEPTED,
            ),
            ChecklistItem(
                item_id="i2",
                kind=ItemKind.PROOF_OF_DELIVERY,
                reason="Disputed",
                status=ItemStatus.REJECTED,
                rejection_reason="Unsigned",
            ),
            ChecklistItem(item_id="i3", kind=ItemKind.BANK_STATEMENTS, reason="Paid?", round=2),
        ],
    )
    text = _state_text(state)
    assert "round     2, reminders sent 1" in text
    assert "may be extended to 2026-12-18 22:59 UTC at most" in text
    assert text.endswith(
        "checklist\n"
        "  i1  accepted   Original invoice or signed contract\n"
        "  i2  rejected   Proof of delivery or of the service being completed\n"
        "      rejected: Unsigned\n"
        "  i3  requested  Bank statements showing the disbursement  (added in round 2)"
    )
