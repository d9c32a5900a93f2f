"""The case lifecycle: which status may follow which (DOMAIN.md)."""

from __future__ import annotations

from domain.models import CaseStatus, CloseCode

ALLOWED_NEXT: dict[CaseStatus, frozenset[CaseStatus]] = {
    CaseStatus.PENDING_VERIFICATION: frozenset(
        {CaseStatus.ACTIVE, CaseStatus.MORE_INFO_REQUIRED, CaseStatus.CLOSED}
    ),
    # DOMAIN.md's table lists Active and Closed. Pending Verification is added by the product
    # for one purpose only: withdrawing an info request returns the case to where it was.
    CaseStatus.MORE_INFO_REQUIRED: frozenset(
        {CaseStatus.ACTIVE, CaseStatus.CLOSED, CaseStatus.PENDING_VERIFICATION}
    ),
    CaseStatus.ACTIVE: frozenset({CaseStatus.PAUSED, CaseStatus.CLOSED}),
    CaseStatus.PAUSED: frozenset({CaseStatus.ACTIVE, CaseStatus.CLOSED}),
    CaseStatus.CLOSED: frozenset(),
}

STATUS_LABELS: dict[CaseStatus, str] = {
    CaseStatus.PENDING_VERIFICATION: "Pending Verification",
    CaseStatus.MORE_INFO_REQUIRED: "More Info Required",
    CaseStatus.ACTIVE: "Active",
    CaseStatus.PAUSED: "Paused",
    CaseStatus.CLOSED: "Closed",
}


class TransitionError(ValueError):
    """A status change the lifecycle does not allow; the message names the case and the rule."""


def check_transition(
    case_id: str, current: CaseStatus, new: CaseStatus, close_code: CloseCode | None = None
) -> None:
    """Raise TransitionError unless `current -> new` is allowed (a close must carry a code)."""
    if new not in ALLOWED_NEXT[current]:
        allowed = ", ".join(sorted(STATUS_LABELS[s] for s in ALLOWED_NEXT[current])) or "none"
        rule = (
            " More Info Required can be set only from Pending Verification (the first review);"
            " once a case is Active, ask in the chat instead."
            if new is CaseStatus.MORE_INFO_REQUIRED
            else ""
        )
        raise TransitionError(
            f"case {case_id} is {STATUS_LABELS[current]} and cannot move to "
            f"{STATUS_LABELS[new]} (allowed next: {allowed}).{rule}"
        )
    if new is CaseStatus.CLOSED and close_code is None:
        raise TransitionError(f"case {case_id} cannot be closed without a close code")
    if new is not CaseStatus.CLOSED and close_code is not None:
        raise TransitionError(f"case {case_id}: a close code goes only with Closed")
