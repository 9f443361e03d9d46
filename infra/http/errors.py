"""The gateway's one error shape, ``{"error": {"type", "message"}}``, and the status of each of our errors.

Bad input is 400 (422 for a body or parameter that does not validate, 413 over a size
limit), 401 without a valid token (with ``WWW-Authenticate``), 403 without the scope, 404
for what does not exist, 429 over a limit (with ``Retry-After``), 504 for a wait that
expired, 503 for an unreachable store. A 500 carries no exception text.
"""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from ...domain.errors import (
    Forbidden,
    InvalidInput,
    LogUnavailable,
    RateLimited,
    ResultTimeout,
    SyncBackboneError,
    TooLarge,
    Unauthenticated,
)
from ...projections.errors import NotFound

log = logging.getLogger(__name__)
STATUS = [
    (Unauthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (RateLimited, 429),
    (TooLarge, 413),
    (InvalidInput, 400),
    (ResultTimeout, 504),
    (LogUnavailable, 503),
]


class ErrorDetail(BaseModel):
    """What went wrong: the error's type and a one-line message."""

    type: str
    message: str


class ErrorBody(BaseModel):
    """Every error answer of the gateway."""

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    code: {"description": text, "model": ErrorBody}
    for code, text in [
        (400, "malformed input"),
        (401, "no valid bearer token"),
        (403, "the token lacks the scope"),
        (413, "over a size limit"),
        (422, "a body or parameter that does not validate"),
        (404, "no such document, aggregate or route"),
        (429, "over the rate or stream limit"),
        (503, "PostgreSQL or the log cannot be reached"),
        (504, "no result, or the read model did not catch up, in time"),
    ]
}


def error_body(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON error shape."""
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status, headers=headers)


def status_of(error: SyncBackboneError) -> int:
    """The HTTP status of one of our errors."""
    return next((status for cls, status in STATUS if isinstance(error, cls)), 500)


def headers_of(error: SyncBackboneError) -> dict[str, str] | None:
    """The headers a 401 or 429 must carry."""
    if isinstance(error, Unauthenticated):
        return {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    if isinstance(error, RateLimited):
        return {"Retry-After": str(max(1, math.ceil(error.retry_after_s)))}
    return None


def install_error_handlers(app: FastAPI) -> None:
    """Turn every error into the JSON error shape; no traceback or exception text reaches a caller."""

    async def ours(_: Request, e: Exception) -> JSONResponse:
        assert isinstance(e, SyncBackboneError)
        status = status_of(e)
        message = str(e) if status != 500 else "internal error; the server log has the details"
        if status == 500:
            log.error("unexpected %s", type(e).__name__, exc_info=e)
        return error_body(status, type(e).__name__, message, headers_of(e))

    async def invalid(_: Request, e: Exception) -> JSONResponse:
        assert isinstance(e, RequestValidationError)
        problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        return error_body(422, "InvalidInput", problems)

    async def http(_: Request, e: Exception) -> JSONResponse:
        assert isinstance(e, HTTPException)
        return error_body(e.status_code, "HTTPError", str(e.detail), dict(e.headers or {}))

    async def unexpected(_: Request, e: Exception) -> JSONResponse:
        log.error("unexpected %s", type(e).__name__, exc_info=e)
        return error_body(500, "InternalError", "internal error; the server log has the details")

    app.add_exception_handler(SyncBackboneError, ours)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http)
    app.add_exception_handler(Exception, unexpected)
