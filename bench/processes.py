"""A worker as a separate process (as tests/test_end_to_end.py runs it), for scale and profile."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from codec.keys import KeyRing, new_entry, parse_key_ring
from config import PROJECT_ROOT

# Settings the worker must not inherit from the shell running the bench.
_NOT_INHERITED = ("DATABASE_URL", "FILE_STORE_DIR", "INFO_REQUESTS_DATA_DIR", "SENDGRID_API_KEY")


def payload_keys() -> tuple[str, KeyRing]:
    """A fresh PAYLOAD_KEYS value and its key ring (the bench's client uses the same)."""
    spec = new_entry("bench")
    return spec, parse_key_ring(spec)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker_env(address: str, database_url: str, data_dir: Path, keys: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("TEMPORAL_") and key not in _NOT_INHERITED
    }
    return env | {
        "TEMPORAL_ADDRESS": address,
        "DATABASE_URL": database_url,
        "FILE_STORE_DIR": str(data_dir / "files"),
        "INFO_REQUESTS_DATA_DIR": str(data_dir),
        "PAYLOAD_KEYS": keys,
        "METRICS_BIND": f"127.0.0.1:{free_port()}",
        "PYTHONUNBUFFERED": "1",
    }


class WorkerProcess:
    """`python worker.py` (argv None) or `python -m bench.worker_process ARGV`."""

    def __init__(self, argv: list[str] | None, env: dict[str, str], log_path: Path) -> None:
        command = (
            [sys.executable, "worker.py"]
            if argv is None
            else [sys.executable, "-m", "bench.worker_process", *argv]
        )
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the worker exited: {self.log_tail()}")
            if b"worker on task queue" in self.log_path.read_bytes():
                return
            time.sleep(0.1)
        raise RuntimeError(f"the worker did not start in {timeout} s: {self.log_tail()}")

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
