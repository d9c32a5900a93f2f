"""Where the worker's time goes. Each worker in its own process (bench.worker_process: worker.py's
setup, or the baselines built the same way) while this process drives N requests through
request, reply, accept: the worker's CPU time per request, without the client's. Then py-spy
samples our worker for a profile.

py-spy is not a dependency: `pip install py-spy` (into the venv, or anywhere and point
BENCH_PYSPY at the binary). Without it this part is skipped. Samples are taken with `--gil`:
the worker runs its Python on one core at a time, so what holds the GIL is what limits it.
Native work off the GIL (the SDK's Rust core, SQLite's C code while it has released the GIL)
is not in the samples; the worker's total CPU time is reported beside them.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import (
    add_cases,
    converter_for,
    dev_server,
    fake_case_ids,
    full_flow,
    log,
    median,
    new_store,
    process_cpu_seconds,
    sqlite_url,
)
from bench.processes import WorkerProcess, payload_keys, worker_env
from workflows import TASK_QUEUE

# Exclusive attribution: the first rule whose pattern is anywhere in a sample's stack wins.
RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("payload encryption (codec/encryption.py, cryptography)", ("codec/encryption.py",)),
    ("case store: SQLAlchemy + sqlite3", ("sqlalchemy/", "sqlite3/", "store/cases.py")),
    ("email templates (mail/)", ("mail/",)),
    ("calendar: holidays, deadlines, reminders", ("holidays/", "domain/deadlines", "reminders")),
    ("pydantic (payload and model validation, dumps)", ("pydantic",)),
    ("protobuf (history, commands, payloads)", ("google/protobuf", "_pb2")),
    ("our workflow code (workflows/info_request.py)", ("workflows/info_request.py",)),
    ("workflow sandbox (temporalio/worker/workflow_sandbox)", ("workflow_sandbox",)),
    ("Temporal SDK, Python side (activations, activities)", ("temporalio/",)),
    ("asyncio, threads, other", ("",)),
)
# Inclusive: share of samples whose stack passes through each.
INCLUSIVE: tuple[tuple[str, str], ...] = (
    ("step bodies (activities/info_request.py)", "activities/info_request.py"),
    ("workflow activations (_workflow_instance.py)", "_workflow_instance.py"),
    ("payload converter (temporalio/converter)", "temporalio/converter"),
    ("payload encryption (codec/encryption.py)", "codec/encryption.py"),
    ("SQLAlchemy", "sqlalchemy/"),
    ("pydantic", "pydantic"),
)


def pyspy_path() -> str | None:
    configured = os.environ.get("BENCH_PYSPY")
    if configured:
        return configured
    return shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))


def analyse(raw: str) -> dict[str, Any]:
    """py-spy's raw (collapsed) output: `frame;frame;... count` per line."""
    exclusive: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        for name, patterns in RULES:
            if any(p in stack for p in patterns):
                exclusive[name] += count
                break
        for name, pattern in INCLUSIVE:
            if pattern in stack:
                inclusive[name] += count
        leaves[stack.rsplit(";", 1)[-1]] += count

    def share(n: int) -> float:
        return round(100 * n / total, 1) if total else 0.0

    return {
        "samples": total,
        "exclusive_pct": {name: share(exclusive[name]) for name, _ in RULES},
        "inclusive_pct": {name: share(inclusive[name]) for name, _ in INCLUSIVE},
        "top_leaf_functions_pct": [(f, share(n)) for f, n in leaves.most_common(12)],
    }


async def _drive(
    env_client: Any, kind: str, store: Any, n: int, concurrency: int, prefix: str
) -> None:
    kind = "ours" if kind.startswith("ours") else kind
    gate = asyncio.Semaphore(concurrency)
    ids = add_cases(store, n, prefix) if kind == "ours" else fake_case_ids(n, prefix)
    forecast_from = store if kind == "ours" else None
    await asyncio.gather(
        *(full_flow(env_client, kind, c, TASK_QUEUE, gate, forecast_from) for c in ids)
    )


async def _measure(
    kind: str,
    n: int,
    concurrency: int,
    pyspy: str | None,
    work: Path,
    setting: tuple[list[str] | None] | None = None,
) -> dict[str, Any]:
    """One worker process (ours or the baselines), warmed up, then N requests; with py-spy
    attached when given. `setting`: the argv of a bench.scale setting for ours (None in it:
    `python worker.py` itself)."""
    keys, ring = payload_keys()
    url = sqlite_url(work, f"cases-{kind}-{time.monotonic_ns()}.db")
    store = new_store(url)
    result: dict[str, Any] = {}
    async with dev_server(converter_for(ring)) as env:
        address = env.client.service_client.config.target_host
        argv: list[str] | None = {"ours": [], "ours-stub": ["--stub-steps"]}.get(
            kind, ["--baselines"]
        )
        if setting is not None:
            argv = setting[0]
        worker = WorkerProcess(argv, worker_env(address, url, work, keys), work / f"{kind}.log")
        try:
            worker.wait_ready()
            await _drive(env.client, kind, store, 30, concurrency, "warm")
            spy = None
            out = work / f"pyspy-{kind}.txt"
            if pyspy is not None:
                spy = subprocess.Popen(
                    [
                        pyspy,
                        "record",
                        "--pid",
                        str(worker.pid),
                        "--rate",
                        "200",
                        "--gil",
                        "--nonblocking",
                        "--format",
                        "raw",
                        "--output",
                        str(out),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
                await asyncio.sleep(1.0)
            cpu0 = process_cpu_seconds(worker.pid)
            t0 = time.perf_counter()
            await _drive(env.client, kind, store, n, concurrency, "run")
            seconds = time.perf_counter() - t0
            cpu = process_cpu_seconds(worker.pid) - cpu0
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                _, err = spy.communicate(timeout=60)
                if out.exists():
                    result["pyspy"] = analyse(out.read_text())
                else:
                    log(f"profile: py-spy wrote nothing: {err.decode(errors='replace')[-500:]}")
        finally:
            worker.stop()
            store.engine.dispose()
    return result | {
        "per_second": round(n / seconds, 2),
        "worker_cpu_ms_per_request": round(cpu / n * 1000, 1),
        "worker_cores_busy": round(cpu / seconds, 2),
    }


async def run(*, n: int, reps: int, concurrency: int) -> dict[str, Any]:
    """Worker CPU per request of (a), (b), ours and ours with empty steps, each worker in its
    own process (the driver's client work is not counted), interleaved; then a py-spy profile
    of ours."""
    work = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    kinds = ["a", "b", "ours", "ours-stub"]
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    for rep in range(reps):
        for kind in kinds[rep % len(kinds) :] + kinds[: rep % len(kinds)]:
            measured = await _measure(kind, n, concurrency, None, work)
            runs[kind].append(measured)
            log(f"worker process rep {rep + 1}/{reps} {kind}: {measured}")
    summary: dict[str, Any] = {
        "n": n,
        "reps": reps,
        "concurrency": concurrency,
        "variants": {
            k: {
                "worker_cpu_ms_per_request": median(
                    [r["worker_cpu_ms_per_request"] for r in runs[k]]
                ),
                "per_second": median([r["per_second"] for r in runs[k]]),
                "worker_cores_busy": median([r["worker_cores_busy"] for r in runs[k]]),
                "runs": runs[k],
            }
            for k in kinds
        },
        "pyspy": None,
    }
    pyspy = pyspy_path()
    if pyspy is None:
        log("profile: py-spy not found (pip install py-spy, or set BENCH_PYSPY): no profile")
        return summary
    profiled = await _measure("ours", n, concurrency, pyspy, work)
    summary["pyspy"] = profiled.get("pyspy")
    summary["pyspy_run"] = {k: v for k, v in profiled.items() if k != "pyspy"}
    if summary["pyspy"]:
        log(f"profile: {summary['pyspy']['exclusive_pct']}")
    return summary


async def settings(*, n: int, reps: int, concurrency: int) -> dict[str, Any]:
    """The worker settings of bench.scale, interleaved, at the throughput level: each run a
    fresh worker process and dev server, N requests end to end."""
    from bench.scale import SETTINGS

    work = Path(tempfile.mkdtemp(prefix="bench-settings-"))
    runs: dict[str, list[dict[str, Any]]] = {key: [] for key, *_ in SETTINGS}
    for rep in range(reps):
        order = SETTINGS[rep % len(SETTINGS) :] + SETTINGS[: rep % len(SETTINGS)]
        for key, _label, _cache, argv in order:
            measured = await _measure("ours", n, concurrency, None, work, (argv,))
            runs[key].append(measured)
            log(f"settings rep {rep + 1}/{reps} {key}: {measured}")
    return {
        "n": n,
        "reps": reps,
        "concurrency": concurrency,
        "settings": {
            key: {
                "label": label,
                "per_second": median([r["per_second"] for r in runs[key]]),
                "worker_cpu_ms_per_request": median(
                    [r["worker_cpu_ms_per_request"] for r in runs[key]]
                ),
                "runs": runs[key],
            }
            for key, label, _cache, _argv in SETTINGS
        },
    }
