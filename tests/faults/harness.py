"""Processes and counters for the fault tests.

The faults come from outside the product, never from hooks in it: the Temporal dev server,
`python worker.py` and a PostgreSQL cluster run as subprocesses this module starts, kills
(SIGKILL) and restarts; SendGrid is `tests.fake_sendgrid.FakeSendGrid` with scripted answers.
What happened is read back the way an operator would: rows of the case store, counted by
idempotency key, and the Temporal history.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import select
from temporalio.api.enums.v1 import EventType, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.service import RPCError, RPCStatusCode

import starter
import workflows.search_attributes as sa
from codec.converter import data_converter_for
from codec.keys import KeyRing
from config import PROJECT_ROOT
from devstack.binaries import dev_server_path
from domain.ids import info_request_workflow_id
from domain.models import (
    ClientReply,
    Decision,
    DecisionOutcome,
    InfoRequestInput,
    ItemKind,
    Phase,
    RequestedItem,
    RequestPolicy,
    RequestState,
    RequestSummary,
)
from store.cases import CaseStore
from store.migrate import upgrade
from store.schema import ChatMessage, ClientTask, Email, StatusChange
from tests.conftest import CLIENT_DK, CLIENT_USER, PARTNER, PARTNER_USER, add_case
from tests.fake_sendgrid import FakeSendGrid
from tests.postgres import PG_BIN
from workflows import TASK_QUEUE
from workflows.info_request import InfoRequestWorkflow
from workflows.search_attributes import dev_server_flags

T = TypeVar("T")

SOAK = os.environ.get("SOAK") == "1"
soak_only = pytest.mark.skipif(not SOAK, reason="soak variant: `make soak` (SOAK=1) runs it")

# Requests these tests start carry a short workflow task timeout, so that a workflow task lost
# with a killed worker is handed to the next worker after 2 s instead of the default 10 s.
TASK_TIMEOUT = timedelta(seconds=2)
# How often the kill switch looks for the row a step writes.
POLL_SECONDS = 0.002
WORKER_READY = "worker on task queue"
# Settings the worker must not inherit from the shell running the tests.
_NOT_INHERITED = {
    "DATABASE_URL",
    "FILE_STORE_DIR",
    "INFO_REQUESTS_DATA_DIR",
    "PAYLOAD_KEYS",
    "SENDGRID_API_KEY",
    "SENDGRID_HOST",
    "METRICS_BIND",
}

ITEMS = [
    RequestedItem(kind=ItemKind.INVOICE_OR_CONTRACT, reason="The claim amount must be proven"),
    RequestedItem(kind=ItemKind.PROOF_OF_DELIVERY, reason="The debtor says nothing arrived"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except FileNotFoundError:
        return ""


# ---- Temporal dev server ----------------------------------------------------------------------


class DevServer:
    """`temporal server start-dev` on 127.0.0.1, its history in a SQLite file, so that it can be
    killed and started again on the same file and port with every execution still there."""

    def __init__(self, db_file: Path, log_file: Path, port: int | None = None) -> None:
        self.db_file = db_file
        self.log_file = log_file
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._answered = False  # once a client got through, the port is the service's address
        self._log_from = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [
            dev_server_path(),
            "server",
            "start-dev",
            "--headless",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--db-filename",
            str(self.db_file),
            "--log-level",
            "warn",
            *dev_server_flags(),
        ]
        with self.log_file.open("ab") as log:
            self._log_from = log.tell()  # this start's lines begin here
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    async def connect(self, key_ring: KeyRing, timeout: float = 60.0) -> Client:
        """A client with the service's encrypting converter, once the server answers."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is not None and self.proc.poll() is not None:
                if self._port_was_taken() and time.monotonic() < deadline:
                    # free_port's port (or one the server derives from it) was taken by
                    # another process before the server bound it. Before any client got
                    # through, move to another port; after, the workers know this address:
                    # wait for the port to come free.
                    if not self._answered:
                        self.port = free_port()
                    else:
                        await asyncio.sleep(1.0)
                    self.start()
                    continue
                raise RuntimeError(
                    f"the dev server exited with {self.proc.returncode}:\n{_tail(self.log_file)}"
                )
            try:
                client = await Client.connect(
                    self.address, data_converter=data_converter_for(key_ring)
                )
                await client.count_workflows()  # the namespace and visibility answer
                self._answered = True
                return client
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    def _port_was_taken(self) -> bool:
        with self.log_file.open("rb") as log:
            log.seek(self._log_from)
            return b"address already in use" in log.read()

    def kill(self) -> None:
        """SIGKILL: no goodbye to workers or clients, nothing flushed beyond what was
        committed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


# ---- the worker --------------------------------------------------------------------------------


def worker_env(
    *,
    temporal_address: str,
    database_url: str,
    data_dir: Path,
    key_ring: KeyRing,
    sendgrid: FakeSendGrid | None = None,
) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("TEMPORAL_") and key not in _NOT_INHERITED
    }
    env |= {
        "TEMPORAL_ADDRESS": temporal_address,
        "DATABASE_URL": database_url,
        "FILE_STORE_DIR": str(data_dir / "files"),
        "INFO_REQUESTS_DATA_DIR": str(data_dir),
        "PAYLOAD_KEYS": key_ring.to_spec(),
        "METRICS_BIND": "off",
        "PYTHONUNBUFFERED": "1",
    }
    if sendgrid is not None:
        env |= {"SENDGRID_API_KEY": sendgrid.api_key, "SENDGRID_HOST": sendgrid.host}
    return env


class WorkerProcess:
    """`python worker.py` as a subprocess. Each start is a new process with its own log file;
    `kill()` is SIGKILL (no graceful shutdown, the workflow task in hand is simply lost)."""

    def __init__(
        self,
        env: Mapping[str, str],
        log_dir: Path,
        name: str = "worker",
        polling: Callable[[int], Awaitable[bool]] | None = None,
    ) -> None:
        self.env = dict(env)
        self.polling = polling
        self.log_dir = log_dir
        self.name = name
        self.starts = 0
        self.kills = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._logs: list[Path] = []

    @property
    def pid(self) -> int:
        assert self.proc is not None, "the worker was never started"
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def start(self, timeout: float = 60.0) -> None:
        """Start a worker and return once it polls the task queue (`polling(pid)`, else once
        its log says it runs)."""
        assert not self.running, "a worker is already running"
        self.starts += 1
        log = self.log_dir / f"{self.name}-{self.starts}.log"
        self._logs.append(log)
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "worker.py"],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        pid = self.proc.pid
        while not (
            await self.polling(pid) if self.polling else WORKER_READY in _tail(log, 100_000)
        ):
            if self.proc.poll() is not None:
                raise RuntimeError(f"the worker exited with {self.proc.returncode}:\n{_tail(log)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the worker did not start in {timeout} s:\n{_tail(log)}")
            await asyncio.sleep(0.02)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.reap()

    def reap(self) -> None:
        """Wait for a process killed (by us or the kill switch) to be gone."""
        if self.proc is not None:
            self.proc.wait(timeout=30)
            if self.proc.returncode == -signal.SIGKILL:
                self.kills += 1

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def logs(self, chars: int = 6000) -> str:
        text = "".join(f"--- {log.name}\n{_tail(log, chars)}\n" for log in self._logs)
        return text[-chars:]


async def kill_when_row(
    worker: WorkerProcess,
    db_file: Path,
    sql: str,
    params: Sequence[Any] = (),
    *,
    timeout: float = 60.0,
) -> float:
    """SIGKILL the worker the moment `sql` returns a row in the SQLite case store.

    Polls every POLL_SECONDS from a thread of its own (not the event loop, which may be busy),
    so the kill lands a few milliseconds after the step committed its write: very likely before
    the workflow task that ran it completed, so the step runs again on the next worker. Returns
    how long it waited.
    """
    pid = worker.pid

    def watch() -> float:
        started = time.monotonic()
        connection = sqlite3.connect(db_file, timeout=30, check_same_thread=False)
        try:
            while True:
                if connection.execute(sql, tuple(params)).fetchone() is not None:
                    os.kill(pid, signal.SIGKILL)
                    return time.monotonic() - started
                if time.monotonic() - started > timeout:
                    raise TimeoutError(f"no row for {sql!r} {params!r} in {timeout} s")
                time.sleep(POLL_SECONDS)
        finally:
            connection.close()

    try:
        waited = await asyncio.to_thread(watch)
    except TimeoutError as e:
        raise TimeoutError(f"{e}\nworker log:\n{worker.logs()}") from e
    worker.reap()
    return waited


async def wait_for(
    predicate: Callable[[], bool | Awaitable[bool]],
    what: str,
    *,
    timeout: float = 60.0,
    interval: float = 0.05,
    logs: Callable[[], str] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            detail = f"\n{logs()}" if logs else ""
            raise TimeoutError(f"{what}: not within {timeout} s{detail}")
        await asyncio.sleep(interval)


# ---- PostgreSQL ---------------------------------------------------------------------------------


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class PgCluster:
    """A PostgreSQL cluster of our own (not the session's shared one), so that it can be
    stopped and started again on the same port while the worker uses it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.sockets = root / "sock"
        self.port = free_port()

    @property
    def server_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}"

    def init(self) -> None:
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError(f"PostgreSQL is not installed ({PG_BIN}/initdb missing)")
        self.sockets.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.sockets, "postgres")
        subprocess.run(
            _as_postgres(
                [str(PG_BIN / "initdb"), "-A", "trust", "-U", "postgres", "-D", str(self.data)]
            ),
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        command = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options]
        command += ["-l", str(self.root / "log"), "-w", "start"]
        subprocess.run(_as_postgres(command), check=True, capture_output=True)

    def stop(self, mode: str = "immediate") -> None:
        """`immediate`: the server goes away at once, open connections are cut."""
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"]),
            capture_output=True,
        )


@contextmanager
def pg_cluster() -> Iterator[PgCluster]:
    cluster = PgCluster(Path(tempfile.mkdtemp(prefix="info-requests-faults-pg-")))
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(cluster.root, ignore_errors=True)


# ---- the service: dev server, store, client -------------------------------------------------


@dataclass
class Service:
    server: DevServer
    client: Client
    store: CaseStore
    database_url: str
    data_dir: Path
    key_ring: KeyRing
    workers: list[WorkerProcess] = field(default_factory=list)

    @property
    def sqlite_file(self) -> Path:
        assert self.database_url.startswith("sqlite:///")
        return Path(self.database_url.removeprefix("sqlite:///"))

    def worker(
        self, *, sendgrid: FakeSendGrid | None = None, name: str = "worker"
    ) -> WorkerProcess:
        env = worker_env(
            temporal_address=self.server.address,
            database_url=self.database_url,
            data_dir=self.data_dir,
            key_ring=self.key_ring,
            sendgrid=sendgrid,
        )
        log_dir = self.data_dir / "logs"
        log_dir.mkdir(exist_ok=True)
        process = WorkerProcess(env, log_dir, f"{name}-{len(self.workers) + 1}", self._polling)
        self.workers.append(process)
        return process

    async def _polling(self, pid: int) -> bool:
        """Whether the worker process `pid` polls our task queue (the server lists its
        pollers by identity, `<pid>@<host>` by default)."""
        described = await self.client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=self.client.namespace,
                task_queue=TaskQueue(name=TASK_QUEUE),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
        return any(poller.identity.startswith(f"{pid}@") for poller in described.pollers)

    def new_case(self) -> str:
        return add_case(self.store, CLIENT_DK)

    async def reconnect(self) -> None:
        self.client = await self.server.connect(self.key_ring)


def prepare_store(database_url: str) -> CaseStore:
    upgrade(database_url)
    store = CaseStore.from_url(database_url)
    store.add_party(PARTNER)
    store.add_party(CLIENT_DK)
    store.add_user(PARTNER_USER, PARTNER.id, "Pia Partner", "pia@test-collect.example")
    store.add_user(CLIENT_USER, CLIENT_DK.id, "Carl Client", "carl@dansk-kunde.example")
    return store


@asynccontextmanager
async def running_service(
    data_dir: Path, database_url: str | None = None
) -> AsyncIterator[Service]:
    """A dev server (history in `data_dir/temporal.db`), a migrated case store (SQLite in
    `data_dir` unless a URL is given) and a client; workers are started by the test."""
    data_dir.mkdir(parents=True, exist_ok=True)
    database_url = database_url or f"sqlite:///{data_dir / 'cases.db'}"
    store = prepare_store(database_url)
    key_ring = KeyRing.generate("faults")
    server = DevServer(data_dir / "temporal.db", data_dir / "temporal.log")
    server.start()
    service: Service | None = None
    try:
        client = await server.connect(key_ring)
        service = Service(server, client, store, database_url, data_dir, key_ring)
        yield service
    finally:
        for worker in service.workers if service else []:
            worker.stop()
        server.stop()
        store.engine.dispose()


# ---- requests --------------------------------------------------------------------------------


async def start_request(
    client: Client,
    case_id: str,
    *,
    policy: RequestPolicy | None = None,
    task_timeout: timedelta = TASK_TIMEOUT,
) -> tuple[WorkflowHandle[InfoRequestWorkflow, RequestSummary], InfoRequestInput]:
    """Start a request as `starter.request_info` does (same input, ID, task queue, policies,
    search attributes) but with a short workflow task timeout, and without waiting for
    `opened`: the caller decides what to wait for."""
    request = starter.new_request(
        case_id=case_id,
        partner_user_id=PARTNER_USER,
        items=ITEMS,
        message="Please send the signed contract and the delivery note.",
        policy=policy or RequestPolicy(),  # the defaults, whatever the shell's environment
    )
    handle = await client.start_workflow(
        InfoRequestWorkflow.run,
        request,
        id=info_request_workflow_id(case_id),
        task_queue=TASK_QUEUE,
        task_timeout=task_timeout,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(sa.CASE_ID, case_id),
                SearchAttributePair(sa.INFO_REQUEST_PHASE, Phase.OPENING.value),
            ]
        ),
    )
    return handle, request


async def opened(
    handle: WorkflowHandle[Any, Any], refused: list[str] | None = None
) -> RequestState:
    """The `opened` update, as starter.request_info sends it: returns once the request is open
    (status, message, task, email)."""
    state: RequestState = await until_ready(
        lambda: handle.execute_update("opened", result_type=RequestState), refused=refused
    )
    return state


async def until_ready(
    call: Callable[[], Awaitable[T]], *, timeout: float = 120.0, refused: list[str] | None = None
) -> T:
    """Send an update again (`opened`, `decide`, ...) while it is refused as not ready.
    Temporal refuses updates with FAILED_PRECONDITION "Workflow Task in failed state" once a
    run's workflow task has been lost several times in a row (here: workers killed while
    holding it) until one completes; `starter` turns that into RequestError("try_again"), and
    a caller that wants the action done tries again, as this does. (A raw update through the
    handle gets the RPCError itself.)"""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await call()
        except (RPCError, starter.RequestError) as e:
            not_ready = (
                e.code == "try_again"
                if isinstance(e, starter.RequestError)
                else e.status is RPCStatusCode.FAILED_PRECONDITION
            )
            if not not_ready or time.monotonic() > deadline:
                raise
            if refused is not None:
                refused.append(e.message)
            await asyncio.sleep(0.5)


async def decide_when_ready(
    client: Client, case_id: str, decision: Decision, refused: list[str] | None = None
) -> RequestSummary:
    """`starter.decide`, sent again while the server refuses it as not ready (until_ready)."""
    return await until_ready(lambda: starter.decide(client, case_id, decision), refused=refused)


def client_reply(reply_id: str) -> ClientReply:
    return ClientReply(
        reply_id=reply_id, client_user_id=CLIENT_USER, message="Contract and note attached."
    )


def accept() -> Decision:
    return Decision(outcome=DecisionOutcome.ACCEPT, decided_by=PARTNER_USER, note="Thanks.")


async def workflow_task_timeouts(handle: WorkflowHandle[Any, Any]) -> int:
    """Workflow tasks the server gave up on (their worker died holding them)."""
    history = await handle.fetch_history()
    return sum(
        1
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT
    )


async def pending_timers(handle: WorkflowHandle[Any, Any]) -> dict[str, datetime]:
    """Timers started and neither fired nor cancelled: timer ID -> when it is due."""
    history = await handle.fetch_history()
    started: dict[str, datetime] = {}
    for event in history.events:
        if event.HasField("timer_started_event_attributes"):
            attributes = event.timer_started_event_attributes
            due = event.event_time.ToDatetime(UTC) + attributes.start_to_fire_timeout.ToTimedelta()
            started[attributes.timer_id] = due
        elif event.HasField("timer_fired_event_attributes"):
            started.pop(event.timer_fired_event_attributes.timer_id, None)
        elif event.HasField("timer_canceled_event_attributes"):
            started.pop(event.timer_canceled_event_attributes.timer_id, None)
    return started


# ---- counting --------------------------------------------------------------------------------

STATUS_CHANGES = "status changes"
CHAT = "chat messages"
TASKS = "tasks"
TASKS_CLOSED = "tasks closed"
EMAILS = "emails"
DELIVERED = "delivered"
KINDS = (STATUS_CHANGES, CHAT, TASKS, TASKS_CLOSED, EMAILS, DELIVERED)


def reply_path_keys(request_id: str, case_id: str, reply_ids: Sequence[str]) -> dict[str, set[str]]:
    """Every row a request writes on the way request -> reply(s) -> accept, by kind and
    idempotency key (docs/workflow-api.md, "The steps and the history"). The first reply
    closes the task and marks the checklist received; every reply is posted and emailed."""
    r = request_id
    emails = {f"{r}:open:email", f"{r}:decision:email"}
    emails |= {f"{r}:reply:{reply_id}:email" for reply_id in reply_ids}
    return {
        STATUS_CHANGES: {f"{r}:open:status", f"{r}:decision:status"},
        CHAT: {
            f"{r}:open:status:note",
            f"{r}:open:message",
            f"{r}:task:note",
            f"{r}:task:closed:note",
            f"{r}:reply:{reply_ids[0]}:checklist:note",
            f"{r}:decision:status:note",
        }
        | {f"{case_id}:reply:{reply_id}" for reply_id in reply_ids},
        TASKS: {f"{r}:task"},
        TASKS_CLOSED: {f"{r}:task"},
        EMAILS: emails,
        DELIVERED: set(emails),
    }


def case_rows(
    store: CaseStore, case_id: str, sendgrid: FakeSendGrid | None = None
) -> dict[str, list[str]]:
    """The idempotency keys of every row the workflow wrote for the case, by kind. A step that
    ran twice without finding its first write would show as two rows of one kind.

    DELIVERED: with the outbox, an email row is the delivery; with SendGrid, each 2xx answer of
    the fake counts (by the `idempotency_key` custom arg the mailer sends)."""
    with store.session() as s:
        status = s.scalars(
            select(StatusChange.idempotency_key).where(
                StatusChange.case_id == case_id,
                StatusChange.idempotency_key != f"case:{case_id}:submitted",
            )
        ).all()
        chat = s.scalars(
            select(ChatMessage.idempotency_key).where(ChatMessage.case_id == case_id)
        ).all()
        tasks = s.execute(
            select(ClientTask.idempotency_key, ClientTask.status).where(
                ClientTask.case_id == case_id
            )
        ).all()
        emails = s.execute(
            select(Email.idempotency_key, Email.status).where(Email.case_id == case_id)
        ).all()
    if sendgrid is None:
        delivered = [key for key, status_ in emails if status_ == "outbox"]
    else:
        delivered = [
            key
            for body in sendgrid.sent()
            if (key := custom_arg(body, "idempotency_key"))
            and custom_arg(body, "case_id") == case_id
        ]
    return {
        STATUS_CHANGES: list(status),
        CHAT: list(chat),
        TASKS: [key for key, _ in tasks],
        TASKS_CLOSED: [key for key, status_ in tasks if status_ != "open"],
        EMAILS: [key for key, _ in emails],
        DELIVERED: delivered,
    }


def custom_arg(body: Any, name: str) -> str | None:
    if not isinstance(body, dict):
        return None
    for holder in [body, *body.get("personalizations", [])]:
        value = (holder.get("custom_args") or {}).get(name) if isinstance(holder, dict) else None
        if value:
            return str(value)
    return None


@dataclass
class Tally:
    """Found against expected, by kind; lost = expected keys missing, duplicated = rows beyond
    one per expected key (a second row of the same key, or a row no step should write)."""

    label: str
    counts: dict[str, tuple[int, int]]
    lost: list[str]
    duplicated: list[str]
    notes: dict[str, str]

    def line(self) -> str:
        parts = [f"{kind} {found}/{expected}" for kind, (found, expected) in self.counts.items()]
        parts += [f"lost {len(self.lost)}", f"duplicated {len(self.duplicated)}"]
        parts += [f"{name} {value}" for name, value in self.notes.items()]
        return f"faults: {self.label}: " + ", ".join(parts)

    def check(self, logs: str = "") -> None:
        assert not self.lost and not self.duplicated, (
            f"{self.line()}\nlost: {self.lost}\nduplicated: {self.duplicated}\n{logs}"
        )


def tally(
    label: str,
    expected: Mapping[str, Collection[str]],
    found: Mapping[str, Sequence[str]],
    **notes: object,
) -> Tally:
    counts: dict[str, tuple[int, int]] = {}
    lost: list[str] = []
    duplicated: list[str] = []
    for kind, wanted in expected.items():
        keys = Counter(found.get(kind, []))
        counts[kind] = (sum(keys.values()), len(wanted))
        lost += [f"{kind}: {key}" for key in sorted(set(wanted) - set(keys))]
        for key, n in sorted(keys.items()):
            if key not in wanted:
                duplicated += [f"{kind}: unexpected {key}"] * n
            elif n > 1:
                duplicated += [f"{kind}: {key} x{n}"] * (n - 1)
    return Tally(label, counts, lost, duplicated, {k: str(v) for k, v in notes.items()})


def report(result: Tally, logs: str = "") -> None:
    """Print the one-line summary (shown with -s, and with the failure otherwise), then check."""
    print(result.line())
    result.check(logs)
