"""The codec server: lets an operator's Temporal Web UI show decrypted payloads.

Temporal's remote codec protocol: POST `/encode` and `/decode` (also `/{namespace}/encode` and
`/{namespace}/decode`, for the CLI's endpoint templating) with

    {"payloads": [{"metadata": {"encoding": "<base64>", ...}, "data": "<base64>"}, ...]}

(the proto JSON of `temporal.api.common.v1.Payloads`), answered in the same shape with
`Content-Type: application/json`. The UI adds an `X-Namespace` header; it is logged, the keys
are the same for every namespace.

Security:
- Every request needs `Authorization: Bearer <token>` (CODEC_SERVER_TOKEN, else the token
  file `<data dir>/codec-token`, created once, mode 0600), compared in constant time;
  otherwise 401.
- CORS: only the configured Web UI origins (CODEC_UI_ORIGINS, comma-separated, default the
  dev server's UI `http://localhost:8233` and `http://127.0.0.1:8233`) get CORS headers, with
  credentials; a preflight from any other origin is refused with none.
- The dev server's UI has no login and cannot send a bearer token. With
  CODEC_ALLOW_UI_ORIGIN=1 (`make run` sets it) a request WITHOUT an Authorization header is
  let through when its Origin is an allowed UI origin AND the server listens on loopback AND
  the peer is on loopback. The Origin header is only trustworthy from browsers: any local
  process can send it, so on that machine anyone who can reach 127.0.0.1 can decode. That is
  the same reach as the dev key file in the data dir; never enable it on a shared host or
  behind a proxy (docs/encryption.md).
- Malformed requests get a 400 JSON error; payloads that cannot be decrypted (unknown key id,
  altered) a 422 JSON error naming the key id. Key material is never logged or returned.

    python -m codec.server [--host 127.0.0.1] [--port 8234]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import hmac
import ipaddress
import json
import logging
import os
import secrets
import socket
import sys
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from codec import secret_file
from codec.encryption import EncryptionCodec, PayloadDecryptionError
from codec.keys import KeyRingError, load_key_ring
from config import Settings

log = logging.getLogger("codec.server")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8234
DEFAULT_UI_ORIGINS = ("http://localhost:8233", "http://127.0.0.1:8233")
TOKEN_ENV = "CODEC_SERVER_TOKEN"
TOKEN_FILE_NAME = "codec-token"
ORIGINS_ENV = "CODEC_UI_ORIGINS"
ALLOW_UI_ORIGIN_ENV = "CODEC_ALLOW_UI_ORIGIN"
MIN_TOKEN_CHARS = 16
MAX_BODY_BYTES = 16 * 1024 * 1024
ALLOWED_METHODS = "POST, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type, X-Namespace"
PREFLIGHT_MAX_AGE = "600"


class CodecConfigError(ValueError):
    """The codec server's settings are unusable."""


class _BadRequest(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def create_codec_app(
    codec: PayloadCodec,
    token: str,
    ui_origins: Iterable[str] = DEFAULT_UI_ORIGINS,
    allow_ui_origin_without_token: bool = False,
) -> FastAPI:
    """The codec server as an ASGI app (serve it with uvicorn, or test it with httpx)."""
    if len(token) < MIN_TOKEN_CHARS:
        raise CodecConfigError(f"the codec server token must be at least {MIN_TOKEN_CHARS} chars")
    expected = token.encode()
    origins = frozenset(o.rstrip("/") for o in ui_origins)
    app = FastAPI(
        title="info-requests codec server",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @app.middleware("http")
    async def cors(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        origin = request.headers.get("origin")
        allowed = origin is not None and origin in origins
        if request.method == "OPTIONS" and "access-control-request-method" in request.headers:
            if not allowed:
                return _error(403, "origin not allowed", {"Vary": "Origin"})
            return Response(
                status_code=204,
                headers={
                    "Access-Control-Allow-Origin": origin or "",
                    "Access-Control-Allow-Methods": ALLOWED_METHODS,
                    "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                    "Access-Control-Allow-Credentials": "true",
                    "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
                    "Vary": "Origin",
                },
            )
        response = await call_next(request)
        response.headers["Vary"] = "Origin"
        if allowed:
            response.headers["Access-Control-Allow-Origin"] = origin or ""
            response.headers["Access-Control-Allow-Credentials"] = "true"
        return response

    def authorized(request: Request) -> str | None:
        """How the request is let in ("token" or "ui-origin"), or None."""
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, credentials = header.strip().partition(" ")
            ok = scheme.lower() == "bearer" and hmac.compare_digest(
                credentials.strip().encode(), expected
            )
            return "token" if ok else None
        if (
            allow_ui_origin_without_token
            and request.headers.get("origin") in origins
            and _is_loopback_peer(request.scope.get("server"))
            and _is_loopback_peer(request.scope.get("client"))
        ):
            return "ui-origin"
        return None

    async def handle(request: Request, operation: str, namespace: str | None = None) -> Response:
        how = authorized(request)
        if how is None:
            return _error(
                401, "missing or wrong bearer token", {"WWW-Authenticate": 'Bearer realm="codec"'}
            )
        try:
            payloads = _parse_payloads(await _read_body(request))
            if operation == "encode":
                result = await codec.encode(payloads)
            else:
                result = await codec.decode(payloads)
        except _BadRequest as e:
            return _error(e.status, e.message)
        except PayloadDecryptionError as e:
            return _error(422, str(e))
        log.debug(
            "%s of %d payload(s) for namespace %s (origin %s, via %s)",
            operation,
            len(payloads),
            namespace or request.headers.get("x-namespace", "-"),
            request.headers.get("origin", "-"),
            how,
        )
        return JSONResponse({"payloads": [_payload_to_json(p) for p in result]})

    @app.post("/encode")
    async def encode(request: Request) -> Response:
        return await handle(request, "encode")

    @app.post("/decode")
    async def decode(request: Request) -> Response:
        return await handle(request, "decode")

    # The CLI's `--codec-endpoint http://host:8234/{namespace}` form.
    @app.post("/{namespace}/encode")
    async def encode_in(request: Request, namespace: str) -> Response:
        return await handle(request, "encode", namespace)

    @app.post("/{namespace}/decode")
    async def decode_in(request: Request, namespace: str) -> Response:
        return await handle(request, "decode", namespace)

    return app


def _is_loopback_peer(address: Any) -> bool:
    if not isinstance(address, (tuple, list)) or not address:
        return False
    return is_loopback_host(str(address[0]))


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


async def _read_body(request: Request) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise _BadRequest(f"body larger than {MAX_BODY_BYTES} bytes", 413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _BadRequest(f"body larger than {MAX_BODY_BYTES} bytes", 413)
    return bytes(body)


def _b64decode(value: object, where: str) -> bytes:
    """Proto JSON bytes: standard or URL-safe base64, padding optional."""
    if not isinstance(value, str):
        raise _BadRequest(f"{where} must be a base64 string")
    padded = value + "=" * (-len(value) % 4)
    try:
        return base64.b64decode(
            padded, altchars=b"-_" if "-" in value or "_" in value else None, validate=True
        )
    except (binascii.Error, ValueError):
        raise _BadRequest(f"{where} is not valid base64") from None


def _parse_payloads(body: bytes) -> list[Payload]:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _BadRequest("body is not valid JSON") from None
    if not isinstance(document, dict) or not isinstance(document.get("payloads"), list):
        raise _BadRequest('expected a JSON object {"payloads": [...]}')
    payloads: list[Payload] = []
    for i, item in enumerate(document["payloads"]):
        if not isinstance(item, dict):
            raise _BadRequest(f"payloads[{i}] must be an object")
        metadata = item.get("metadata", {})
        if not isinstance(metadata, dict):
            raise _BadRequest(f"payloads[{i}].metadata must be an object")
        payloads.append(
            Payload(
                metadata={
                    str(k): _b64decode(v, f"payloads[{i}].metadata.{k}")
                    for k, v in metadata.items()
                },
                data=_b64decode(item.get("data", ""), f"payloads[{i}].data"),
            )
        )
    return payloads


def _payload_to_json(payload: Payload) -> dict[str, Any]:
    return {
        "metadata": {k: base64.b64encode(v).decode() for k, v in payload.metadata.items()},
        "data": base64.b64encode(payload.data).decode(),
    }


# ---- settings ---------------------------------------------------------------------------------


def token_file_path(settings: Settings) -> Path:
    return settings.data_dir / TOKEN_FILE_NAME


def load_token(
    settings: Settings | None = None, environ: Mapping[str, str] | None = None
) -> tuple[str, Path | None]:
    """The bearer token of CODEC_SERVER_TOKEN, else of the token file (created if missing).

    Returns (token, the token file or None when it came from the environment).
    """
    env = os.environ if environ is None else environ
    token = env.get(TOKEN_ENV)
    path: Path | None = None
    if token is None:
        path = token_file_path(settings or Settings.from_env())
        text, _ = secret_file.read_or_create(path, lambda: secrets.token_urlsafe(32) + "\n")
        token = text
    token = token.strip()
    source = str(path) if path else TOKEN_ENV
    if len(token) < MIN_TOKEN_CHARS:
        raise CodecConfigError(f"{source}: the token must be at least {MIN_TOKEN_CHARS} chars")
    if any(c.isspace() for c in token):
        raise CodecConfigError(f"{source}: the token must not contain whitespace")
    return token, path


def ui_origins_from_env(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    env = os.environ if environ is None else environ
    value = env.get(ORIGINS_ENV)
    if value is None:
        return DEFAULT_UI_ORIGINS
    origins = tuple(o.strip().rstrip("/") for o in value.split(",") if o.strip())
    for origin in origins:
        if origin == "*" or "://" not in origin:
            raise CodecConfigError(
                f"{ORIGINS_ENV}: {origin!r} is not an origin like https://temporal.example.com"
            )
    return origins


# ---- running it -------------------------------------------------------------------------------


class EmbeddedServer(uvicorn.Server):
    """uvicorn inside a program's own event loop: the program keeps its signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass
class RunningCodecServer:
    server: EmbeddedServer
    task: asyncio.Task[None]
    host: str
    port: int
    token_file: Path | None

    async def stop(self) -> None:
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound now so that a busy port fails here and clearly."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise OSError(e.errno, f"codec server cannot listen on {host}:{port}: {e.strerror}") from e
    sock.set_inheritable(True)
    return sock


def check_ui_origin_exception(host: str, allow_ui_origin_without_token: bool) -> None:
    if allow_ui_origin_without_token and not is_loopback_host(host):
        raise CodecConfigError(
            f"{ALLOW_UI_ORIGIN_ENV}=1 lets token-less requests in and is only for a server on "
            f"loopback; refusing to listen on {host} with it"
        )


async def start_codec_server(
    settings: Settings,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    allow_ui_origin_without_token: bool = False,
) -> RunningCodecServer:
    """Start the codec server as a task of the running loop (for `make run`)."""
    check_ui_origin_exception(host, allow_ui_origin_without_token)
    token, token_file = load_token(settings)
    app = create_codec_app(
        EncryptionCodec(load_key_ring(settings)),
        token,
        ui_origins_from_env(),
        allow_ui_origin_without_token,
    )
    sock = bind(host, port)
    server = EmbeddedServer(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]), name="codec-server")
    while not server.started and not task.done():
        await asyncio.sleep(0.01)
    if task.done():
        sock.close()
        task.result()
        raise RuntimeError("the codec server stopped at startup")
    return RunningCodecServer(server, task, host, port, token_file)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m codec.server",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    allow = os.environ.get(ALLOW_UI_ORIGIN_ENV) == "1"
    try:
        check_ui_origin_exception(args.host, allow)
        settings = Settings.from_env()
        token, token_file = load_token(settings)
        origins = ui_origins_from_env()
        app = create_codec_app(EncryptionCodec(load_key_ring(settings)), token, origins, allow)
    except (CodecConfigError, KeyRingError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    log.info(
        "codec server on http://%s:%d for UI origins %s; bearer token %s%s",
        args.host,
        args.port,
        ", ".join(origins),
        f"in {token_file}" if token_file else f"from {TOKEN_ENV}",
        "; token-less requests from those origins allowed (loopback only)" if allow else "",
    )
    # uvicorn's access log (one line per request, with the peer) is the audit trail here.
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", lifespan="off")
    return 0


if __name__ == "__main__":
    sys.exit(main())
