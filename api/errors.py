"""One JSON shape for every error: `{"error": {"code": ..., "message": ..., "fields": [...]}}`.

`code` is stable for programs, `message` is for people; `fields` lists what was wrong with the
input (validation errors only). Every exception, including ones we did not foresee, ends here:
an unforeseen one is logged with its traceback and answered with a 500 that reveals nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.service import RPCError

log = logging.getLogger("api")


class FieldError(BaseModel):
    field: str
    message: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: list[FieldError] | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class ApiError(Exception):
    """Raised by route code for an answer other than success."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        fields: Sequence[FieldError] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = list(fields) if fields is not None else None
        self.headers = dict(headers or {})


def not_found(what: str) -> ApiError:
    """The same answer whether the thing is missing or belongs to someone else."""
    return ApiError(404, "not_found", f"{what} not found")


def invalid(errors: Sequence[Any], message: str = "the request is not valid") -> ApiError:
    """A 422 from pydantic-style errors (dicts with `loc` and `msg`)."""
    return ApiError(422, "invalid_request", message, fields=field_errors(errors))


def invalid_from(error: ValidationError, prefix: tuple[str | int, ...] = ("body",)) -> ApiError:
    return invalid([{**e, "loc": (*prefix, *e["loc"])} for e in error.errors(include_url=False)])


def field_errors(errors: Sequence[Any]) -> list[FieldError]:
    return [
        FieldError(
            field=".".join(str(part) for part in e.get("loc", ())) or "request",
            message=str(e.get("msg", "invalid value")),
        )
        for e in errors
    ]


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    fields: list[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(error=ErrorDetail(code=code, message=message, fields=fields))
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=True), status_code=status, headers=headers
    )


# Codes for errors raised by the framework itself (unknown route, wrong method, bad body).
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def _status_code_name(status: int) -> str:
    if status in _HTTP_CODES:
        return _HTTP_CODES[status]
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "error"


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, fields=exc.fields, headers=exc.headers)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and message == "Not Found":
        message = "no such endpoint"
    return error_response(
        exc.status_code, _status_code_name(exc.status_code), message, headers=exc.headers
    )


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = field_errors(exc.errors())
    names = ", ".join(dict.fromkeys(f.field for f in fields))
    return error_response(
        422, "invalid_request", f"the request is not valid: check {names}", fields=fields
    )


async def _temporal_unavailable(_: Request, exc: Exception) -> JSONResponse:
    # Temporal is down or refused the call for a reason no caller can fix: retry later.
    log.warning("Temporal call failed: %s", exc)
    return error_response(
        503, "temporal_unavailable", "the workflow service is unavailable; try again shortly"
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "an unexpected error occurred; it was logged")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(RPCError, _temporal_unavailable)
    app.add_exception_handler(Exception, _unexpected)


# For `responses=` in route declarations, so the OpenAPI document shows the error shape.
def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"model": ErrorBody, "description": HTTPStatus(status).phrase}
        for status in statuses
    }
