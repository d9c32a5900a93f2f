"""Part 4: many requests open at once, waiting on their clients, against one worker process.

Per worker setting, on a fresh dev server (in memory) and a fresh SQLite case store:
1. N cases are created (not timed with the rest);
2. the worker starts as a process (`python worker.py`, or bench.worker_process with the
   setting), env as tests/test_end_to_end.py;
3. all N requests are opened (starter.request_info, at most C at once): time to start them;
   the worker's RSS (/proc/<pid>/status VmRSS) is sampled every second against the number
   open, and read again once all wait;
4. all N are replied to and accepted (at most C at once): time to drain them.
What a waiting request costs in memory: (RSS waiting - RSS idle) / workflows cached, and the
least-squares slope of RSS against requests open while they were opened (up to the cache
size: with the cache smaller than N the RSS levels off there).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import (
    FlowTimes,
    add_cases,
    converter_for,
    decide,
    dev_server,
    log,
    new_store,
    open_request,
    rss_kib,
    send_reply,
    sqlite_url,
)
from bench.processes import WorkerProcess, payload_keys, worker_env
from workflows import TASK_QUEUE

# (key, what it is, workflow cache size, argv of bench.worker_process or None for
# `python worker.py` itself)
SETTINGS: tuple[tuple[str, str, int, list[str] | None], ...] = (
    (
        "shipped",
        "worker.py as shipped: max_cached_workflows=1000 (SDK default), "
        "max_concurrent_workflow_tasks=20, 8 activity threads",
        1000,
        None,
    ),
    (
        "cache10k",
        "max_cached_workflows=10000, otherwise as shipped",
        10_000,
        ["--max-cached", "10000"],
    ),
    (
        "before",
        "worker.py before this change: 32 activity threads, max_concurrent_workflow_tasks=100 "
        "(the SDK's default), max_cached_workflows=1000",
        1000,
        ["--max-workflow-tasks", "100", "--threads", "32"],
    ),
)


def slope_kib_per_request(points: Sequence[tuple[int, int]]) -> float:
    """Least-squares slope of (requests open, RSS KiB)."""
    if len(points) < 2:
        return float("nan")
    xs = [float(p[0]) for p in points]
    ys = [float(p[1]) for p in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return float("nan")
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


async def _sample(pid: int, opened: list[int], samples: list[tuple[float, int, int]]) -> None:
    while True:
        with contextlib.suppress(OSError):
            samples.append((time.monotonic(), opened[0], rss_kib(pid)[0]))
        await asyncio.sleep(1.0)


async def run_setting(
    key: str, label: str, cache: int, argv: list[str] | None, n: int, concurrency: int
) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"bench-scale-{key}-"))
    keys, ring = payload_keys()
    url = sqlite_url(work)
    store = new_store(url)
    t = time.perf_counter()
    case_ids = add_cases(store, n, "sc")
    cases_s = time.perf_counter() - t
    log(f"scale {key}: {n} cases created in {cases_s:.0f} s")
    result: dict[str, Any] = {"label": label, "n": n, "cases_created_s": round(cases_s, 1)}
    async with dev_server(converter_for(ring)) as env:
        client = env.client
        address = client.service_client.config.target_host
        worker = WorkerProcess(argv, worker_env(address, url, work, keys), work / "worker.log")
        sampler: asyncio.Task[None] | None = None
        try:
            worker.wait_ready()
            idle_rss = rss_kib(worker.pid)[0]
            opened = [0]
            samples: list[tuple[float, int, int]] = []
            sampler = asyncio.create_task(_sample(worker.pid, opened, samples))
            gate = asyncio.Semaphore(concurrency)
            flows = {c: FlowTimes(c, "") for c in case_ids}

            async def open_one(case_id: str) -> None:
                async with gate:
                    await open_request(
                        client, "ours", case_id, TASK_QUEUE, flows[case_id], store=store
                    )
                    opened[0] += 1

            t0 = time.perf_counter()
            await asyncio.gather(*(open_one(c) for c in case_ids))
            open_s = time.perf_counter() - t0
            log(f"scale {key}: {n} opened in {open_s:.0f} s")
            await asyncio.sleep(10)  # waiting: nothing happens until the clients reply
            waiting_rss, waiting_hwm = rss_kib(worker.pid)

            async def drain_one(case_id: str) -> None:
                async with gate:
                    await send_reply(client, "ours", case_id, flows[case_id])
                    await decide(client, "ours", case_id, flows[case_id])

            t1 = time.perf_counter()
            await asyncio.gather(*(drain_one(c) for c in case_ids))
            drain_s = time.perf_counter() - t1
            log(f"scale {key}: {n} replied to and accepted in {drain_s:.0f} s")
            end_rss, end_hwm = rss_kib(worker.pid)
        finally:
            if sampler is not None:
                sampler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sampler
            worker.stop()
            store.engine.dispose()
    cached = min(n, cache)
    start_phase = [(o, r) for _, o, r in samples if 0.1 * n <= o <= cached]
    slope = slope_kib_per_request(start_phase)
    result |= {
        "open_s": round(open_s, 1),
        "open_per_s": round(n / open_s, 1),
        "drain_s": round(drain_s, 1),
        "drain_per_s": round(n / drain_s, 1),
        "rss_idle_mib": round(idle_rss / 1024, 1),
        "rss_waiting_mib": round(waiting_rss / 1024, 1),
        "rss_peak_mib": round(max(waiting_hwm, end_hwm) / 1024, 1),
        "rss_after_drain_mib": round(end_rss / 1024, 1),
        "cache": cache,
        "cached_while_waiting": cached,
        "kib_per_open_request": round(slope, 1),
        "kib_per_cached_workflow": round((waiting_rss - idle_rss) / cached, 1),
        "rss_samples": [(round(t - samples[0][0], 1), o, r) for t, o, r in samples]
        if samples
        else [],
    }
    return result


async def run(*, n: int, concurrency: int, settings: Sequence[str] | None = None) -> dict[str, Any]:
    chosen = [s for s in SETTINGS if settings is None or s[0] in settings]
    results = {}
    for key, label, cache, argv in chosen:
        results[key] = await run_setting(key, label, cache, argv, n, concurrency)
        log(f"scale {key}: { {k: v for k, v in results[key].items() if k != 'rss_samples'} }")
    return {"n": n, "concurrency": concurrency, "settings": results}
