"""Content-addressed, size-limited file store on disk.

A file is named by the SHA-256 of its bytes, so the same upload twice is stored once and a
reference (`FileRef`) is all that travels in workflow payloads. The client's file name is kept
only as metadata; it never becomes a path.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from domain.models import FileRef

CHUNK_BYTES = 1 << 16


class FileTooLarge(ValueError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"file is larger than the limit of {limit} bytes")
        self.limit = limit


class FileMissing(LookupError):
    def __init__(self, sha256: str) -> None:
        super().__init__(f"no stored file has sha256 {sha256}; upload it before referencing it")
        self.sha256 = sha256


class FileStore:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        (root / "tmp").mkdir(parents=True, exist_ok=True)

    def path_of(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise FileMissing(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, chunks: Iterable[bytes], *, filename: str, content_type: str) -> FileRef:
        """Stream chunks to disk; refuse (and leave nothing behind) past the size limit."""
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self.root / "tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise FileTooLarge(self.max_bytes)
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            final = self.path_of(digest.hexdigest())
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp_name, final)  # atomic; identical content may land twice harmlessly
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return FileRef(
            sha256=digest.hexdigest(), filename=filename, content_type=content_type, size=size
        )

    def put_bytes(self, data: bytes, *, filename: str, content_type: str) -> FileRef:
        return self.put([data], filename=filename, content_type=content_type)

    def put_file(self, source: BinaryIO, *, filename: str, content_type: str) -> FileRef:
        return self.put(
            iter(lambda: source.read(CHUNK_BYTES), b""),
            filename=filename,
            content_type=content_type,
        )

    def exists(self, sha256: str) -> bool:
        try:
            return self.path_of(sha256).is_file()
        except FileMissing:
            return False

    def check(self, refs: Iterable[FileRef]) -> None:
        """Raise FileMissing for the first reference whose bytes are not stored."""
        for ref in refs:
            path = self.path_of(ref.sha256)
            if not path.is_file() or path.stat().st_size != ref.size:
                raise FileMissing(ref.sha256)

    def read(self, sha256: str) -> bytes:
        path = self.path_of(sha256)
        if not path.is_file():
            raise FileMissing(sha256)
        return path.read_bytes()
