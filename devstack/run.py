"""`make run`: the whole service on embedded defaults, in one terminal.

Starts the Temporal dev server (persistent SQLite under .data/, Web UI on :8233), migrates the
case store and loads the demo cases, then runs the worker until Ctrl-C. With TEMPORAL_ADDRESS
set, it uses that cluster instead of starting a dev server.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

from temporalio.client import Client
from temporalio.service import RPCError

from config import Settings
from devstack.binaries import dev_server_path
from devstack.demo import load_demo
from starter.connection import connect
from store.migrate import upgrade
from worker import ACTIVITY_THREADS, build_activities, build_worker
from workflows.search_attributes import dev_server_flags

log = logging.getLogger("devstack")

DEV_SERVER_PORT = 7233
UI_PORT = 8233
STARTUP_SECONDS = 60


def start_dev_server(data_dir: Path) -> subprocess.Popen[bytes]:
    log_file = (data_dir / "temporal.log").open("ab")
    command = [
        dev_server_path(),
        "server",
        "start-dev",
        "--db-filename",
        str(data_dir / "temporal.db"),
        "--ip",
        "127.0.0.1",
        "--port",
        str(DEV_SERVER_PORT),
        "--ui-port",
        str(UI_PORT),
        "--log-level",
        "warn",
        *dev_server_flags(),
    ]
    return subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)


async def wait_for_server() -> Client:
    """The dev server needs a moment to open its port; give up after STARTUP_SECONDS."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_SECONDS
    while True:
        try:
            return await connect()
        except RuntimeError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.5)


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings.from_env()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    activities = build_activities(settings)
    added = load_demo(activities.store, activities.files)
    log.info(
        "case store ready at %s (demo cases added: %s)",
        settings.database_url,
        ", ".join(added) or "none, already there",
    )

    server = None
    if not os.environ.get("TEMPORAL_ADDRESS"):
        server = start_dev_server(settings.data_dir)
        log.info(
            "Temporal dev server starting (history in %s, log in %s)",
            settings.data_dir / "temporal.db",
            settings.data_dir / "temporal.log",
        )
    try:
        client = await wait_for_server()
        log.info(
            "Temporal Web UI: http://localhost:%d  (email: %s; read the outbox with "
            "`make cli ARGS=emails`)",
            UI_PORT,
            activities.mailer.transport_name,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        with ThreadPoolExecutor(ACTIVITY_THREADS) as executor:
            worker = build_worker(client, activities, executor)
            async with worker:
                log.info("worker running; try `make cli ARGS='cases --partner P-NORDIC'`")
                await stop.wait()
    finally:
        if server is not None:
            server.terminate()
            with suppress(subprocess.TimeoutExpired):
                server.wait(timeout=10)
            if server.poll() is None:
                server.kill()


if __name__ == "__main__":
    with suppress(KeyboardInterrupt, RPCError):
        asyncio.run(main())
