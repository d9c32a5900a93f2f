"""Run the API inside a program's own event loop (`make run`), and the demo tokens file.

uvicorn serves as a task of the running loop, beside the Temporal worker; the program keeps
its own signal handlers and stops the server by setting `should_exit`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from store.cases import CaseStore
from store.tokens import issue_token, revoke_user_tokens

DEFAULT_HOST = "127.0.0.1"  # loopback: the dev stack is for this machine only
DEFAULT_PORT = 8000
DEMO_TOKEN_LABEL = "demo tokens file"


class EmbeddedServer(uvicorn.Server):
    """uvicorn that leaves the signals to the program it runs in."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass
class RunningApi:
    server: EmbeddedServer
    task: asyncio.Task[None]
    url: str

    async def stop(self) -> None:
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def start_api_server(
    app: FastAPI, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT
) -> RunningApi:
    """Serve `app` as a task of the running loop; returns once it listens (or raises)."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    server = EmbeddedServer(config)
    task = asyncio.create_task(server.serve(), name="http-api")
    while not server.started and not task.done():
        await asyncio.sleep(0.01)
    if task.done():
        task.result()  # raises what stopped it
        raise RuntimeError(f"the HTTP API stopped at startup (is port {port} busy?)")
    return RunningApi(server, task, f"http://localhost:{port}")


def write_demo_tokens(store: CaseStore, user_ids: Sequence[str], path: Path) -> Path:
    """Fresh tokens for the demo users, one line each, readable by the owner only; the
    previous run's demo tokens are revoked (tokens issued by hand are left alone)."""
    lines = [
        f"# Demo API tokens, written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `make run`;",
        "# new ones on every start. Use one as: curl -H 'Authorization: Bearer TOKEN' "
        f"http://localhost:{DEFAULT_PORT}/cases",
    ]
    for user_id in user_ids:
        found = store.user(user_id)
        if found is None:
            continue
        revoke_user_tokens(store, user_id, label=DEMO_TOKEN_LABEL)
        token = issue_token(store, user_id, label=DEMO_TOKEN_LABEL)
        lines.append(f"{user_id}\t{found[0]}\t{token}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)  # an older file may have had wider permissions
    return path
