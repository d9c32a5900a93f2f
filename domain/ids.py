"""Business IDs to Temporal IDs. Nothing else builds workflow IDs."""

from __future__ import annotations

WORKFLOW_ID_PREFIX = "info-request-"


def info_request_workflow_id(case_id: str) -> str:
    """One open info request per case, so the case ID (not personal data) names the workflow."""
    return f"{WORKFLOW_ID_PREFIX}{case_id}"
