"""Small secret files under the data dir (the dev payload keys, the codec server's token).

`read_or_create` makes such a file at most once, atomically, readable by its owner only: the
content is written to a private temporary file (O_EXCL, mode 0600) and then hard-linked to its
name, which fails if the name exists. So every process that races to create it (the worker,
`make run`, the CLI, a test) ends up reading the same, complete content.
"""

from __future__ import annotations

import logging
import os
import stat
import uuid
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

FILE_MODE = 0o600


def read_or_create(path: Path, generate: Callable[[], str]) -> tuple[str, bool]:
    """The file's text, creating it with `generate()` first if it is missing.

    Returns (text, created). A file readable by group or others is used but logged.
    """
    try:
        return _read(path), False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    content = generate()
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        try:
            data = content.encode()
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            # Another process won the race; its file is complete (it was linked when written).
            return _read(path), False
    finally:
        tmp.unlink(missing_ok=True)
    return content, True


def _read(path: Path) -> str:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning(
            "%s is readable by other users (mode %o); it holds a secret: chmod 600 it",
            path,
            mode,
        )
    return path.read_text()
