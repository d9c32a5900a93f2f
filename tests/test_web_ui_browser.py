"""A real browser shows a run's decrypted input in the dev server's Web UI (issue #4).

Headless Chromium (Debian's `chromium` package, driven by Playwright with its executable path
set: nothing is downloaded) opens the dev server's Web UI, finds the run by its `CaseId` search
attribute, opens it and shows the request's message, which the UI can only have got from the
codec server: Temporal stores the input encrypted. The browser reaches the codec server with
the bearer token, added to the codec server's requests only (see `add_token`), so the
token-less UI-origin exception stays off; the CORS preflight reaches the real codec server.
A full-page screenshot is saved to `test-output/web-ui-decoded-input.png` and to the test's
`tmp_path`.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import uvicorn
from playwright.async_api import CDPSession, async_playwright
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment

import starter
import workflows.search_attributes as sa
from codec.encryption import EncryptionCodec
from codec.keys import KeyRing
from codec.server import EmbeddedServer, bind, create_codec_app
from devstack.binaries import dev_server_path
from domain.ids import info_request_workflow_id
from domain.models import ItemKind, RequestedItem
from store.cases import CaseStore
from store.files import FileStore
from store.migrate import upgrade
from tests.conftest import CLIENT_DK, PARTNER, PARTNER_USER, add_case, make_activities
from worker import ACTIVITY_THREADS, build_worker

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # Nothing leaves the machine (the UI fetches a news feed from temporal.io).
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]
MARKER = "Ask-Marker-7F3A"
MESSAGE = f"Please send the signed contract ({MARKER})."
WAIT_MS = 30_000
REPO = Path(__file__).resolve().parent.parent
SCREENSHOT = REPO / "test-output" / "web-ui-decoded-input.png"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class CodecRequest:
    method: str
    path: str
    origin: str | None
    bearer: bool
    status: int | None = None


@dataclass
class Recorder:
    """Wraps the codec app: which requests reached it, with or without a token, and how they
    were answered (so the test can show the UI's decode calls went in with the token)."""

    app: ASGIApp
    requests: list[CodecRequest] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        entry = CodecRequest(
            method=scope["method"],
            path=scope["path"],
            origin=headers.get("origin"),
            bearer=headers.get("authorization", "").startswith("Bearer "),
        )
        self.requests.append(entry)

        async def recording_send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                entry.status = message["status"]
            await send(message)

        await self.app(scope, receive, recording_send)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def new_store(work: Path) -> CaseStore:
    url = f"sqlite:///{work / 'cases.db'}"
    upgrade(url)
    store = CaseStore.from_url(url)
    store.add_party(PARTNER)
    store.add_party(CLIENT_DK)
    store.add_user(PARTNER_USER, PARTNER.id, "Pia Partner", "pia@test-collect.example")
    return store


async def test_web_ui_shows_the_decoded_input_through_the_codec_server(
    tmp_path: Path, payload_key_ring: KeyRing, test_data_converter: DataConverter
) -> None:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"{CHROMIUM} is missing: this test drives Debian's Chromium "
            "(apt-get install -y chromium; .ci/run installs it)"
        )

    # The codec server, on a port of its own, bound before the UI is told about it.
    token = secrets.token_urlsafe(32)
    codec_sock = bind("127.0.0.1", 0)
    codec_port: int = codec_sock.getsockname()[1]
    codec_url = f"http://127.0.0.1:{codec_port}"
    ui_port = free_port()
    ui_url = f"http://127.0.0.1:{ui_port}"
    ui_origins = (ui_url, f"http://localhost:{ui_port}")
    recorder = Recorder(
        create_codec_app(
            EncryptionCodec(payload_key_ring),
            token,
            ui_origins=ui_origins,
            allow_ui_origin_without_token=False,
        )
    )
    codec_server = EmbeddedServer(uvicorn.Config(recorder, log_level="warning", lifespan="off"))
    codec_task = asyncio.create_task(codec_server.serve(sockets=[codec_sock]))
    store: CaseStore | None = None
    env: WorkflowEnvironment | None = None
    try:
        while not codec_server.started:
            assert not codec_task.done(), "the codec server stopped at startup"
            await asyncio.sleep(0.01)
        store = new_store(tmp_path)
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=dev_server_path(),
            ui=True,
            ui_port=ui_port,
            search_attributes=sa.KEYS,
            data_converter=test_data_converter,
            dev_server_log_level="error",
            dev_server_extra_args=["--ui-codec-endpoint", codec_url],
        )
        client = env.client
        case_id = add_case(store)
        workflow_id = info_request_workflow_id(case_id)
        activities = make_activities(store, FileStore(tmp_path / "files", 1 << 20))
        task_queue = f"web-ui-{uuid.uuid4().hex[:8]}"
        with ThreadPoolExecutor(ACTIVITY_THREADS) as executor:
            async with build_worker(client, activities, executor, task_queue):
                await starter.request_info(
                    client,
                    starter.new_request(
                        case_id=case_id,
                        partner_user_id=PARTNER_USER,
                        message=MESSAGE,
                        items=[RequestedItem(kind=ItemKind.INVOICE_OR_CONTRACT, reason="signed")],
                    ),
                    task_queue=task_queue,
                )

                # Temporal holds only ciphertext: a client without the codec cannot see it.
                raw = await Client.connect(
                    client.service_client.config.target_host, namespace=client.namespace
                )
                history = await raw.get_workflow_handle(workflow_id).fetch_history()
                started = history.events[0].workflow_execution_started_event_attributes
                assert [p.metadata["encoding"] for p in started.input.payloads] == [
                    b"binary/encrypted"
                ]
                raw_bytes = b"".join(event.SerializeToString() for event in history.events)
                assert MARKER.encode() not in raw_bytes

                await look_in_the_browser(tmp_path, ui_url, codec_url, token, case_id, workflow_id)
    finally:
        if env is not None:
            await env.shutdown()
        codec_server.should_exit = True
        await codec_task
        codec_sock.close()
        if store is not None:
            store.engine.dispose()

    decodes = [r for r in recorder.requests if r.method == "POST" and r.path.endswith("/decode")]
    assert decodes, f"the UI never called the codec server: {recorder.requests}"
    preflights = [r for r in recorder.requests if r.method == "OPTIONS"]
    assert preflights and all(r.status == 204 for r in preflights), recorder.requests
    assert all(r.bearer for r in decodes), recorder.requests
    assert all(r.status == 200 for r in decodes), recorder.requests
    assert all(r.origin in ui_origins for r in decodes), recorder.requests


async def add_token(cdp: CDPSession, codec_url: str, token: str) -> None:
    """Give the page's requests to the codec server (and only those) the bearer token.

    Through the DevTools protocol's Fetch domain rather than `page.route`: with any Playwright
    route in place Playwright answers every CORS preflight itself, and the codec server's own
    preflight answer would go untested. Context-wide `extra_http_headers` would send the token
    to the UI's origin too. The preflight is passed on unchanged (browsers never send
    credentials on one); the POST gets `Authorization` after the browser's CORS checks, as a
    UI built with `passAccessToken` would send it.
    """

    async def paused(event: dict[str, Any]) -> None:
        request = event["request"]
        headers = [{"name": k, "value": v} for k, v in request["headers"].items()]
        if request["method"] != "OPTIONS":
            headers.append({"name": "Authorization", "value": f"Bearer {token}"})
        await cdp.send(
            "Fetch.continueRequest", {"requestId": event["requestId"], "headers": headers}
        )

    cdp.on("Fetch.requestPaused", paused)
    await cdp.send(
        "Fetch.enable", {"patterns": [{"urlPattern": f"{codec_url}/*", "requestStage": "Request"}]}
    )


async def look_in_the_browser(
    tmp_path: Path, ui_url: str, codec_url: str, token: str, case_id: str, workflow_id: str
) -> None:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            context = await browser.new_context(viewport={"width": 1400, "height": 1000})
            page = await context.new_page()
            page.set_default_timeout(WAIT_MS)
            await add_token(await context.new_cdp_session(page), codec_url, token)
            query = quote(f"CaseId = '{case_id}'")
            list_url = f"{ui_url}/namespaces/default/workflows?query={query}"
            try:
                # Visibility is eventually consistent: load the list until the run is in it
                # (each time after the list has rendered: a reload during the app's start-up
                # would only interrupt it).
                link = page.get_by_role("link", name=workflow_id)
                for _ in range(10):
                    await page.goto(list_url)
                    await link.or_(page.get_by_text("No Workflows Found")).first.wait_for()
                    if await link.count():
                        break
                    await asyncio.sleep(1)
                await link.first.click()
                await page.wait_for_url(f"**/workflows/{workflow_id}/**")
                # The run's page opens on its input, shown as JSON once the codec server has
                # decoded it (with a wrong token it shows the ciphertext under a red "Codec
                # Server could not connect").
                decoded = page.get_by_text(MARKER)
                await decoded.first.wait_for(state="visible")
                assert await decoded.first.is_visible()
                assert not await page.get_by_text("Codec Server could not connect").count()
            finally:
                shot = await page.screenshot(full_page=True)
                for path in (SCREENSHOT, tmp_path / SCREENSHOT.name):
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(shot)
                    print(f"screenshot: {path}")
        finally:
            await browser.close()
