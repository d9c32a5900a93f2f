"""The command line without a Temporal server: parsing, refusals and reading the case store.

Each test gets its own SQLite store with the demo data; TEMPORAL_ADDRESS points at a closed
port, so any command that reached for Temporal would fail with exit 3, not pass by accident.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from config import Settings
from devstack.demo import load_demo
from starter.cli import main
from store.cases import CaseStore
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
    for command in ("cases", "case", "request", "reply", "accept", "close", "state", "emails"):
        assert f"    {command} " in out
    assert "unresponsive_client" in out and "invoice_or_contract" in out


def test_unmigrated_store_gives_a_hint(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    code, _, err = run(capsys, "cases", "--partner", "P-NORDIC")
    assert code == 1
    assert "error: cannot read the case store at sqlite:///" in err and "migrate" in err
