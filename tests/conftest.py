"""Shared fixtures: real stores (SQLite and PostgreSQL), the real Temporal test servers from
the venv, a worker per test on its own task queue, and the demo-like parties."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.info_request import InfoRequestActivities
from codec.converter import data_converter_for
from codec.keys import KeyRing
from devstack.binaries import test_server_path
from mail.mailer import Mailer
from mail.sendgrid_transport import SendGridTransport
from store.cases import CaseStore, NewCase
from store.files import FileStore
from store.migrate import upgrade
from store.views import PartyView
from tests.postgres import create_database, postgres_server
from worker import ACTIVITY_THREADS, build_worker
from workflows.search_attributes import register_search_attributes

PARTNER = PartyView(
    id="P-TEST",
    kind="partner",
    name="Test Collect ApS",
    email="desk@test-collect.example",
    country="DK",
    subdivision=None,
    time_zone="Europe/Copenhagen",
)
CLIENT_DK = PartyView(
    id="CL-DK",
    kind="client",
    name="Dansk Kunde A/S",
    email="finance@dansk-kunde.example",
    country="DK",
    subdivision=None,
    time_zone="Europe/Copenhagen",
)
CLIENT_DE_BY = PartyView(
    id="CL-BY",
    kind="client",
    name="Bayern Kunde GmbH",
    email="buchhaltung@bayern-kunde.example",
    country="DE",
    subdivision="BY",
    time_zone="Europe/Berlin",
)
CLIENT_US = PartyView(
    id="CL-US",
    kind="client",
    name="US Customer Inc.",
    email="ar@us-customer.example",
    country="US",
    subdivision="NY",
    time_zone="America/New_York",
)
PARTNER_USER = "U-PARTNER"
CLIENT_USER = "U-CLIENT"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same tests run on the embedded default (SQLite) and on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'cases.db'}"
    else:
        url = create_database(request.getfixturevalue("postgres_url"))
    upgrade(url)
    return url


@pytest.fixture
def store(db_url: str) -> Iterator[CaseStore]:
    case_store = CaseStore.from_url(db_url)
    case_store.add_party(PARTNER)
    for client in (CLIENT_DK, CLIENT_DE_BY, CLIENT_US):
        case_store.add_party(client)
    case_store.add_user(PARTNER_USER, PARTNER.id, "Pia Partner", "pia@test-collect.example")
    case_store.add_user(CLIENT_USER, CLIENT_DK.id, "Carl Client", "carl@dansk-kunde.example")
    yield case_store
    case_store.engine.dispose()


@pytest.fixture
def files(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "files", max_bytes=1024 * 1024)


def add_case(store: CaseStore, client: PartyView = CLIENT_DK) -> str:
    """A new Pending Verification case with a unique ID (workflow IDs derive from it)."""
    case_id = f"C-{uuid.uuid4().hex[:10]}"
    store.add_case(
        NewCase(
            id=case_id,
            client_id=client.id,
            partner_id=PARTNER.id,
            reference=f"REF-{case_id[2:8]}",
            debtor_name="Debtor ApS",
            amount_minor=100_00,
            currency="DKK",
            description="Unpaid invoice",
        )
    )
    return case_id


@dataclass
class Stack:
    client: Client
    store: CaseStore
    files: FileStore
    activities: InfoRequestActivities
    task_queue: str


def make_activities(
    store: CaseStore, files: FileStore, sendgrid: SendGridTransport | None = None
) -> InfoRequestActivities:
    return InfoRequestActivities(store, files, Mailer(store, sendgrid))


@pytest.fixture(scope="session")
def payload_key_ring() -> KeyRing:
    """A random payload encryption key for the session (never the dev key file)."""
    return KeyRing.generate("test-key")


@pytest.fixture(scope="session")
def test_data_converter(payload_key_ring: KeyRing) -> DataConverter:
    """The service's converter (codec.converter) on the test key ring."""
    return data_converter_for(payload_key_ring)


@pytest.fixture
async def time_skipping_env(
    test_data_converter: DataConverter,
) -> AsyncIterator[WorkflowEnvironment]:
    """A fresh server per test: runs left waiting by another test (whose worker is gone)
    would hold the clock still."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server_path(), data_converter=test_data_converter
    )
    await register_search_attributes(env.client)
    yield env
    await env.shutdown()


@pytest.fixture
async def stack(
    time_skipping_env: WorkflowEnvironment, store: CaseStore, files: FileStore
) -> AsyncIterator[Stack]:
    """A worker with the real activities on a fresh task queue of the time-skipping server."""
    activities = make_activities(store, files)
    task_queue = f"test-{uuid.uuid4().hex[:8]}"
    with ThreadPoolExecutor(ACTIVITY_THREADS) as executor:
        worker: Worker = build_worker(time_skipping_env.client, activities, executor, task_queue)
        async with worker:
            yield Stack(time_skipping_env.client, store, files, activities, task_queue)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get("SKIP_POSTGRES") == "1":
        skip = pytest.mark.skip(reason="SKIP_POSTGRES=1")
        for item in items:
            if "postgresql" in item.name:
                item.add_marker(skip)
