"""One error shape for every HTTP error: ``{"error": {"code", "message", "details"?}}``.

FastAPI's own errors (404 of an unknown path, 405, 413 of a too-large body, 422 of a
failed validation, the 400 of an unparsable body) are rewritten into it by the handlers
`install` registers; a validation failure carries the contract's precise reason.

>>> import orjson
>>> orjson.loads(error_response(404, "not_found", "no list for user 'u1' yet").body)
{'error': {'code': 'not_found', 'message': "no list for user 'u1' yet"}}
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from streamrec.streams.contracts import reason_of

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    code: str = Field(description="stable, machine-readable: not_found, invalid_request, unauthorized, ...")
    message: str = Field(description="for people")
    details: Any = Field(None, exclude_if=lambda value: value is None)


class ErrorBody(BaseModel):
    """What every non-2xx answer carries."""

    error: ErrorDetail


class ApiError(Exception):
    """An error a route answers with: status, code, message, optional details and headers."""

    def __init__(
        self, status: int, code: str, message: str, details: Any = None, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details, self.headers = status, code, message, details, headers


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = ErrorBody(error=ErrorDetail(code=code, message=message, details=details))
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


def status_code_name(status: int) -> str:
    """``413`` -> ``request_entity_too_large`` (the standard phrase as a code).

    >>> status_code_name(404), status_code_name(599)
    ('not_found', 'http_599')
    """
    try:
        return HTTPStatus(status).name.lower()
    except ValueError:
        return f"http_{status}"


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return error_response(exc.status_code, status_code_name(exc.status_code), message, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    return error_response(422, "invalid_request", reason_of(errors, "request body", skip=1))


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "internal error; see the server log")


def install(app: FastAPI) -> None:
    """Route every error of ``app`` through `error_response`."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _internal_error)
