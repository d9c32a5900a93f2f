"""Workflows (deterministic orchestration only). Task queue: `info-requests`."""

TASK_QUEUE = "info-requests"
