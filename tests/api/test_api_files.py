"""File rules: types judged by content, size limits, hostile names, safe downloads."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from api.app import create_app
from api.files import DOCX, XLSX, content_disposition, sanitize_filename
from store.files import FileStore
from tests.api.conftest import Api, error_of, shared_api
from tests.api.files import (
    CSV_BYTES,
    ELF_BYTES,
    GIF_BYTES,
    HTML_BYTES,
    JPEG_BYTES,
    PDF_BYTES,
    PNG_BYTES,
    SCRIPT_BYTES,
    TEXT_BYTES,
    office_file,
    plain_zip,
)
from tests.conftest import PARTNER

FORM = {
    "partner_id": PARTNER.id,
    "reference": "REF-FILES",
    "debtor_name": "Debtor ApS",
    "amount_minor": "10000",
    "currency": "DKK",
    "description": "Unpaid invoice",
}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
async def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Api]:
    async with shared_api(request, tmp_path_factory.mktemp("files"), request.param) as api:
        yield api


def multipart(files: list[tuple[bytes, bytes]], fields: dict[str, str] = FORM) -> tuple[bytes, str]:
    """A multipart body written by hand, so hostile file names arrive byte for byte."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    for raw_name, content in files:
        parts.append(
            f"--{boundary}\r\n".encode()
            + b'Content-Disposition: form-data; name="files"; filename="'
            + raw_name
            + b'"\r\nContent-Type: application/pdf\r\n\r\n'
            + content
            + b"\r\n"
        )
    return b"".join(
        parts
    ) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


async def submit(api: Api, name: str | bytes, content: bytes) -> httpx.Response:
    raw = name if isinstance(name, bytes) else name.encode()
    body, content_type = multipart([(raw, content)])
    return await api.http.post(
        "/cases", headers={**api.client, "Content-Type": content_type}, content=body
    )


def stored_nothing(api: Api, content: bytes) -> bool:
    files = api.stack.files
    leftovers = list((files.root / "tmp").iterdir())
    return not files.exists(hashlib.sha256(content).hexdigest()) and not leftovers


@pytest.mark.parametrize(
    ("name", "content", "content_type", "stored_name"),
    [
        ("invoice.pdf", PDF_BYTES, "application/pdf", "invoice.pdf"),
        ("scan.png", PNG_BYTES, "image/png", "scan.png"),
        ("photo.jpeg", JPEG_BYTES, "image/jpeg", "photo.jpeg"),
        ("notes.txt", TEXT_BYTES, "text/plain", "notes.txt"),
        ("ledger.csv", CSV_BYTES, "text/csv", "ledger.csv"),
        ("contract.docx", office_file("word"), DOCX, "contract.docx"),
        ("ledger.xlsx", office_file("xl"), XLSX, "ledger.xlsx"),
        # Labelled by what it is, not by its name: a PNG named .pdf is a PNG.
        ("invoice.pdf", PNG_BYTES, "image/png", "invoice.pdf.png"),
        ("contract.pdf", office_file("word"), DOCX, "contract.pdf.docx"),
        ("statement.pdf", TEXT_BYTES, "text/plain", "statement.pdf.txt"),
        # Text that starts like a magic number ("BM" is a bitmap) is still text.
        ("bmw.txt", b"BMW 320d, leased 2024\n", "text/plain", "bmw.txt"),
    ],
)
async def test_types_are_decided_by_content(
    world: Api, name: str, content: bytes, content_type: str, stored_name: str
) -> None:
    response = await submit(world, name, content)
    assert response.status_code == 201, response.text
    [file] = response.json()["files"]
    assert (file["content_type"], file["filename"]) == (content_type, stored_name)
    assert file["sha256"] == hashlib.sha256(content).hexdigest()
    assert file["size"] == len(content)

    download = await world.http.get(file["download_url"], headers=world.partner)
    assert download.status_code == 200
    assert download.content == content
    assert download.headers["content-type"].split(";")[0] == content_type
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-disposition"].startswith("attachment;")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("invoice.pdf", SCRIPT_BYTES),
        ("invoice.pdf", HTML_BYTES),
        ("invoice.pdf", b"\xef\xbb\xbf  <?xml version='1.0'?><svg onload='alert(1)'/>"),
        ("invoice.pdf", ELF_BYTES),
        ("invoice.png", GIF_BYTES),
        ("archive.docx", plain_zip()),
        ("damaged.docx", b"PK\x03\x04" + b"\x00" * 100),
        ("macros.docx", office_file("word", macros=True)),
        ("macros.xlsx", office_file("xl", macros=True)),
        ("empty.txt", b""),
        # Text at the start, binary past the first 8 KiB: caught while streaming.
        ("long.txt", b"a" * 70_000 + b"\x00\x01\x02" + b"b" * 100),
    ],
)
async def test_types_off_the_allow_list_are_refused_and_nothing_is_kept(
    world: Api, name: str, content: bytes
) -> None:
    before = (await world.http.get("/cases", headers=world.client)).json()["total"]
    response = await submit(world, name, content)
    assert response.status_code == 415, response.text
    error = error_of(response)
    assert error["code"] == "unsupported_file_type"
    assert "PDF, PNG, JPEG" in str(error["message"])
    assert stored_nothing(world, content)
    assert (await world.http.get("/cases", headers=world.client)).json()["total"] == before


async def test_a_file_over_the_limit_is_413_and_not_kept(world: Api) -> None:
    limit = world.stack.files.max_bytes
    too_big = b"x" * (limit + 1)
    response = await submit(world, "big.txt", too_big)
    assert response.status_code == 413
    assert error_of(response)["code"] == "file_too_large"
    assert stored_nothing(world, too_big)
    exactly = await submit(world, "big.txt", b"y" * limit)
    assert exactly.status_code == 201


async def test_too_many_files_is_422(world: Api) -> None:
    body, content_type = multipart([(f"n{i}.txt".encode(), TEXT_BYTES) for i in range(21)])
    response = await world.http.post(
        "/cases", headers={**world.client, "Content-Type": content_type}, content=body
    )
    assert response.status_code == 422
    assert error_of(response)["fields"] == [{"field": "body.files", "message": "at most 20 files"}]


async def test_a_request_body_over_the_limit_is_413_before_it_is_read(
    world: Api, tmp_path: Path
) -> None:
    """The whole body is capped too (files x limit + form), from Content-Length or, without
    one, while it streams in."""
    small = FileStore(tmp_path / "small", max_bytes=1024)
    app = create_app(world.stack.store, small, world.stack.client)
    limit = 20 * 1024 + 1024 * 1024
    body, content_type = multipart([(b"big.txt", b"z" * (limit + 10))])
    headers = {**world.client, "Content-Type": content_type}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api.test"
    ) as http:
        declared = await http.post("/cases", headers=headers, content=body)
        assert declared.status_code == 413
        assert error_of(declared)["code"] == "payload_too_large"

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(body), 64 * 1024):
                yield body[start : start + 64 * 1024]

        streamed = await http.post("/cases", headers=headers, content=_async(chunks()))
        assert streamed.status_code == 413
        assert error_of(streamed)["code"] == "payload_too_large"
    assert not list((small.root / "tmp").iterdir())


async def _async(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    # An async body has no Content-Length: it is sent chunked.
    for chunk in chunks:
        yield chunk


@pytest.mark.parametrize(
    ("raw_name", "stored_name"),
    [
        (b"../../etc/passwd", "passwd.pdf"),
        (b"..\\..\\Windows\\System32\\evil.pdf", "evil.pdf"),
        (b"/absolute/path/invoice.pdf", "invoice.pdf"),
        (b"in\x00voice.pdf", "invoice.pdf"),
        (b"tab\tand\x1bescape.pdf", "tab andescape.pdf"),
        ("Faktura – Søren Ærø 請求書.pdf".encode(), "Faktura – Søren Ærø 請求書.pdf"),
        ("\u202efdp.exe".encode(), "fdp.exe.pdf"),  # no right-to-left override trick
        (b"...", "file.pdf"),
        (b"", "file.pdf"),
        (b"CON.pdf", "_CON.pdf"),
        (b"a;b<c>|d?.pdf", "a;b_c__d_.pdf"),
        (b"a" * 1000 + b".pdf", "a" * 116 + ".pdf"),
        ("é".encode() * 300 + b".pdf", "é" * 116 + ".pdf"),
    ],
)
async def test_hostile_file_names_are_stored_and_returned_sanitised(
    world: Api, raw_name: bytes, stored_name: str
) -> None:
    content = PDF_BYTES + uuid.uuid4().bytes  # each its own file
    response = await submit(world, raw_name, content)
    assert response.status_code == 201, response.text
    [file] = response.json()["files"]
    assert file["filename"] == stored_name
    # Stored under its hash, inside the store, whatever the name said.
    path = world.stack.files.path_of(file["sha256"])
    assert path.is_file() and path.resolve().is_relative_to(world.stack.files.root.resolve())

    download = await world.http.get(file["download_url"], headers=world.client)
    disposition = download.headers["content-disposition"]
    fallback, encoded = re.fullmatch(
        r"attachment; filename=\"([\x20-\x7e]*)\"; filename\*=UTF-8''([A-Za-z0-9%._~-]+)",
        disposition,
    ).groups()  # type: ignore[union-attr]
    assert unquote(encoded) == stored_name
    assert '"' not in fallback and "\\" not in fallback and "/" not in fallback
    assert download.headers["x-content-type-options"] == "nosniff"


def test_names_with_quotes_stay_inside_the_header() -> None:
    """A quote or backslash cannot end the header's filename early; the exact name travels
    percent-encoded in filename*."""
    name = sanitize_filename('C:\\fakes\\a"b\\"; filename="evil.exe.pdf')
    assert name == "_; filename=_evil.exe.pdf"
    disposition = content_disposition('say "hi"\\ ; x.pdf')
    assert disposition == (
        'attachment; filename="say _hi__ _ x.pdf"; '
        "filename*=UTF-8''say%20%22hi%22%5C%20%3B%20x.pdf"
    )
