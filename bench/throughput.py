"""Part 1 and 3: end-to-end throughput against the baselines, and reply-to-closed latency.

One dev server (in memory, 127.0.0.1), one worker at a time in this process, N requests each
opened (starter.request_info), replied to (starter.send_client_reply) and accepted
(starter.decide) with at most C under way at once. Every variant runs in every repetition,
in a rotated order, so drift on this shared machine falls on all of them; the figures are the
medians over the repetitions and the ratios are taken within each repetition.

Latency: the reply signal's send time (taken just before the call) against the time the task
was closed: `tasks.closed_at` for ours (written by the close_client_task step), the time the
empty close-the-task step ran for the baselines. Same machine, same clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, select
from temporalio.client import Client
from temporalio.worker import Worker

from bench import actions
from bench.baselines import TASK_CLOSED_AT, build_baseline_worker
from bench.common import (
    FlowTimes,
    add_cases,
    converter_for,
    decide,
    dev_server,
    fake_case_ids,
    full_flow,
    key_ring,
    log,
    median,
    new_store,
    open_request,
    percentile,
    process_cpu_seconds,
    send_reply,
    sqlite_url,
    workflow_id_for,
)
from bench.stubs import STUB_TASK_CLOSED_AT, StubActivities
from store.cases import CaseStore
from store.files import FileStore
from store.schema import ClientTask
from tests.conftest import make_activities
from worker import ACTIVITY_THREADS, SIZING, build_worker
from workflows.info_request import InfoRequestWorkflow


@dataclass
class Variant:
    key: str
    label: str
    kind: str  # "ours" | "a" | "b"
    client: Client
    store: CaseStore | None = None  # ours with the real steps
    reader: Engine | None = None  # a plain engine to read closed_at without taking locks
    stub: bool = False
    diagnostic: bool = False
    # Compile the workflow module from source for every new workflow instance, as a worker
    # run with PYTHONDONTWRITEBYTECODE=1 and no precompiled bytecode does.
    no_bytecode_cache: bool = False


@dataclass
class Batch:
    variant: str
    rep: int
    n: int
    seconds: float
    flows: list[FlowTimes]
    reply_to_closed: list[float]
    cpu_bench: float
    cpu_server: float

    @property
    def per_second(self) -> float:
        return self.n / self.seconds


def _dev_server_pid() -> int | None:
    """The dev server is a child of this process (started by the SDK's bridge)."""
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == me and name.startswith("temporal"):
            return int(entry)
    return None


def _closed_at(variant: Variant, flows: list[FlowTimes]) -> dict[str, float]:
    """Case or workflow ID -> wall-clock time the task was closed."""
    if variant.kind != "ours":
        return {
            f.case_id: TASK_CLOSED_AT[f.workflow_id]
            for f in flows
            if f.workflow_id in TASK_CLOSED_AT
        }
    if variant.stub:
        return {
            f.case_id: STUB_TASK_CLOSED_AT[f.case_id]
            for f in flows
            if f.case_id in STUB_TASK_CLOSED_AT
        }
    assert variant.reader is not None
    ids = [f.case_id for f in flows]
    found: dict[str, float] = {}
    with variant.reader.connect() as conn:
        for start in range(0, len(ids), 500):
            rows = conn.execute(
                select(ClientTask.case_id, ClientTask.closed_at).where(
                    ClientTask.case_id.in_(ids[start : start + 500])
                )
            )
            for case_id, closed in rows:
                if closed is not None:
                    found[case_id] = closed.timestamp()
    return found


def _case_ids(variant: Variant, n: int) -> list[str]:
    if variant.kind == "ours" and variant.store is not None:
        return add_cases(variant.store, n, variant.key)
    return fake_case_ids(n, variant.key)


@contextlib.contextmanager
def _bytecode(variant: Variant) -> Iterator[None]:
    if not variant.no_bytecode_cache:
        yield
        return
    saved = sys.dont_write_bytecode, sys.pycache_prefix
    sys.dont_write_bytecode, sys.pycache_prefix = True, tempfile.mkdtemp(prefix="bench-nocache-")
    try:
        yield
    finally:
        sys.dont_write_bytecode, sys.pycache_prefix = saved


@contextlib.contextmanager
def _worker(variant: Variant, task_queue: str, files: FileStore) -> Iterator[Worker]:
    with _bytecode(variant), ThreadPoolExecutor(ACTIVITY_THREADS) as executor:
        if variant.kind != "ours":
            yield build_baseline_worker(variant.client, executor, task_queue)
        elif variant.stub:
            yield Worker(
                variant.client,
                task_queue=task_queue,
                workflows=[InfoRequestWorkflow],
                activities=StubActivities().all(),
                activity_executor=executor,
                **SIZING,
            )
        else:
            assert variant.store is not None
            yield build_worker(
                variant.client, make_activities(variant.store, files), executor, task_queue
            )


async def run_batch(
    variant: Variant, n: int, concurrency: int, rep: int, files: FileStore, server_pid: int | None
) -> Batch:
    case_ids = _case_ids(variant, n)
    task_queue = f"bench-{variant.key}-{uuid.uuid4().hex[:6]}"
    with _worker(variant, task_queue, files) as worker:
        async with worker:
            gate = asyncio.Semaphore(concurrency)
            cpu0 = time.process_time()
            server0 = process_cpu_seconds(server_pid) if server_pid else 0.0
            t0 = time.perf_counter()
            flows = await asyncio.gather(
                *(
                    full_flow(variant.client, variant.kind, c, task_queue, gate, variant.store)
                    for c in case_ids
                )
            )
            seconds = time.perf_counter() - t0
            cpu = time.process_time() - cpu0
            server = (process_cpu_seconds(server_pid) - server0) if server_pid else 0.0
    closed = _closed_at(variant, flows)
    latencies = [closed[f.case_id] - f.signal_sent for f in flows if f.case_id in closed]
    return Batch(variant.key, rep, n, seconds, list(flows), latencies, cpu, server)


async def burst_latency(
    variant: Variant, size: int, rounds: int, files: FileStore
) -> tuple[list[float], list[float]]:
    """`size` requests wait for the client; their replies are all sent at once; the time from
    each send to its task closed. Returns (latencies, seconds until the last closed) ."""
    latencies: list[float] = []
    spans: list[float] = []
    task_queue = f"bench-burst-{variant.key}-{uuid.uuid4().hex[:6]}"
    with _worker(variant, task_queue, files) as worker:
        async with worker:
            for _ in range(rounds):
                case_ids = _case_ids(variant, size)
                flows = [FlowTimes(c, workflow_id_for(variant.kind, c)) for c in case_ids]
                await asyncio.gather(
                    *(
                        open_request(
                            variant.client,
                            variant.kind,
                            f.case_id,
                            task_queue,
                            f,
                            store=variant.store,
                        )
                        for f in flows
                    )
                )
                await asyncio.sleep(0.5)  # let the opening settle: only the replies are measured
                sent = time.perf_counter()
                await asyncio.gather(
                    *(send_reply(variant.client, variant.kind, f.case_id, f) for f in flows)
                )
                closed: dict[str, float] = {}
                for _ in range(600):
                    closed = _closed_at(variant, flows)
                    if len(closed) == len(flows):
                        break
                    await asyncio.sleep(0.05)
                spans.append(time.perf_counter() - sent)
                latencies += [closed[f.case_id] - f.signal_sent for f in flows]
                await asyncio.gather(
                    *(decide(variant.client, variant.kind, f.case_id, f) for f in flows)
                )
    return latencies, spans


def _stats(batches: list[Batch]) -> dict[str, Any]:
    rates = [b.per_second for b in batches]
    lat = [x for b in batches for x in b.reply_to_closed]
    opened = [f.opened - f.started for b in batches for f in b.flows]
    decided = [f.decided - f.signal_returned for b in batches for f in b.flows]
    n = sum(b.n for b in batches)
    return {
        "per_second": [round(r, 2) for r in rates],
        "median_per_second": round(median(rates), 2),
        "reply_to_closed_ms": {
            "p50": round(percentile(lat, 50) * 1000, 1),
            "p99": round(percentile(lat, 99) * 1000, 1),
            "samples": len(lat),
        },
        "request_info_ms": {
            "p50": round(percentile(opened, 50) * 1000, 1),
            "p99": round(percentile(opened, 99) * 1000, 1),
        },
        "decide_ms": {
            "p50": round(percentile(decided, 50) * 1000, 1),
            "p99": round(percentile(decided, 99) * 1000, 1),
        },
        "cpu_ms_per_request_bench_process": round(sum(b.cpu_bench for b in batches) / n * 1000, 2),
        "cpu_ms_per_request_dev_server": round(sum(b.cpu_server for b in batches) / n * 1000, 2),
    }


def _lat(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 50) * 1000, 1),
        "p99": round(percentile(values, 99) * 1000, 1),
        "max": round(max(values) * 1000, 1) if values else float("nan"),
        "samples": len(values),
    }


async def run(
    *,
    n: int,
    reps: int,
    concurrency: int,
    postgres: bool,
    diagnostics: bool,
    burst_size: int,
    burst_rounds: int,
) -> dict[str, Any]:
    ring = key_ring()
    converter = converter_for(ring)
    work = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    files = FileStore(work / "files", 1 << 20)
    with contextlib.ExitStack() as stack:
        async with dev_server(converter) as env:
            server_pid = _dev_server_pid()
            client = env.client
            sqlite = sqlite_url(work)
            store = new_store(sqlite)
            stack.callback(store.engine.dispose)
            variants = [
                Variant("a", "(a) regular activities, empty", "a", client),
                Variant("b", "(b) local activities, empty", "b", client),
                Variant(
                    "ours-sqlite",
                    "ours, SQLite file",
                    "ours",
                    client,
                    store,
                    create_engine(sqlite),
                ),
            ]
            if postgres:
                from tests.postgres import create_database, postgres_server

                pg_url = create_database(stack.enter_context(postgres_server()))
                pg_store = new_store(pg_url)
                stack.callback(pg_store.engine.dispose)
                variants.append(
                    Variant(
                        "ours-pg",
                        "ours, PostgreSQL",
                        "ours",
                        client,
                        pg_store,
                        create_engine(pg_url),
                    )
                )
            if diagnostics:
                variants += [
                    Variant(
                        "ours-stub",
                        "ours, empty steps (diagnostic)",
                        "ours",
                        client,
                        stub=True,
                        diagnostic=True,
                    ),
                    Variant(
                        "ours-nocache",
                        "ours, SQLite, no bytecode cache (diagnostic)",
                        "ours",
                        client,
                        store,
                        create_engine(sqlite),
                        diagnostic=True,
                        no_bytecode_cache=True,
                    ),
                ]
            log(f"throughput: warm-up ({min(n, 50)} requests per variant)")
            for v in variants:
                await run_batch(v, min(n, 50), concurrency, -1, files, server_pid)
            batches: dict[str, list[Batch]] = {v.key: [] for v in variants}
            for rep in range(reps):
                order = variants[rep % len(variants) :] + variants[: rep % len(variants)]
                for v in order:
                    batch = await run_batch(v, n, concurrency, rep, files, server_pid)
                    batches[v.key].append(batch)
                    log(
                        f"throughput rep {rep + 1}/{reps} {v.key}: {n} requests in "
                        f"{batch.seconds:.1f} s = {batch.per_second:.1f}/s"
                    )
            # Reply-path histories of the last repetition (actions per request).
            samples = {
                v.key: [f.workflow_id for f in batches[v.key][-1].flows[:20]] for v in variants
            }
            histories = {k: await actions.dev_histories(client, ids) for k, ids in samples.items()}

            bursts: dict[str, Any] = {}
            for v in variants:
                if v.diagnostic or burst_rounds == 0:
                    continue
                lat, spans = await burst_latency(v, burst_size, burst_rounds, files)
                bursts[v.key] = _lat(lat) | {
                    "last_closed_s_median": round(median(spans), 2),
                }
                log(f"burst latency {v.key}: {bursts[v.key]}")

    ratios: dict[str, dict[str, float]] = {}
    for ours in [v.key for v in variants if v.kind == "ours"]:
        ratios[ours] = {}
        for base in ("a", "b"):
            per_rep = [
                o.per_second / b.per_second
                for o, b in zip(batches[ours], batches[base], strict=True)
            ]
            ratios[ours][base] = round(median(per_rep), 3)
    return {
        "n": n,
        "reps": reps,
        "concurrency": concurrency,
        "activity_threads": ACTIVITY_THREADS,
        "variants": {
            v.key: {"label": v.label, "diagnostic": v.diagnostic} | _stats(batches[v.key])
            for v in variants
        },
        "ratios": ratios,
        "histories": histories,
        "burst": {"size": burst_size, "rounds": burst_rounds, "variants": bursts},
    }
