"""Settings of every process (worker, starter, run), from the environment.

Temporal's own connection settings are not here: they come from `temporalio.envconfig`
(TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TLS, or a TOML profile).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import time
from pathlib import Path

from pydantic import ValidationError

from domain.models import RequestPolicy

PROJECT_ROOT = Path(__file__).resolve().parent


class SettingError(ValueError):
    """An environment variable has a value the service cannot use; the message names it."""


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


def request_policy_from_env() -> RequestPolicy:
    """The timing rules new requests start with; each unset variable keeps the default.

    REPLY_BUSINESS_DAYS, REMINDER_LOCAL_TIME (HH:MM, client-local),
    FIRST_REMINDER_BUSINESS_DAYS_BEFORE_DUE, REMINDER_EVERY_BUSINESS_DAYS, MAX_REMINDERS,
    BUNDLE_QUIET_SECONDS, MAX_DEADLINE_BUSINESS_DAYS, ROUNDS_PER_RUN.
    """
    names = {
        "business_days_to_reply": "REPLY_BUSINESS_DAYS",
        "reminder_local_time": "REMINDER_LOCAL_TIME",
        "first_reminder_business_days_before_due": "FIRST_REMINDER_BUSINESS_DAYS_BEFORE_DUE",
        "reminder_every_business_days": "REMINDER_EVERY_BUSINESS_DAYS",
        "max_reminders": "MAX_REMINDERS",
        "bundle_quiet_seconds": "BUNDLE_QUIET_SECONDS",
        "max_deadline_business_days": "MAX_DEADLINE_BUSINESS_DAYS",
        "rounds_per_run": "ROUNDS_PER_RUN",
    }
    values: dict[str, str | time] = {
        field: os.environ[env] for field, env in names.items() if os.environ.get(env)
    }
    try:
        return RequestPolicy.model_validate(values)
    except ValidationError as e:
        problems = "; ".join(
            f"{names[str(err['loc'][0])]}={os.environ[names[str(err['loc'][0])]]!r}: {err['msg']}"
            for err in e.errors()
        )
        raise SettingError(f"bad request timing setting: {problems}") from e
