"""Recorded histories replay against today's workflow code: a change that would break runs
already in flight fails here (see tests/histories/record.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from domain.models import InfoRequestInput
from workflows.info_request import InfoRequestWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def test_there_are_histories_to_replay() -> None:
    assert len(HISTORIES) >= 4, HISTORIES


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=[InfoRequestWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


@workflow.defn(name="InfoRequestWorkflow", sandboxed=False)
class ChangedInfoRequestWorkflow:
    """Same name, other steps: what a careless change to the real workflow looks like."""

    @workflow.run
    async def run(self, request: InfoRequestInput) -> None:
        await workflow.sleep(1)


async def test_a_changed_workflow_fails_replay() -> None:
    """The check itself can fail."""
    path = next(p for p in HISTORIES if p.stem == "reply_then_accept")
    replayer = Replayer(
        workflows=[ChangedInfoRequestWorkflow], data_converter=pydantic_data_converter
    )
    result = await replayer.replay_workflow(
        WorkflowHistory.from_json("changed", path.read_text()), raise_on_replay_failure=False
    )
    assert result.replay_failure is not None
