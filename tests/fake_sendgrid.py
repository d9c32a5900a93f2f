"""A SendGrid-compatible HTTP server on 127.0.0.1, for tests, benchmarks and fault injection.

It speaks just enough of the v3 Mail Send API for the official `sendgrid` library (or any HTTP
client) to run against it unchanged:

    with FakeSendGrid() as fake:
        transport = SendGridTransport(fake.api_key, from_email=..., from_name=..., host=fake.host)
        fake.queue_responses(500, 202)        # the next two valid sends: an outage, then OK
        ...
        assert fake.sent()[0]["subject"] == "..."

- POST /v3/mail/send checks `Authorization: Bearer <api_key>` (401 otherwise) and that the JSON
  has personalizations (each with a `to`), from, subject and content (400 otherwise), with
  SendGrid's error body shape `{"errors": [{"message", "field", "help"}]}`.
- A request that passes those checks gets the next scripted response (`queue_responses`), or
  by default 202 with an empty body and a fresh `X-Message-Id` header, like SendGrid.
- Other paths answer 404, other methods on the mail path 405.

Every request is recorded (`requests`), whatever the answer. Plain module, no pytest needed.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

__all__ = ["MAIL_SEND_PATH", "FakeResponse", "FakeSendGrid", "RecordedRequest", "error_body"]

MAIL_SEND_PATH = "/v3/mail/send"

# SendGrid's own wording, so code that surfaces these messages sees realistic text.
_MSG_UNAUTHORIZED = "The provided authorization grant is invalid, expired, or revoked"
_MSG_PERSONALIZATIONS = (
    "The personalizations field is required and must have at least one personalization."
)
_MSG_TO = (
    "The to array is required for all personalization objects, and must have at least one "
    "email object with a valid email address."
)
_MSG_TO_EMAIL = "Does not contain a valid address."
_MSG_FROM = (
    "The from object must be provided for every email send. It is an object that requires the "
    'email parameter, but may also contain a name parameter.  e.g. {"email" : '
    '"example@example.com"}  or {"email" : "example@example.com", "name" : "Example Recipient"}.'
)
_MSG_FROM_EMAIL = "The from email does not contain a valid address."
_MSG_SUBJECT = (
    "The subject is required. You can get around this requirement if you use a template with a "
    "subject defined or if every personalization has a subject defined."
)
_MSG_CONTENT = (
    "Unless a valid template_id is provided, the content parameter is required. There must be "
    "at least one defined content block. We typically suggest both text/plain and text/html "
    "blocks are included, but only one block is required."
)
_MSG_CONTENT_VALUE = "The content value must be a string at least one character in length."


def _error(message: str, field: str | None) -> dict[str, Any]:
    return {"message": message, "field": field, "help": None}


def error_body(message: str, field: str | None = None) -> dict[str, Any]:
    """SendGrid's error body for one error."""
    return {"errors": [_error(message, field)]}


@dataclass(frozen=True)
class FakeResponse:
    """One scripted answer.

    `body`: a dict/list is sent as JSON, bytes/str as is, None means "SendGrid's usual body for
    this status" (empty for 2xx, an `errors` JSON otherwise). A 2xx gets a generated
    X-Message-Id unless `headers` has one. `delay_seconds` sleeps before answering (to trigger
    client timeouts); stopping the server cuts the sleep short.
    """

    status: int = 202
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    delay_seconds: float = 0.0

    @classmethod
    def error(
        cls,
        status: int,
        message: str,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> FakeResponse:
        """A SendGrid-style error answer, e.g. `FakeResponse.error(400, "...", "from.email")`."""
        return cls(status=status, headers=dict(headers or {}), body=error_body(message, field))


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the fake saw it, and what it answered."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased: HTTP header names are case-insensitive
    json: Any  # the parsed body; None when empty or not JSON
    raw_body: bytes
    status: int
    message_id: str | None  # the X-Message-Id we answered with, for 2xx

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class FakeSendGrid:
    """Context manager running the fake in a daemon thread on 127.0.0.1 (a free port)."""

    def __init__(self, api_key: str = "SG.fake-test-key") -> None:
        self.api_key = api_key
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._queue: deque[FakeResponse] = deque()
        self._ids = itertools.count(1)
        self._closing = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("FakeSendGrid is already running")
        self._closing.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},  # so stop() returns quickly
            name=f"fake-sendgrid-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._closing.set()  # wake handlers sleeping on a delayed response
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeSendGrid is not running")
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        """Base URL to give SendGridAPIClient(host=...)."""
        return f"http://127.0.0.1:{self.port}"

    # -- scripting and inspection ----------------------------------------------------------

    def queue_responses(self, *responses: int | FakeResponse) -> None:
        """Script the answers to the next valid mail sends, in order; then back to 202.

        An int is a status with SendGrid's usual body for it. Requests rejected by the auth or
        shape checks, or sent to other paths, do not consume the queue.
        """
        items = [r if isinstance(r, FakeResponse) else FakeResponse(status=r) for r in responses]
        with self._lock:
            self._queue.extend(items)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def sent(self) -> list[Any]:
        """JSON bodies of the requests answered with 2xx (202 by default): the "delivered" mail."""
        return [r.json for r in self.requests if 200 <= r.status < 300]

    def clear(self) -> None:
        """Forget recorded requests and any scripted responses not used yet."""
        with self._lock:
            self._requests.clear()
            self._queue.clear()

    # -- used by the handler ---------------------------------------------------------------

    def _next_response(self) -> FakeResponse:
        with self._lock:
            return self._queue.popleft() if self._queue else FakeResponse()

    def _next_message_id(self) -> str:
        with self._lock:
            return f"fake-msg-{next(self._ids):06d}"

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)


class _Server(ThreadingHTTPServer):
    fake: FakeSendGrid
    daemon_threads = True  # a stuck client must not keep the test process alive


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # HTTP/1.0: one request per connection, so stop() leaves no idle keep-alive sockets behind.
    protocol_version = "HTTP/1.0"

    def do_POST(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean; the recorded requests say what happened

    def _handle(self) -> None:
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        parsed = _parse_json(raw)
        path = urlsplit(self.path).path

        if path != MAIL_SEND_PATH:
            response = FakeResponse.error(404, "resource not found")
        elif self.command != "POST":
            response = FakeResponse.error(405, "method not allowed")
        elif self.headers.get("Authorization") != f"Bearer {fake.api_key}":
            response = FakeResponse.error(401, _MSG_UNAUTHORIZED)
        else:
            errors = _validate_mail(parsed)
            if errors:
                response = FakeResponse(status=400, body={"errors": errors})
            else:
                response = fake._next_response()

        headers = dict(response.headers)
        message_id: str | None = None
        if 200 <= response.status < 300:
            message_id = _get_ci(headers, "X-Message-Id")
            if message_id is None:
                message_id = fake._next_message_id()
                headers["X-Message-Id"] = message_id

        fake._record(
            RecordedRequest(
                method=self.command,
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                json=parsed,
                raw_body=raw,
                status=response.status,
                message_id=message_id,
            )
        )

        if response.delay_seconds > 0 and fake._closing.wait(response.delay_seconds):
            return  # server stopping: drop the connection without answering
        self._write(response.status, headers, _encode_body(response))

    def _write(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        try:
            self.send_response(status)
            if body and _get_ci(headers, "Content-Type") is None:
                self.send_header("Content-Type", "application/json")
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. its timeout fired while we were delaying)


def _parse_json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None


def _get_ci(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


def _encode_body(response: FakeResponse) -> bytes:
    body = response.body
    if body is None:
        if 200 <= response.status < 300:
            return b""
        try:
            phrase = HTTPStatus(response.status).phrase.lower()
        except ValueError:
            phrase = "error"
        body = error_body(phrase)
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body).encode("utf-8")


def _looks_like_address(value: Any) -> bool:
    # SendGrid validates addresses properly; "something@something" is enough for a fake.
    if not isinstance(value, str):
        return False
    local, at, domain = value.partition("@")
    return bool(local and at and domain)


def _validate_mail(body: Any) -> list[dict[str, Any]]:
    """The checks SendGrid makes on a mail send body that matter to us; [] when acceptable."""
    if not isinstance(body, dict):
        return [_error("Bad Request", None)]
    errors: list[dict[str, Any]] = []
    has_template = bool(body.get("template_id"))

    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        errors.append(_error(_MSG_PERSONALIZATIONS, "personalizations"))
        personalizations = []
    for i, personalization in enumerate(personalizations):
        tos = personalization.get("to") if isinstance(personalization, dict) else None
        if not isinstance(tos, list) or not tos:
            errors.append(_error(_MSG_TO, f"personalizations.{i}.to"))
            continue
        for j, to in enumerate(tos):
            if not isinstance(to, dict) or not _looks_like_address(to.get("email")):
                errors.append(_error(_MSG_TO_EMAIL, f"personalizations.{i}.to.{j}.email"))

    sender = body.get("from")
    if not isinstance(sender, dict) or "email" not in sender:
        errors.append(_error(_MSG_FROM, "from.email"))
    elif not _looks_like_address(sender["email"]):
        errors.append(_error(_MSG_FROM_EMAIL, "from.email"))

    every_personalization_has_subject = bool(personalizations) and all(
        isinstance(p, dict) and p.get("subject") for p in personalizations
    )
    if not body.get("subject") and not has_template and not every_personalization_has_subject:
        errors.append(_error(_MSG_SUBJECT, "subject"))

    content = body.get("content")
    if not has_template:
        if not isinstance(content, list) or not content:
            errors.append(_error(_MSG_CONTENT, "content"))
        else:
            for i, block in enumerate(content):
                if not isinstance(block, dict) or not block.get("type"):
                    errors.append(_error(_MSG_CONTENT, f"content.{i}.type"))
                elif not isinstance(block.get("value"), str) or not block["value"]:
                    errors.append(_error(_MSG_CONTENT_VALUE, f"content.{i}.value"))
    return errors
