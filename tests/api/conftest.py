"""The API over the real stores and the real Temporal test server: `api` drives one app
through httpx's ASGI transport, with a token for each kind of caller."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from devstack.binaries import test_server_path
from store.cases import CaseStore
from store.files import FileStore
from store.migrate import upgrade
from store.tokens import issue_token
from store.views import PartyView
from tests.conftest import (
    CLIENT_DE_BY,
    CLIENT_DK,
    CLIENT_US,
    CLIENT_USER,
    PARTNER,
    PARTNER_USER,
    Stack,
    make_activities,
)
from tests.postgres import create_database
from worker import ACTIVITY_THREADS, build_worker
from workflows.search_attributes import register_search_attributes

OTHER_PARTNER = PartyView(
    id="P-OTHER",
    kind="partner",
    name="Other Collect GmbH",
    email="desk@other-collect.example",
    country="DE",
    subdivision=None,
    time_zone="Europe/Berlin",
)
OTHER_CLIENT_USER = "U-CLIENT-BY"
OTHER_PARTNER_USER = "U-PARTNER-OTHER"


def add_other_parties(store: CaseStore) -> None:
    """A second client user (of another client) and a second partner with a user."""
    store.add_party(OTHER_PARTNER)
    store.add_user(OTHER_CLIENT_USER, CLIENT_DE_BY.id, "Berta Bayer", "berta@bayern.example")
    store.add_user(OTHER_PARTNER_USER, OTHER_PARTNER.id, "Otto Other", "otto@other.example")


@dataclass
class Api:
    app: FastAPI
    http: httpx.AsyncClient
    stack: Stack
    tokens: dict[str, str]

    def auth(self, user_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user_id]}"}

    @property
    def partner(self) -> dict[str, str]:
        return self.auth(PARTNER_USER)

    @property
    def client(self) -> dict[str, str]:
        return self.auth(CLIENT_USER)


async def open_api(stack: Stack) -> AsyncIterator[Api]:
    add_other_parties(stack.store)
    tokens = {
        user: issue_token(stack.store, user, label="tests")
        for user in (PARTNER_USER, CLIENT_USER, OTHER_CLIENT_USER, OTHER_PARTNER_USER)
    }
    app = create_app(
        stack.store,
        stack.files,
        stack.client,
        task_queue=stack.task_queue,
        temporal_timeout_seconds=20,
    )
    # raise_app_exceptions: a 500 would fail the test with its traceback, never pass quietly.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
        yield Api(app=app, http=http, stack=stack, tokens=tokens)


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[Api]:
    async for opened in open_api(stack):
        yield opened


@asynccontextmanager
async def shared_api(
    request: pytest.FixtureRequest, tmp: Path, database: str
) -> AsyncIterator[Api]:
    """One API over one store and one Temporal test server, for a whole module: the same
    setup as the `store` and `stack` fixtures, built once instead of once per test. Tests
    that share it create their own cases (IDs are unique), so they do not meet."""
    if database == "sqlite":
        url = f"sqlite:///{tmp / 'cases.db'}"
    else:
        url = create_database(request.getfixturevalue("postgres_url"))
    upgrade(url)
    store = CaseStore.from_url(url)
    store.add_party(PARTNER)
    for client in (CLIENT_DK, CLIENT_DE_BY, CLIENT_US):
        store.add_party(client)
    store.add_user(PARTNER_USER, PARTNER.id, "Pia Partner", "pia@test-collect.example")
    store.add_user(CLIENT_USER, CLIENT_DK.id, "Carl Client", "carl@dansk-kunde.example")
    files = FileStore(tmp / "files", max_bytes=1024 * 1024)
    try:  # the service's own (encrypting) converter, where the shared conftest has one
        converter: DataConverter = request.getfixturevalue("test_data_converter")
    except pytest.FixtureLookupError:
        converter = pydantic_data_converter
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_path(), data_converter=converter
    )
    try:
        await register_search_attributes(env.client)
        activities = make_activities(store, files)
        task_queue = f"test-{uuid.uuid4().hex[:8]}"
        with ThreadPoolExecutor(ACTIVITY_THREADS) as executor:
            async with build_worker(env.client, activities, executor, task_queue):
                stack = Stack(env.client, store, files, activities, task_queue)
                async for opened in open_api(stack):
                    yield opened
    finally:
        await env.shutdown()
        store.engine.dispose()


async def eventually(check: Callable[[], object], what: str, seconds: float = 10.0) -> None:
    """Replies are signals: the workflow acts on them a moment later."""
    for _ in range(int(seconds / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The one error shape; fails unless the body has exactly it."""
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, dict) and {"code", "message"} <= set(error), body
    assert isinstance(error["code"], str) and isinstance(error["message"], str), body
    return error
