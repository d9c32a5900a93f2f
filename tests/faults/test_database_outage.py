"""The case store (PostgreSQL) goes away while a reply is being processed, and comes back.

A cluster of our own (harness.PgCluster, not the session's shared one) is stopped with
`pg_ctl -m immediate` once the request is open; the client's reply then reaches the run, whose
steps fail (connection refused) and are retried by Temporal with back-off (1 s, 2 s, 4 s, ...).
When PostgreSQL is started again on the same port, the reply is recorded once, the task closed
once, the partner emailed once, and the request completes on accept.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

import starter
from domain.models import CaseStatus, TaskOutcome
from tests.faults.harness import (
    PgCluster,
    Service,
    accept,
    case_rows,
    client_reply,
    decide_when_ready,
    opened,
    pg_cluster,
    reply_path_keys,
    report,
    running_service,
    soak_only,
    start_request,
    tally,
    wait_for,
)
from tests.postgres import create_database

REPLY_ID = "portal-msg-7"


@pytest.fixture
async def cluster_and_service(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[PgCluster, Service]]:
    with pg_cluster() as cluster:
        url = create_database(cluster.server_url)
        async with running_service(tmp_path_factory.mktemp("pg-outage"), url) as service:
            yield cluster, service


async def _outage_during_reply(cluster: PgCluster, service: Service, outage_seconds: float) -> None:
    worker = service.worker()
    await worker.start()
    case_id = service.new_case()
    handle, request = await start_request(service.client, case_id)
    r = request.request_id
    await opened(handle)

    cluster.stop()
    down_at = time.monotonic()
    await starter.send_client_reply(service.client, case_id, client_reply(REPLY_ID))
    await asyncio.sleep(outage_seconds)
    # The SDK logs each failed attempt of a step (a local activity) this way.
    failures = worker.logs(500_000).count("Completing activity as failed")
    cluster.start()
    back_after = time.monotonic() - down_at

    await wait_for(
        lambda: service.store.email_by_key(f"{r}:reply:{REPLY_ID}:email") is not None,
        "the reply recorded after PostgreSQL came back",
        timeout=60,
        logs=worker.logs,
    )
    recovered_after = time.monotonic() - down_at
    summary = await decide_when_ready(service.client, case_id, accept())

    result = tally(
        f"PostgreSQL down {back_after:.1f} s during the reply",
        reply_path_keys(r, case_id, [REPLY_ID]),
        case_rows(service.store, case_id),
        **{
            "failed step attempts logged": failures,
            "recorded after": f"{recovered_after:.1f} s",
        },
    )
    report(result, worker.logs())
    assert summary.final_status is CaseStatus.ACTIVE
    assert summary.task_outcome is TaskOutcome.REPLIED and summary.replies == 1
    assert worker.starts == 1 and worker.running, "the worker rides the outage out"
    assert failures >= 1, "the step must have failed while the database was away"
    worker.stop()


async def test_postgresql_stopped_while_a_reply_is_processed(
    cluster_and_service: tuple[PgCluster, Service],
) -> None:
    await _outage_during_reply(*cluster_and_service, outage_seconds=4)


@soak_only
async def test_soak_postgresql_stopped_for_a_minute(
    cluster_and_service: tuple[PgCluster, Service],
) -> None:
    """Longer than the local activity's retry back-off reaches in a few attempts (1+2+...+32)."""
    await _outage_during_reply(*cluster_and_service, outage_seconds=70)
