"""Uploads and downloads: type checked on the content, safe names, streamed both ways.

An upload's type is decided by its bytes (magic numbers; for DOCX/XLSX, the zip's own table
of contents), never by the name or the Content-Type the client sent, and it is stored with
that type. Only the types on the allow-list are kept; macro-enabled Office files, archives,
executables, HTML and scripts are refused with 415. The client's file name is cleaned into
metadata (no path, no control characters) and never becomes a path: the file store names
files by their SHA-256.
"""

from __future__ import annotations

import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from typing import BinaryIO
from urllib.parse import quote

import filetype  # type: ignore[import-untyped]
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from starlette.datastructures import UploadFile

from api.errors import ApiError, not_found
from domain.models import FileRef
from store.files import CHUNK_BYTES, FileStore, FileTooLarge

PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
TEXT = "text/plain"
CSV = "text/csv"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# The allow-list, with the extensions a name of each type may carry (the first is added when
# the name has none of them, so a saved download opens in the right program).
EXTENSIONS: dict[str, tuple[str, ...]] = {
    PDF: (".pdf",),
    PNG: (".png",),
    JPEG: (".jpg", ".jpeg", ".jpe", ".jfif"),
    TEXT: (".txt", ".text", ".log", ".md"),
    CSV: (".csv",),
    DOCX: (".docx",),
    XLSX: (".xlsx",),
}
ALLOWED_TYPES_TEXT = "PDF, PNG, JPEG, plain text, CSV, DOCX, XLSX"

HEAD_BYTES = 8192
MAX_ZIP_ENTRIES = 10_000
MAX_NAME_CHARS = 120

# Text may hold tab, line feed, form feed and carriage return; any other C0 control byte
# (NUL above all) or DEL means the file is binary, whatever its name says.
_CONTROL_BYTES = bytes(b for b in range(32) if b not in b"\t\n\x0c\r") + b"\x7f"
_NOT_CONTROL_BYTES = bytes(b for b in range(256) if b not in _CONTROL_BYTES)
# A text file starting like this is a script or a web page, not a document.
_MARKUP_OR_SCRIPT = re.compile(
    rb"^(#!|<\?php|<\?xml|<!doctype|<html|<head|<body|<script|<svg|<iframe|<object|<embed)",
    re.IGNORECASE,
)
_WINDOWS_RESERVED = re.compile(r"^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$", re.IGNORECASE)


class UnsupportedType(ValueError):
    """The content is not on the allow-list; the message says what it looks like."""


# ---- names -------------------------------------------------------------------------------


def sanitize_filename(raw: str | None) -> str:
    """A display name that is safe anywhere: the last path segment only, no control or
    formatting characters (NUL, bidi overrides), no characters Windows forbids, no leading
    dots, at most MAX_NAME_CHARS characters with the extension kept."""
    name = unicodedata.normalize("NFC", raw or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"\s+", " ", name)  # tabs and line breaks become one space
    name = "".join(c for c in name if not unicodedata.category(c).startswith("C"))
    name = re.sub(r'[<>:"|?*]', "_", name)
    name = re.sub(r" +", " ", name).strip(" .")
    if not name:
        return "file"
    if _WINDOWS_RESERVED.match(name):
        name = f"_{name}"
    if len(name) > MAX_NAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 16:
            name = f"{stem[: MAX_NAME_CHARS - len(ext) - 1].rstrip(' .')}.{ext}"
        else:
            name = name[:MAX_NAME_CHARS].rstrip(" .")
    return name


def name_for_type(name: str, content_type: str) -> str:
    """Give the name an extension that matches its real type: a PNG named 'invoice.pdf' is
    kept as 'invoice.pdf.png', so nobody opens it as a PDF."""
    if name.lower().endswith(EXTENSIONS[content_type]):
        return name
    return name + EXTENSIONS[content_type][0]


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback and the exact name in RFC 5987 form."""
    fallback = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    fallback = re.sub(r'["\\;]', "_", fallback).strip() or "file"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


# ---- types -------------------------------------------------------------------------------


def detect_type(source: BinaryIO, filename: str, declared_type: str | None) -> str:
    """The allowed content type of a file, from its bytes; UnsupportedType otherwise.
    Leaves the file positioned at its start."""
    source.seek(0)
    head = source.read(HEAD_BYTES)
    source.seek(0)
    if not head:
        raise UnsupportedType("the file is empty")
    if head.startswith(b"PK\x03\x04"):
        return _office_type(source)
    kind = filetype.guess(head)
    mime = str(kind.mime) if kind is not None else None
    if mime in (PDF, PNG, JPEG):
        return str(mime)
    if mime == "image/apng":  # an animated PNG is a PNG
        return PNG
    if not is_text(head):
        # Some magic numbers are two printable letters ("BM" is a bitmap): only a head with
        # binary bytes is judged by its magic number.
        raise UnsupportedType(f"its content is {mime or 'binary'}")
    if _MARKUP_OR_SCRIPT.match(head.removeprefix(b"\xef\xbb\xbf").lstrip()):
        raise UnsupportedType("its content is a script or markup (HTML, XML, SVG)")
    csv_named = filename.lower().endswith(".csv") or (declared_type or "").startswith(CSV)
    return CSV if csv_named else TEXT


def is_text(chunk: bytes) -> bool:
    return not chunk.translate(None, _NOT_CONTROL_BYTES)


def _office_type(source: BinaryIO) -> str:
    """DOCX or XLSX, judged by the zip's table of contents (nothing is decompressed)."""
    try:
        with zipfile.ZipFile(source) as archive:
            entries = archive.infolist()
            if len(entries) > MAX_ZIP_ENTRIES:
                raise UnsupportedType("it is an archive with too many entries")
            names = {entry.filename for entry in entries}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as e:
        raise UnsupportedType("it is a damaged zip archive") from e
    finally:
        source.seek(0)
    if "[Content_Types].xml" not in names:
        raise UnsupportedType("it is a zip archive")
    if any(name.lower().endswith("vbaproject.bin") for name in names):
        raise UnsupportedType("it is an Office file with macros")
    if "word/document.xml" in names:
        return DOCX
    if "xl/workbook.xml" in names:
        return XLSX
    raise UnsupportedType("it is an Office file of another kind")


def _text_checked(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Pass chunks through, failing as soon as one holds a control byte: the head looked
    like text, the rest of the file must be text too."""
    for chunk in chunks:
        if not is_text(chunk):
            raise UnsupportedType("its content is binary past its first lines")
        yield chunk


# ---- storing and serving ----------------------------------------------------------------


def store_upload_sync(
    files: FileStore, source: BinaryIO, raw_name: str | None, declared_type: str | None
) -> FileRef:
    """Check one upload and stream it into the file store in chunks (never read whole)."""
    name = sanitize_filename(raw_name)
    try:
        content_type = detect_type(source, name, declared_type)
        chunks: Iterable[bytes] = iter(lambda: source.read(CHUNK_BYTES), b"")
        if content_type in (TEXT, CSV):
            chunks = _text_checked(chunks)
        return files.put(
            chunks, filename=name_for_type(name, content_type), content_type=content_type
        )
    except UnsupportedType as e:
        raise ApiError(
            415,
            "unsupported_file_type",
            f"file {name!r} is refused: {e}. Allowed types: {ALLOWED_TYPES_TEXT}",
        ) from e
    except FileTooLarge as e:
        raise too_large(name, e.limit) from e


def too_large(name: str, limit: int) -> ApiError:
    return ApiError(
        413, "file_too_large", f"file {name!r} is larger than the limit of {limit} bytes"
    )


async def store_uploads(files: FileStore, uploads: Sequence[UploadFile]) -> list[FileRef]:
    """Each upload checked and stored in turn (FastAPI's UploadFile is Starlette's)."""
    refs = []
    for upload in uploads:
        if upload.size is not None and upload.size > files.max_bytes:
            raise too_large(sanitize_filename(upload.filename), files.max_bytes)
        refs.append(
            await run_in_threadpool(
                store_upload_sync, files, upload.file, upload.filename, upload.content_type
            )
        )
    return refs


def download(files: FileStore, ref: FileRef) -> FileResponse:
    """Stream a stored file as an attachment, typed as stored (unknown types as bytes)."""
    path = files.path_of(ref.sha256)
    if not path.is_file():
        raise not_found("file")
    media_type = ref.content_type if ref.content_type in EXTENSIONS else "application/octet-stream"
    return FileResponse(
        path,
        media_type=media_type,
        headers={
            "Content-Disposition": content_disposition(sanitize_filename(ref.filename)),
            "X-Content-Type-Options": "nosniff",
            # Were it ever shown inline, it could run nothing and reach nothing.
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-store",
        },
    )
