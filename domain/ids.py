"""Business IDs to Temporal IDs. Nothing else builds workflow IDs."""

from __future__ import annotations

WORKFLOW_ID_PREFIX = "info-request-"


def info_request_workflow_id(case_id: str) -> str:
    """One open info request per case, so the case ID (not personal data) names the workflow."""
    return f"{WORKFLOW_ID_PREFIX}{case_id}"


def reply_message_key(case_id: str, reply_id: str) -> str:
    """The chat message of a client's reply. A portal that stores the reply itself before
    signalling uses the same key, so the workflow's own write finds it instead of repeating it."""
    return f"{case_id}:reply:{reply_id}"
