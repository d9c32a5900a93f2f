"""The FastAPI application: `create_app(store, files, temporal)`; OpenAPI at /docs.

app = create_app(store, files, client)                 # task queue: workflows.TASK_QUEUE
server = uvicorn.Server(uvicorn.Config(app, port=8000))
await server.serve()                                     # see devstack/run.py
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client

from api import routes_cases, routes_client, routes_metrics, routes_partner
from api.context import ApiContext
from api.errors import error_response, install_error_handlers
from store.cases import CaseStore
from store.files import FileStore
from workflows import TASK_QUEUE

DESCRIPTION = """
Cases, the case chat, tasks and info requests for client portals and partners' apps.
Every call needs `Authorization: Bearer <token>` (`python -m api.tokens issue USER_ID`).
Every error is `{"error": {"code": ..., "message": ...}}`. See docs/http-api.md.
"""


def create_app(
    store: CaseStore,
    files: FileStore,
    temporal: Client,
    *,
    task_queue: str = TASK_QUEUE,
    temporal_timeout_seconds: float = 30.0,
) -> FastAPI:
    app = FastAPI(title="Info requests API", version="1", description=DESCRIPTION)
    context = ApiContext(
        store=store,
        files=files,
        temporal=temporal,
        task_queue=task_queue,
        temporal_timeout_seconds=temporal_timeout_seconds,
    )
    app.state.context = context
    install_error_handlers(app)
    app.include_router(routes_cases.router)
    app.include_router(routes_client.router)
    app.include_router(routes_partner.router)
    app.include_router(routes_metrics.router)
    # Outermost first: the size limit sees a request before anything reads its body.
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodySizeLimit, max_bytes=context.max_request_bytes)
    return app


class BodySizeLimit:
    """413 for a request body over the limit: at once from Content-Length, or as soon as a
    body without one has streamed past it, before the whole of it is spooled to disk."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            response = error_response(
                413,
                "payload_too_large",
                f"the request body is larger than the limit of {self.max_bytes} bytes",
            )
            await response(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI passes an HTTPException raised while reading the body through
                    # to the error handlers, which answer in the one error shape.
                    raise StarletteHTTPException(
                        413, f"the request body is larger than the limit of {self.max_bytes} bytes"
                    )
            return message

        await self.app(scope, limited_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class SecurityHeaders:
    """Responses carry personal data: never sniffed into another type, never cached."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                if b"x-content-type-options" not in names:
                    headers.append((b"x-content-type-options", b"nosniff"))
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
