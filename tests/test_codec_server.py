"""The codec server over HTTP (in process): Temporal's remote codec protocol, auth, CORS."""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from codec.encryption import EncryptionCodec
from codec.keys import KeyRing
from codec.server import (
    CodecConfigError,
    check_ui_origin_exception,
    create_codec_app,
    load_token,
    ui_origins_from_env,
)
from config import Settings

TOKEN = secrets.token_urlsafe(24)
UI = "http://localhost:8233"
LOOPBACK = "http://127.0.0.1:8234"
DEBTOR = "Mette Skyldnersen"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def json_payload(value: object) -> dict[str, Any]:
    return {"metadata": {"encoding": b64(b"json/plain")}, "data": b64(json.dumps(value).encode())}


def app(allow_ui_origin: bool = False) -> FastAPI:
    return create_codec_app(EncryptionCodec(KeyRing.generate("k1")), TOKEN, [UI], allow_ui_origin)


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app()), base_url=LOOPBACK) as c:
        yield c


async def test_encode_then_decode_round_trip(http: httpx.AsyncClient) -> None:
    payloads = [json_payload({"debtor": DEBTOR}), json_payload("second")]
    encoded = await http.post(
        "/encode", json={"payloads": payloads}, headers={**auth(), "X-Namespace": "default"}
    )
    assert encoded.status_code == 200, encoded.text
    assert encoded.headers["content-type"] == "application/json"
    sealed = encoded.json()["payloads"]
    assert len(sealed) == 2
    for p in sealed:
        assert base64.b64decode(p["metadata"]["encoding"]) == b"binary/encrypted"
        assert base64.b64decode(p["metadata"]["encryption-key-id"]) == b"k1"
        assert DEBTOR.encode() not in base64.b64decode(p["data"])

    decoded = await http.post(
        "/decode", json={"payloads": sealed}, headers={**auth(), "X-Namespace": "default"}
    )
    assert decoded.status_code == 200, decoded.text
    assert decoded.json() == {"payloads": payloads}


async def test_bearer_scheme_is_case_insensitive(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/decode", json={"payloads": []}, headers={"Authorization": f"bearer {TOKEN}"}
    )
    assert response.status_code == 200


async def test_namespace_path_form(http: httpx.AsyncClient) -> None:
    """`temporal --codec-endpoint 'http://localhost:8234/{namespace}'` posts here."""
    sealed = await http.post(
        "/default/encode", json={"payloads": [json_payload(1)]}, headers=auth()
    )
    assert sealed.status_code == 200
    decoded = await http.post("/default/decode", json=sealed.json(), headers=auth())
    assert decoded.json() == {"payloads": [json_payload(1)]}
    assert (await http.post("/default/decode", json=sealed.json())).status_code == 401
    assert (await http.post("/a/b/decode", json=sealed.json(), headers=auth())).status_code == 404


async def test_decode_passes_unencrypted_payloads_and_omitted_fields(
    http: httpx.AsyncClient,
) -> None:
    """Proto JSON may leave out empty fields; old unencrypted payloads come back as they are."""
    body = {"payloads": [{"metadata": {"encoding": b64(b"binary/null")}}, {}]}
    response = await http.post("/decode", json=body, headers=auth())
    assert response.status_code == 200
    assert response.json() == {
        "payloads": [
            {"metadata": {"encoding": b64(b"binary/null")}, "data": ""},
            {"metadata": {}, "data": ""},
        ]
    }


@pytest.mark.parametrize(
    "headers",
    [
        {},
        auth("wrong-token-wrong-token"),
        {"Authorization": TOKEN},  # not a bearer
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": ""},
    ],
    ids=["missing", "wrong", "no-scheme", "longer", "basic", "empty"],
)
async def test_without_the_right_token_401(
    http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    for path in ("/encode", "/decode"):
        response = await http.post(path, json={"payloads": []}, headers=headers)
        assert response.status_code == 401
        assert response.json() == {"error": "missing or wrong bearer token"}
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_cors_preflight_from_the_ui_origin(http: httpx.AsyncClient) -> None:
    response = await http.options(
        "/decode",
        headers={
            "Origin": UI,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, x-namespace",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == UI
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = {
        h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
    }
    assert {"authorization", "content-type", "x-namespace"} <= allowed

    actual = await http.post("/decode", json={"payloads": []}, headers={**auth(), "Origin": UI})
    assert actual.status_code == 200
    assert actual.headers["access-control-allow-origin"] == UI
    assert actual.headers["access-control-allow-credentials"] == "true"
    unauthorised = await http.post("/decode", json={"payloads": []}, headers={"Origin": UI})
    assert unauthorised.status_code == 401
    assert unauthorised.headers["access-control-allow-origin"] == UI  # so the UI can show it


async def test_cors_nothing_for_another_origin(http: httpx.AsyncClient) -> None:
    evil = "http://evil.example"
    preflight = await http.options(
        "/decode",
        headers={
            "Origin": evil,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code == 403
    assert not [h for h in preflight.headers if h.lower().startswith("access-control-")]
    actual = await http.post("/decode", json={"payloads": []}, headers={**auth(), "Origin": evil})
    assert not [h for h in actual.headers if h.lower().startswith("access-control-")]


async def ui_decode(
    allow: bool, *, origin: str = UI, base_url: str = LOOPBACK, token: str | None = None
) -> httpx.Response:
    transport = httpx.ASGITransport(app=app(allow))
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
        headers = {"Origin": origin, "X-Namespace": "default"}
        if token is not None:
            headers.update(auth(token))
        return await client.post("/decode", json={"payloads": [json_payload("x")]}, headers=headers)


async def test_token_less_ui_origin_only_when_enabled() -> None:
    assert (await ui_decode(allow=False)).status_code == 401
    allowed = await ui_decode(allow=True)
    assert allowed.status_code == 200
    assert allowed.json() == {"payloads": [json_payload("x")]}
    assert allowed.headers["access-control-allow-origin"] == UI
    # ... and only for the UI origin, on loopback, without a (wrong) token.
    assert (await ui_decode(allow=True, origin="http://evil.example")).status_code == 401
    assert (await ui_decode(allow=True, base_url="http://codec.example.com")).status_code == 401
    assert (await ui_decode(allow=True, token="wrong-token-wrong-token")).status_code == 401


async def test_without_an_origin_the_token_is_always_required() -> None:
    """Without an Origin header (curl, a script) the token is always required."""
    transport = httpx.ASGITransport(app=app(allow_ui_origin=True))
    async with httpx.AsyncClient(transport=transport, base_url=LOOPBACK) as client:
        response = await client.post("/decode", json={"payloads": []})
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[]", "expected a JSON object"),
        (b'{"payloads": {}}', "expected a JSON object"),
        (b'{"payloads": [1]}', r"payloads\[0\] must be an object"),
        (b'{"payloads": [{"metadata": []}]}', r"payloads\[0\].metadata must be an object"),
        (b'{"payloads": [{"data": "***"}]}', r"payloads\[0\].data is not valid base64"),
        (b'{"payloads": [{"data": 12}]}', r"payloads\[0\].data must be a base64 string"),
        (
            b'{"payloads": [{"metadata": {"encoding": "%%%"}}]}',
            r"payloads\[0\].metadata.encoding is not valid base64",
        ),
    ],
)
async def test_bad_requests_get_400_json(
    http: httpx.AsyncClient, body: bytes, message: str
) -> None:
    for path in ("/encode", "/decode"):
        response = await http.post(
            path, content=body, headers={**auth(), "Content-Type": "application/json"}
        )
        assert response.status_code == 400, response.text
        assert response.headers["content-type"] == "application/json"
        assert message.replace("\\", "") in response.json()["error"]


async def test_oversized_body_gets_413(http: httpx.AsyncClient) -> None:
    body = b'{"payloads": [{"data": "' + b"A" * (16 * 1024 * 1024) + b'"}]}'
    response = await http.post("/decode", content=body, headers=auth())
    assert response.status_code == 413
    assert "larger than" in response.json()["error"]


async def test_undecryptable_payload_gets_422_naming_the_key_id(http: httpx.AsyncClient) -> None:
    foreign = create_codec_app(EncryptionCodec(KeyRing.generate("old-key")), TOKEN, [UI])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=foreign), base_url=LOOPBACK
    ) as other:
        sealed = await other.post("/encode", json={"payloads": [json_payload(1)]}, headers=auth())
    response = await http.post("/decode", json=sealed.json(), headers=auth())
    assert response.status_code == 422
    assert "'old-key'" in response.json()["error"]


async def test_tampered_payload_gets_422(http: httpx.AsyncClient) -> None:
    sealed = (
        await http.post("/encode", json={"payloads": [json_payload(1)]}, headers=auth())
    ).json()
    data = bytearray(base64.b64decode(sealed["payloads"][0]["data"]))
    data[-1] ^= 1
    sealed["payloads"][0]["data"] = b64(bytes(data))
    response = await http.post("/decode", json=sealed, headers=auth())
    assert response.status_code == 422
    assert "failed authentication" in response.json()["error"]


async def test_no_api_docs_are_served(http: httpx.AsyncClient) -> None:
    for path in ("/docs", "/openapi.json", "/redoc"):
        assert (await http.get(path)).status_code == 404


# ---- settings --------------------------------------------------------------------------------


def test_token_file_is_created_once_0600(tmp_path: Path) -> None:
    settings = dataclasses.replace(Settings.from_env(), data_dir=tmp_path)
    token, path = load_token(settings, {})
    assert path == tmp_path / "codec-token"
    assert (path.stat().st_mode & 0o777) == 0o600
    assert load_token(settings, {}) == (token, path)
    assert load_token(settings, {"CODEC_SERVER_TOKEN": TOKEN}) == (TOKEN, None)
    with pytest.raises(CodecConfigError, match="at least 16"):
        load_token(settings, {"CODEC_SERVER_TOKEN": "short"})


def test_ui_origins_setting() -> None:
    assert UI in ui_origins_from_env({})
    assert ui_origins_from_env({"CODEC_UI_ORIGINS": "https://t.example/, https://u.example"}) == (
        "https://t.example",
        "https://u.example",
    )
    with pytest.raises(CodecConfigError, match="not an origin"):
        ui_origins_from_env({"CODEC_UI_ORIGINS": "*"})


def test_ui_origin_exception_is_refused_off_loopback() -> None:
    check_ui_origin_exception("127.0.0.1", True)
    check_ui_origin_exception("::1", True)
    check_ui_origin_exception("0.0.0.0", False)
    with pytest.raises(CodecConfigError, match="only for a server on loopback"):
        check_ui_origin_exception("0.0.0.0", True)


def test_short_tokens_are_refused() -> None:
    with pytest.raises(CodecConfigError):
        create_codec_app(EncryptionCodec(KeyRing.generate()), "abc", [UI], False)
