"""What every part of the bench shares: the machine, the servers, the stores, the flows."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import platform
import statistics
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

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
)
from starter.forecast import forecast_opening
from store.cases import CaseStore, NewCase
from store.migrate import upgrade
from tests.conftest import CLIENT_DK, CLIENT_USER, PARTNER, PARTNER_USER

ITEMS = [
    RequestedItem(kind=ItemKind.INVOICE_OR_CONTRACT, reason="The claim amount must be proven"),
    RequestedItem(kind=ItemKind.PROOF_OF_DELIVERY, reason="The debtor says nothing arrived"),
]
MESSAGE = "Please send the signed contract and the delivery note."
REPLY_TEXT = "Contract and delivery note attached."
KEY_ID = "bench"


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None or value == "" else value not in ("0", "no", "false")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---- the machine ---------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """nproc, memory, CPU model, versions, date: what the figures were measured on."""
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    server = subprocess.run(
        [dev_server_path(), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "memory": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "cpu": cpu,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "temporalio": metadata.version("temporalio"),
        "sqlalchemy": metadata.version("sqlalchemy"),
        "temporal_cli": server.replace("\n", "; "),
        "commit": commit or "unknown",
    }


# ---- statistics ----------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB, from /proc/<pid>/status."""
    rss = hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (and its reaped children), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


# ---- servers and stores --------------------------------------------------------------------


def key_ring() -> KeyRing:
    return KeyRing.generate(KEY_ID)


def converter_for(ring: KeyRing) -> DataConverter:
    return data_converter_for(ring)


@asynccontextmanager
async def dev_server(converter: DataConverter) -> AsyncIterator[WorkflowEnvironment]:
    """A Temporal dev server in memory on 127.0.0.1 with our search attributes."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=dev_server_path(),
        data_converter=converter,
        search_attributes=sa.KEYS,
        ip="127.0.0.1",
        dev_server_log_level="error",
    )
    try:
        yield env
    finally:
        await env.shutdown()


def new_store(url: str) -> CaseStore:
    """A migrated, empty case store with the test parties (tests/conftest.py)."""
    upgrade(url)
    store = CaseStore.from_url(url)
    store.add_party(PARTNER)
    store.add_party(CLIENT_DK)
    store.add_user(PARTNER_USER, PARTNER.id, "Pia Partner", "pia@test-collect.example")
    store.add_user(CLIENT_USER, CLIENT_DK.id, "Carl Client", "carl@dansk-kunde.example")
    return store


def sqlite_url(directory: Path, name: str = "cases.db") -> str:
    return f"sqlite:///{directory / name}"


def add_cases(store: CaseStore, count: int, prefix: str) -> list[str]:
    """`count` new Pending Verification cases (the API's way in: one transaction each)."""
    ids = []
    run = uuid.uuid4().hex[:6]
    for n in range(count):
        case_id = f"C-{prefix}-{run}-{n}"
        store.add_case(
            NewCase(
                id=case_id,
                client_id=CLIENT_DK.id,
                partner_id=PARTNER.id,
                reference=f"B-{run}-{n}",
                debtor_name="Debtor ApS",
                amount_minor=100_00,
                currency="DKK",
                description="Unpaid invoice",
            )
        )
        ids.append(case_id)
    return ids


def fake_case_ids(count: int, prefix: str) -> list[str]:
    """Case IDs for the baselines, which write nothing."""
    run = uuid.uuid4().hex[:6]
    return [f"C-{prefix}-{run}-{n}" for n in range(count)]


# ---- the flows -----------------------------------------------------------------------------


@dataclass
class FlowTimes:
    """Wall-clock (time.time()) marks of one request's flow."""

    case_id: str
    workflow_id: str
    started: float = 0.0
    opened: float = 0.0
    signal_sent: float = 0.0
    signal_returned: float = 0.0
    decided: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


def request_for(case_id: str, policy: RequestPolicy | None = None) -> InfoRequestInput:
    return starter.new_request(
        case_id=case_id,
        partner_user_id=PARTNER_USER,
        items=ITEMS,
        message=MESSAGE,
        policy=policy or RequestPolicy(),
    )


def reply_for(case_id: str) -> ClientReply:
    return ClientReply(reply_id=f"r-{case_id}", client_user_id=CLIENT_USER, message=REPLY_TEXT)


def accept() -> Decision:
    return Decision(outcome=DecisionOutcome.ACCEPT, decided_by=PARTNER_USER, note="Complete")


def baseline_workflow_id(kind: str, case_id: str) -> str:
    return f"bench-{kind}-{case_id}"


def workflow_id_for(kind: str, case_id: str) -> str:
    return (
        info_request_workflow_id(case_id) if kind == "ours" else baseline_workflow_id(kind, case_id)
    )


_BASELINE_TYPES = {"a": "BaselineRegularWorkflow", "b": "BaselineLocalWorkflow"}


async def open_request(
    client: Client,
    kind: str,
    case_id: str,
    task_queue: str,
    times: FlowTimes,
    policy: RequestPolicy | None = None,
    store: CaseStore | None = None,
    now: dt.datetime | None = None,
) -> None:
    """Ours through starter.request_info, with the opening's forecast read from `store` as the
    API does; a baseline through the same two calls (start with the same options, then the
    `opened` update). `now`: the server's clock when it is not the wall clock (time skipping)."""
    request = request_for(case_id, policy)
    times.started = time.time()
    if kind == "ours":
        forecast = await asyncio.to_thread(forecast_opening, store, request, now) if store else None
        await starter.request_info(client, request, task_queue=task_queue, forecast=forecast)
    else:
        handle: WorkflowHandle[object, str] = await client.start_workflow(
            _BASELINE_TYPES[kind],
            request,
            id=baseline_workflow_id(kind, case_id),
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.CASE_ID, case_id),
                    SearchAttributePair(sa.INFO_REQUEST_PHASE, Phase.OPENING.value),
                ]
            ),
            static_summary=f"Info request on case {case_id}: {len(request.items)} item(s)",
            static_details=f"**Case** {case_id}  \n**Request** {request.request_id}",
            result_type=str,
        )
        await handle.execute_update("opened", result_type=str)
    times.opened = time.time()


async def send_reply(client: Client, kind: str, case_id: str, times: FlowTimes) -> None:
    times.signal_sent = time.time()
    if kind == "ours":
        await starter.send_client_reply(client, case_id, reply_for(case_id))
    else:
        handle = client.get_workflow_handle(baseline_workflow_id(kind, case_id))
        await handle.signal("client_reply", reply_for(case_id))
    times.signal_returned = time.time()


async def decide(client: Client, kind: str, case_id: str, times: FlowTimes) -> None:
    if kind == "ours":
        await starter.decide(client, case_id, accept())
    else:
        handle = client.get_workflow_handle(baseline_workflow_id(kind, case_id))
        await handle.execute_update("decide", accept(), result_type=str)
    times.decided = time.time()


async def full_flow(
    client: Client,
    kind: str,
    case_id: str,
    task_queue: str,
    gate: asyncio.Semaphore,
    store: CaseStore | None = None,
) -> FlowTimes:
    """Request, reply, accept: one request end to end, inside the concurrency gate."""
    times = FlowTimes(case_id=case_id, workflow_id=workflow_id_for(kind, case_id))
    async with gate:
        await open_request(client, kind, case_id, task_queue, times, store=store)
        await send_reply(client, kind, case_id, times)
        await decide(client, kind, case_id, times)
    return times
