"""Settings of every process (worker, starter, run), from the environment.

Temporal's own connection settings are not here: they come from `temporalio.envconfig`
(TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TLS, or a TOML profile).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    file_store_dir: Path
    max_file_bytes: int
    sendgrid_api_key: str | None
    sendgrid_host: str
    mail_from: str
    mail_from_name: str

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = Path(os.environ.get("INFO_REQUESTS_DATA_DIR", PROJECT_ROOT / ".data"))
        return cls(
            data_dir=data_dir,
            database_url=os.environ.get("DATABASE_URL", f"sqlite:///{data_dir / 'cases.db'}"),
            file_store_dir=Path(os.environ.get("FILE_STORE_DIR", data_dir / "files")),
            max_file_bytes=int(os.environ.get("MAX_FILE_BYTES", str(25 * 1024 * 1024))),
            sendgrid_api_key=os.environ.get("SENDGRID_API_KEY") or None,
            sendgrid_host=os.environ.get("SENDGRID_HOST", "https://api.sendgrid.com"),
            mail_from=os.environ.get("MAIL_FROM", "no-reply@info-requests.example"),
            mail_from_name=os.environ.get("MAIL_FROM_NAME", "Case desk"),
        )
