"""What every route works with: the stores, the Temporal client and the limits."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from temporalio.client import Client

from store.cases import CaseStore
from store.files import FileStore

# At most this many files in one submission or reply (the domain's FileRef lists allow 20).
MAX_FILES_PER_REQUEST = 20


@dataclass(frozen=True)
class ApiContext:
    store: CaseStore
    files: FileStore
    temporal: Client
    task_queue: str
    # How long a call waits for the workflow to confirm an action before answering 504.
    temporal_timeout_seconds: float

    @property
    def max_request_bytes(self) -> int:
        """A whole request: every file at its limit, plus room for the form fields."""
        return self.files.max_bytes * MAX_FILES_PER_REQUEST + 1024 * 1024


def get_context(request: Request) -> ApiContext:
    ctx = request.app.state.context
    assert isinstance(ctx, ApiContext)
    return ctx
