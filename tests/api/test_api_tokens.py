"""Bearer tokens: stored hashed, resolved to a user and party, revocable; the 0002 migration
creates exactly the table the model describes; the command line prints a token once."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from api import tokens as tokens_cli
from api.server import write_demo_tokens
from store.cases import CaseStore
from store.migrate import alembic_config, upgrade
from store.schema import Base
from store.tokens import (
    Principal,
    UnknownUser,
    issue_token,
    resolve_token,
    revoke_token,
    revoke_user_tokens,
)
from tests.conftest import CLIENT_DK, CLIENT_USER, PARTNER, PARTNER_USER


def test_a_token_resolves_to_its_user_and_party_and_only_its_hash_is_stored(
    store: CaseStore,
) -> None:
    token = issue_token(store, PARTNER_USER, label="partner app")
    assert token.startswith("irq_") and len(token) > 40
    assert resolve_token(store, token) == Principal(PARTNER_USER, PARTNER.id, "partner")
    client = issue_token(store, CLIENT_USER)
    assert resolve_token(store, client) == Principal(CLIENT_USER, CLIENT_DK.id, "client")
    assert token != issue_token(store, PARTNER_USER)  # a new one each time

    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT token_hash, label FROM api_tokens")).all()
    stored = {row[0] for row in rows}
    assert hashlib.sha256(token.encode()).hexdigest() in stored
    assert not any(token in str(row) for row in rows)


def test_revoked_and_unknown_tokens_resolve_to_nobody(store: CaseStore) -> None:
    token = issue_token(store, CLIENT_USER)
    assert revoke_token(store, token)
    assert not revoke_token(store, token)  # already revoked
    assert resolve_token(store, token) is None
    assert resolve_token(store, "irq_unknown") is None
    assert resolve_token(store, "") is None

    first, second = issue_token(store, CLIENT_USER), issue_token(store, CLIENT_USER)
    assert revoke_user_tokens(store, CLIENT_USER) == 2
    assert resolve_token(store, first) is None and resolve_token(store, second) is None


def test_a_token_only_for_a_known_user(store: CaseStore) -> None:
    with pytest.raises(UnknownUser):
        issue_token(store, "U-NOBODY")


def test_the_migration_matches_the_model_and_downgrades(db_url: str, store: CaseStore) -> None:
    with store.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert [d for d in diffs if "api_tokens" in repr(d)] == []
    assert {"token_hash"} <= {c["name"] for c in inspect(store.engine).get_columns("api_tokens")}

    store.engine.dispose()
    command.downgrade(alembic_config(db_url), "0001")
    assert "api_tokens" not in inspect(store.engine).get_table_names()
    store.engine.dispose()
    upgrade(db_url)
    assert "api_tokens" in inspect(store.engine).get_table_names()


def test_the_command_line_issues_and_revokes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'cases.db'}"
    monkeypatch.setenv("INFO_REQUESTS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", url)
    upgrade(url)
    store = CaseStore.from_url(url)
    store.add_party(PARTNER)
    store.add_user(PARTNER_USER, PARTNER.id, "Pia Partner", "pia@test-collect.example")

    assert tokens_cli.main(["issue", PARTNER_USER]) == 0
    token = capsys.readouterr().out.strip()
    assert resolve_token(store, token) == Principal(PARTNER_USER, PARTNER.id, "partner")
    assert tokens_cli.main(["issue", "U-NOBODY"]) == 1
    assert "unknown user" in capsys.readouterr().err
    assert tokens_cli.main(["revoke", token]) == 0
    assert resolve_token(store, token) is None
    assert tokens_cli.main(["revoke", token]) == 1
    store.engine.dispose()


def test_the_demo_tokens_file_has_a_fresh_working_token_per_user(
    store: CaseStore, tmp_path: Path
) -> None:
    path = tmp_path / "demo-tokens.txt"
    write_demo_tokens(store, [PARTNER_USER, CLIENT_USER, "U-NOT-THERE"], path)
    first = _tokens_in(path)
    assert set(first) == {PARTNER_USER, CLIENT_USER}
    assert resolve_token(store, first[PARTNER_USER]) == Principal(
        PARTNER_USER, PARTNER.id, "partner"
    )
    assert path.stat().st_mode & 0o777 == 0o600
    by_hand = issue_token(store, CLIENT_USER)

    write_demo_tokens(store, [PARTNER_USER, CLIENT_USER], path)  # the next `make run`
    second = _tokens_in(path)
    assert second[CLIENT_USER] != first[CLIENT_USER]
    assert resolve_token(store, first[CLIENT_USER]) is None  # the old demo token is revoked
    assert resolve_token(store, second[CLIENT_USER]) is not None
    assert resolve_token(store, by_hand) is not None  # tokens issued by hand are kept


def _tokens_in(path: Path) -> dict[str, str]:
    lines = [line.split("\t") for line in path.read_text().splitlines() if line[:1] != "#"]
    return {user: token for user, _party, token in lines}
