"""`make run`: the whole service on embedded defaults, in one terminal.

Starts the Temporal dev server (persistent SQLite under .data/, Web UI on :8233), migrates the
case store and loads the demo cases, then runs the worker until Ctrl-C. With TEMPORAL_ADDRESS
set, it uses that cluster instead of starting a dev server.

Payloads are encrypted (codec/, keys from PAYLOAD_KEYS else .data/payload-keys), so it also
runs the codec server on 127.0.0.1:8234 and points the dev server's Web UI at it. That UI
cannot send a bearer token, so token-less requests from the UI origin are let in on loopback
(CODEC_ALLOW_UI_ORIGIN=0 turns that off); other clients use the token in .data/codec-token.
See docs/encryption.md.

It also serves the HTTP API (api/) on http://localhost:8000, OpenAPI at /docs, and writes fresh
tokens for the demo users to .data/demo-tokens.txt on every start. See docs/http-api.md.
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
from temporalio.runtime import Runtime
from temporalio.service import RPCError

from api.app import create_app
from api.server import DEFAULT_PORT as API_PORT
from api.server import start_api_server, write_demo_tokens
from codec.server import ALLOW_UI_ORIGIN_ENV, start_codec_server
from config import Settings
from devstack.binaries import dev_server_path
from devstack.demo import USERS, load_demo
from devstack.metrics import metrics_runtime
from starter.connection import connect
from store.migrate import upgrade
from worker import ACTIVITY_THREADS, build_activities, build_worker
from workflows.search_attributes import dev_server_flags

log = logging.getLogger("devstack")

DEV_SERVER_PORT = 7233
UI_PORT = 8233
CODEC_PORT = 8234
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
        "--ui-codec-endpoint",
        f"http://localhost:{CODEC_PORT}",
        "--log-level",
        "warn",
        *dev_server_flags(),
    ]
    return subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)


async def wait_for_server(runtime: Runtime | None) -> Client:
    """The dev server needs a moment to open its port; give up after STARTUP_SECONDS."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_SECONDS
    while True:
        try:
            return await connect(runtime)
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
    tokens_file = write_demo_tokens(
        activities.store, [user[0] for user in USERS], settings.data_dir / "demo-tokens.txt"
    )

    dev_server = not os.environ.get("TEMPORAL_ADDRESS")
    allow_ui_origin = dev_server and os.environ.get(ALLOW_UI_ORIGIN_ENV, "1") == "1"
    codec_server = await start_codec_server(
        settings, port=CODEC_PORT, allow_ui_origin_without_token=allow_ui_origin
    )
    log.info(
        "codec server on http://localhost:%d (bearer token in %s%s)",
        CODEC_PORT,
        codec_server.token_file or "CODEC_SERVER_TOKEN",
        "; the dev server's Web UI may call it without one" if allow_ui_origin else "",
    )
    server = None
    if dev_server:
        server = start_dev_server(settings.data_dir)
        log.info(
            "Temporal dev server starting (history in %s, log in %s)",
            settings.data_dir / "temporal.db",
            settings.data_dir / "temporal.log",
        )
    try:
        client = await wait_for_server(metrics_runtime())
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
                api = await start_api_server(
                    create_app(activities.store, activities.files, client), port=API_PORT
                )
                log.info(
                    "HTTP API on %s (OpenAPI at %s/docs; demo tokens in %s)",
                    api.url,
                    api.url,
                    tokens_file,
                )
                log.info("worker running; try `make cli ARGS='cases --partner P-NORDIC'`")
                await stop.wait()
                await api.stop()
    finally:
        await codec_server.stop()
        if server is not None:
            server.terminate()
            with suppress(subprocess.TimeoutExpired):
                server.wait(timeout=10)
            if server.poll() is None:
                server.kill()


if __name__ == "__main__":
    with suppress(KeyboardInterrupt, RPCError):
        asyncio.run(main())
