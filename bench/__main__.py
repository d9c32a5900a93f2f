"""`make bench`: every part, then docs/benchmarks.md from the results.

Environment (defaults in brackets):
  BENCH_PARTS         throughput,actions,profile,steps,settings,scale [all]; a partial run
                      keeps the other parts' last results (bench/last-run.json) in the doc
  BENCH_N             requests per variant and repetition in the throughput part [300]
  BENCH_REPS          repetitions of the throughput part [3]
  BENCH_CONCURRENCY   requests under way at once [50]
  BENCH_POSTGRES      also ours on PostgreSQL (tests/postgres.py) [1 when PostgreSQL 15 is there]
  BENCH_DIAG          diagnostic variants (empty steps, no bytecode cache) [1]
  BENCH_BURST_ROUNDS  rounds of 50 replies sent at once [4]
  BENCH_PROFILE_N     requests per worker-process run [300]; BENCH_PROFILE_REPS [2]
  BENCH_PYSPY         path of py-spy (else found on PATH or in the venv)
  BENCH_STEPS_N       requests whose ten steps are called outside Temporal [300]
  BENCH_SETTINGS_REPS runs per worker setting, interleaved, at the throughput level [3]
  BENCH_SCALE_N       requests open at once in the scale part [2000]
  BENCH_SCALE_SETTINGS  shipped,cache10k,before [all]
  BENCH_OUT           the markdown written [docs/benchmarks.md]
  BENCH_RESULTS       the JSON of every figure, read and written [bench/last-run.json]
  BENCH_KEEP          1: keep the temporary directory (stores, logs, py-spy output)

Everything runs on 127.0.0.1 and stops by itself; servers and workers it starts are stopped
on the way out. Bytecode: Python's default is to cache compiled modules, and a worker image
normally ships them; this workplace sets PYTHONDONTWRITEBYTECODE=1, which makes every new
workflow instance compile the workflow module from source in the sandbox. The bench therefore
caches bytecode under a temporary prefix (never in the work tree) for every process it starts,
and measures the uncached case as a diagnostic variant.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile


def _temporary_root() -> str:
    """Every temporary file of the run (stores, logs, bytecode) goes under one directory,
    removed at the end. Readable by others: the PostgreSQL cluster runs as `postgres`."""
    root = tempfile.mkdtemp(prefix="bench-")
    os.chmod(root, 0o755)
    tempfile.tempdir = root
    return root


def _cache_bytecode_outside_the_tree() -> str:
    prefix = tempfile.mkdtemp(prefix="pycache-")
    sys.pycache_prefix = prefix
    sys.dont_write_bytecode = False
    os.environ["PYTHONPYCACHEPREFIX"] = prefix
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    return prefix


if __name__ == "__main__":
    root = _temporary_root()
    _cache_bytecode_outside_the_tree()
    import asyncio

    from bench.run import main

    try:
        code = asyncio.run(main())
    finally:
        if os.environ.get("BENCH_KEEP") == "1":
            print(f"kept {root}", flush=True)
        else:
            shutil.rmtree(root, ignore_errors=True)
    sys.exit(code)
