"""Runs the parts chosen by BENCH_PARTS and writes the results (see bench/__main__.py)."""

from __future__ import annotations

import json
import os
import shlex
import time
from pathlib import Path
from typing import Any

from bench import actions, profile, report, scale, steps, throughput
from bench.common import env_flag, env_int, log, machine
from config import PROJECT_ROOT
from tests.postgres import PG_BIN

DEFAULT_RESULTS = PROJECT_ROOT / "bench" / "last-run.json"
PARTS = ("throughput", "actions", "profile", "steps", "settings", "scale")
ENV_VARS = (
    "BENCH_PARTS",
    "BENCH_N",
    "BENCH_REPS",
    "BENCH_CONCURRENCY",
    "BENCH_POSTGRES",
    "BENCH_DIAG",
    "BENCH_BURST_ROUNDS",
    "BENCH_PROFILE_N",
    "BENCH_PROFILE_REPS",
    "BENCH_SETTINGS_REPS",
    "BENCH_STEPS_N",
    "BENCH_SCALE_N",
    "BENCH_SCALE_SETTINGS",
    "BENCH_PYSPY",
)


def _command() -> str:
    given = [f"{v}={shlex.quote(os.environ[v])}" for v in ENV_VARS if os.environ.get(v)]
    return " ".join([*given, "make bench"])


async def main() -> int:
    parts = [p.strip() for p in os.environ.get("BENCH_PARTS", ",".join(PARTS)).split(",")]
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise SystemExit(f"BENCH_PARTS: unknown part(s) {sorted(unknown)}; known: {PARTS}")
    results_path = Path(os.environ.get("BENCH_RESULTS", DEFAULT_RESULTS))
    results: dict[str, Any] = json.loads(results_path.read_text()) if results_path.exists() else {}
    concurrency = env_int("BENCH_CONCURRENCY", 50)
    postgres_default = (PG_BIN / "initdb").exists()
    for part in parts:
        started = time.monotonic()
        measured_on, command = machine(), _command()
        meta: dict[str, Any] = {"machine": measured_on, "command": command}
        log(f"== {part}")
        data: dict[str, Any] | None
        if part == "throughput":
            data = await throughput.run(
                n=env_int("BENCH_N", 300),
                reps=env_int("BENCH_REPS", 3),
                concurrency=concurrency,
                postgres=env_flag("BENCH_POSTGRES", postgres_default),
                diagnostics=env_flag("BENCH_DIAG", True),
                burst_size=50,
                burst_rounds=env_int("BENCH_BURST_ROUNDS", 4),
            )
        elif part == "actions":
            data = await actions.paths()
        elif part == "profile":
            data = await profile.run(
                n=env_int("BENCH_PROFILE_N", 300),
                reps=env_int("BENCH_PROFILE_REPS", 2),
                concurrency=concurrency,
            )
        elif part == "steps":
            data = steps.run(n=env_int("BENCH_STEPS_N", 300))
        elif part == "settings":
            data = await profile.settings(
                n=env_int("BENCH_PROFILE_N", 300),
                reps=env_int("BENCH_SETTINGS_REPS", 3),
                concurrency=100,
            )
        else:
            chosen = os.environ.get("BENCH_SCALE_SETTINGS")
            n = env_int("BENCH_SCALE_N", 2000)
            data = await scale.run(
                n=n, concurrency=100, settings=chosen.split(",") if chosen else None
            )
            for setting in data["settings"].values():
                setting["measured"] = f"{measured_on['date']} with `{command}`"
            # A run of some settings keeps the others' results at the same N (each setting
            # of 10,000 requests takes about half an hour here).
            earlier = results.get("scale", {}).get("data", {})
            if chosen and earlier.get("n") == n:
                data["settings"] = earlier["settings"] | data["settings"]
        results[part] = meta | {"seconds": round(time.monotonic() - started), "data": data}
        results_path.write_text(json.dumps(results, indent=1, default=str) + "\n")
        log(f"== {part} done in {results[part]['seconds']} s")
    out = Path(os.environ.get("BENCH_OUT", PROJECT_ROOT / "docs" / "benchmarks.md"))
    report.write(out, results)
    log(f"wrote {out} and {results_path}")
    return 0
