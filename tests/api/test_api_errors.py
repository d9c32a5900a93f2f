"""One error shape for everything: the framework's own errors, validation, a Temporal that does
not confirm in time, and the catch-all 500 (which only a deliberately broken route reaches)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from api.app import create_app
from tests.api.conftest import Api, error_of, shared_api
from tests.conftest import add_case


@pytest.fixture(scope="module", params=["sqlite"])
async def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Api]:
    async with shared_api(request, tmp_path_factory.mktemp("errors"), request.param) as api:
        yield api


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("GET", "/nowhere", {}, 404, "not_found"),
        ("DELETE", "/cases", {}, 405, "method_not_allowed"),
        ("GET", "/cases?status=lost", {}, 422, "invalid_request"),
        ("GET", "/cases?limit=abc", {}, 422, "invalid_request"),
        ("GET", "/tasks?status=done", {}, 422, "invalid_request"),
        ("POST", "/cases/{case}/decision", {"content": b"{not json"}, 422, "invalid_request"),
        ("POST", "/cases/{case}/decision", {"json": [1, 2]}, 422, "invalid_request"),
        ("POST", "/cases", {"content": b"--x\r\ngarbage"}, 422, "invalid_request"),
    ],
)
async def test_every_error_has_the_one_shape(
    world: Api, method: str, path: str, kwargs: dict[str, Any], status: int, code: str
) -> None:
    case_id = add_case(world.stack.store)
    headers = world.partner if "decision" in path else world.client
    if "content" in kwargs and "decision" in path:
        headers = {**headers, "Content-Type": "application/json"}
    response = await world.http.request(
        method, path.format(case=case_id), headers=headers, **kwargs
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert error_of(response)["code"] == code


async def test_validation_errors_list_the_fields(world: Api) -> None:
    response = await world.http.get(
        "/cases", params={"limit": 0, "offset": -1}, headers=world.client
    )
    error = error_of(response)
    assert error["fields"] == [
        {"field": "query.limit", "message": "Input should be greater than or equal to 1"},
        {"field": "query.offset", "message": "Input should be greater than or equal to 0"},
    ]
    assert "query.limit" in str(error["message"])


async def test_a_workflow_that_does_not_confirm_in_time_is_504(world: Api) -> None:
    """No worker polls this task queue: the request starts but nobody confirms it."""
    app = create_app(
        world.stack.store,
        world.stack.files,
        world.stack.client,
        task_queue="nobody-listens",
        temporal_timeout_seconds=0.5,
    )
    case_id = add_case(world.stack.store)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api.test"
    ) as http:
        response = await http.post(
            f"/cases/{case_id}/info-requests",
            headers=world.partner,
            json={
                "items": [{"kind": "invoice_or_contract", "reason": "Proof"}],
                "message": "Please send it.",
            },
        )
    assert response.status_code == 504
    assert error_of(response)["code"] == "not_confirmed"
    handle = world.stack.client.get_workflow_handle(f"info-request-{case_id}")
    await handle.terminate("test cleanup")


async def test_an_unforeseen_error_is_a_logged_500_in_the_shape(
    world: Api, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(world.stack.store, world.stack.files, world.stack.client)

    @app.get("/broken")
    async def broken() -> None:
        raise RuntimeError("debtor Café Sol's secret detail")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
        with caplog.at_level(logging.ERROR, logger="api"):
            response = await http.get("/broken")
    assert response.status_code == 500
    assert error_of(response) == {
        "code": "internal_error",
        "message": "an unexpected error occurred; it was logged",
    }
    assert "Café Sol" not in response.text
    assert any("unhandled error on GET /broken" in r.getMessage() for r in caplog.records)
