"""Tests for the case lifecycle (domain/lifecycle.py).

The expected table is written out here by hand from DOMAIN.md, plus the one product addition
(More Info Required -> Pending Verification, used only when an info request is withdrawn). It is
deliberately not derived from ALLOWED_NEXT, so a change there has to be made here too.
"""

from __future__ import annotations

import itertools

import pytest

from domain.lifecycle import ALLOWED_NEXT, STATUS_LABELS, TransitionError, check_transition
from domain.models import CaseStatus, CloseCode

PV = CaseStatus.PENDING_VERIFICATION
MIR = CaseStatus.MORE_INFO_REQUIRED
ACT = CaseStatus.ACTIVE
PAU = CaseStatus.PAUSED
CLO = CaseStatus.CLOSED

CASE_ID = "CASE-42"

# (current, new) -> allowed? Every one of the 25 pairs, spelled out.
EXPECTED: dict[tuple[CaseStatus, CaseStatus], bool] = {
    (PV, PV): False,
    (PV, MIR): True,
    (PV, ACT): True,
    (PV, PAU): False,
    (PV, CLO): True,
    (MIR, PV): True,  # product addition: withdrawing the info request
    (MIR, MIR): False,
    (MIR, ACT): True,
    (MIR, PAU): False,
    (MIR, CLO): True,
    (ACT, PV): False,
    (ACT, MIR): False,
    (ACT, ACT): False,
    (ACT, PAU): True,
    (ACT, CLO): True,
    (PAU, PV): False,
    (PAU, MIR): False,
    (PAU, ACT): True,
    (PAU, PAU): False,
    (PAU, CLO): True,
    (CLO, PV): False,
    (CLO, MIR): False,
    (CLO, ACT): False,
    (CLO, PAU): False,
    (CLO, CLO): False,
}

# What the refusal message lists as "allowed next", per current status (sorted labels).
EXPECTED_ALLOWED_TEXT: dict[CaseStatus, str] = {
    PV: "Active, Closed, More Info Required",
    MIR: "Active, Closed, Pending Verification",
    ACT: "Closed, Paused",
    PAU: "Active, Closed",
    CLO: "none",
}

LABELS: dict[CaseStatus, str] = {
    PV: "Pending Verification",
    MIR: "More Info Required",
    ACT: "Active",
    PAU: "Paused",
    CLO: "Closed",
}

ALL_PAIRS = list(itertools.product(CaseStatus, CaseStatus))


def _id(pair: tuple[CaseStatus, CaseStatus]) -> str:
    return f"{pair[0].value}->{pair[1].value}"


def _legal(current: CaseStatus, new: CaseStatus) -> None:
    """Make the allowed move `current -> new` the legal way (a close carries a code)."""
    code = CloseCode.PAID if new is CLO else None
    check_transition(CASE_ID, current, new, code)


# --- the table itself ------------------------------------------------------------------------


def test_expected_table_covers_every_pair() -> None:
    assert set(EXPECTED) == set(ALL_PAIRS)
    assert len(EXPECTED) == len(CaseStatus) ** 2 == 25


@pytest.mark.parametrize(("current", "new"), ALL_PAIRS, ids=[_id(p) for p in ALL_PAIRS])
def test_check_transition_matches_the_table(current: CaseStatus, new: CaseStatus) -> None:
    if EXPECTED[(current, new)]:
        _legal(current, new)  # does not raise
    else:
        with pytest.raises(TransitionError) as excinfo:
            _legal(current, new)
        message = str(excinfo.value)
        assert f"case {CASE_ID} " in message
        assert f"is {LABELS[current]} and cannot move to {LABELS[new]}" in message
        assert f"(allowed next: {EXPECTED_ALLOWED_TEXT[current]})" in message


@pytest.mark.parametrize(("current", "new"), ALL_PAIRS, ids=[_id(p) for p in ALL_PAIRS])
def test_allowed_next_agrees_with_the_table(current: CaseStatus, new: CaseStatus) -> None:
    assert (new in ALLOWED_NEXT[current]) is EXPECTED[(current, new)]


def test_withdrawal_returns_more_info_required_to_pending_verification() -> None:
    check_transition(CASE_ID, MIR, PV)
    assert PV in ALLOWED_NEXT[MIR]
    # ... but it is not a general "back to review" edge: Active and Paused cannot go back.
    for current in (ACT, PAU, CLO):
        with pytest.raises(TransitionError, match="cannot move to Pending Verification"):
            check_transition(CASE_ID, current, PV)


def test_no_status_may_follow_itself() -> None:
    for status in CaseStatus:
        with pytest.raises(TransitionError):
            check_transition(CASE_ID, status, status)


def test_status_labels() -> None:
    assert dict(STATUS_LABELS) == LABELS


# --- Closed is final ---------------------------------------------------------------------------


@pytest.mark.parametrize("new", list(CaseStatus), ids=[s.value for s in CaseStatus])
@pytest.mark.parametrize("code", [None, *CloseCode], ids=["no-code", *[c.value for c in CloseCode]])
def test_closed_is_final(new: CaseStatus, code: CloseCode | None) -> None:
    with pytest.raises(TransitionError) as excinfo:
        check_transition(CASE_ID, CLO, new, code)
    message = str(excinfo.value)
    assert f"case {CASE_ID} is Closed and cannot move to {LABELS[new]}" in message
    assert "(allowed next: none)" in message
    assert ALLOWED_NEXT[CLO] == frozenset()


# --- close codes ---------------------------------------------------------------------------------

_CLOSABLE = [s for s in CaseStatus if EXPECTED[(s, CLO)]]
_NON_CLOSE_MOVES = [(c, n) for (c, n), ok in EXPECTED.items() if ok and n is not CLO]


def test_closable_statuses() -> None:
    assert _CLOSABLE == [PV, MIR, ACT, PAU]


@pytest.mark.parametrize("current", _CLOSABLE, ids=[s.value for s in _CLOSABLE])
@pytest.mark.parametrize("code", list(CloseCode), ids=[c.value for c in CloseCode])
def test_close_with_any_code_is_allowed(current: CaseStatus, code: CloseCode) -> None:
    check_transition(CASE_ID, current, CLO, code)


@pytest.mark.parametrize("current", _CLOSABLE, ids=[s.value for s in _CLOSABLE])
def test_close_without_a_code_is_refused(current: CaseStatus) -> None:
    with pytest.raises(TransitionError) as excinfo:
        check_transition(CASE_ID, current, CLO)
    assert str(excinfo.value) == f"case {CASE_ID} cannot be closed without a close code"


def test_close_without_a_code_names_the_given_case() -> None:
    with pytest.raises(TransitionError, match=r"^case C-7:9 cannot be closed without a close code"):
        check_transition("C-7:9", ACT, CLO, None)


@pytest.mark.parametrize(
    ("current", "new"), _NON_CLOSE_MOVES, ids=[_id(p) for p in _NON_CLOSE_MOVES]
)
@pytest.mark.parametrize("code", list(CloseCode), ids=[c.value for c in CloseCode])
def test_close_code_with_a_non_closed_status_is_refused(
    current: CaseStatus, new: CaseStatus, code: CloseCode
) -> None:
    check_transition(CASE_ID, current, new)  # the move itself is fine without a code
    with pytest.raises(TransitionError) as excinfo:
        check_transition(CASE_ID, current, new, code)
    assert str(excinfo.value) == f"case {CASE_ID}: a close code goes only with Closed"


def test_non_close_moves() -> None:
    assert sorted(_NON_CLOSE_MOVES) == sorted(
        [(PV, MIR), (PV, ACT), (MIR, PV), (MIR, ACT), (ACT, PAU), (PAU, ACT)]
    )


# --- the More Info Required rule -----------------------------------------------------------------


@pytest.mark.parametrize("current", [ACT, PAU], ids=["active", "paused"])
def test_more_info_required_only_from_pending_verification(current: CaseStatus) -> None:
    with pytest.raises(TransitionError) as excinfo:
        check_transition(CASE_ID, current, MIR)
    message = str(excinfo.value)
    assert f"case {CASE_ID} is {LABELS[current]} and cannot move to More Info Required" in message
    assert "only from Pending Verification" in message
    assert "ask in the chat instead" in message


@pytest.mark.parametrize(
    ("current", "new"),
    [(c, n) for (c, n), ok in EXPECTED.items() if not ok and n is not MIR],
    ids=[_id((c, n)) for (c, n), ok in EXPECTED.items() if not ok and n is not MIR],
)
def test_other_refusals_do_not_mention_the_more_info_rule(
    current: CaseStatus, new: CaseStatus
) -> None:
    with pytest.raises(TransitionError) as excinfo:
        _legal(current, new)
    assert "only from Pending Verification" not in str(excinfo.value)


def test_more_info_required_from_pending_verification_is_allowed() -> None:
    check_transition(CASE_ID, PV, MIR)


# --- messages ---------------------------------------------------------------------------------


@pytest.mark.parametrize("case_id", ["CASE-1", "c.2:x_y-z", "0"])
def test_message_names_the_case_and_both_statuses(case_id: str) -> None:
    with pytest.raises(TransitionError) as excinfo:
        check_transition(case_id, PAU, PV)
    assert str(excinfo.value) == (
        f"case {case_id} is Paused and cannot move to Pending Verification "
        "(allowed next: Active, Closed)."
    )


def test_transition_error_is_a_value_error() -> None:
    assert issubclass(TransitionError, ValueError)
    with pytest.raises(ValueError, match="case X is Closed"):
        check_transition("X", CLO, ACT)
