"""One rendering of every error: domain errors, FastAPI's validation, HTTP errors, real bugs.

Everything leaves the API as ``{"error": {"code", "message", "details": [{"loc", "msg"}]}}``.
A 500 is rendered only by the catch-all handler, which logs the traceback: it exists for bugs,
never for bad input.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from trajops.errors import TrajopsError
from trajops.serving.responses import error_response

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
}
"""Stable ``code`` of plain HTTP errors raised by the framework (routing, media types)."""


def _loc(loc: Any) -> list[str | int]:
    return [p if isinstance(p, int) else str(p) for p in loc]


_SERVER_DETAIL = re.compile(
    r"[a-z][a-z0-9+.\-]*://[^\s'\",;)]*"  # URIs: database, registry, artifact store
    r"|(?<![\w.])/(?:[^\s'\",;:)/]+/)+[^\s'\",;:)]*"  # absolute paths of two parts or more
)


def scrub(message: str) -> str:
    """``message`` without server paths and URIs (logged in full, never sent)."""
    return _SERVER_DETAIL.sub("<server>", message)


def trajops_error_response(exc: TrajopsError, *, method: str, path: str) -> Response:
    """The response of a domain error; a server-side one is logged in full and sent without
    server paths or URIs."""
    message = exc.message
    retry_after = getattr(exc, "retry_after_s", None)  # rate limited, or a model's queue full
    if exc.status_code >= 500:
        if retry_after is None:  # back-pressure is expected, counted and not logged per request
            log.warning("%s %s -> %s: %s", method, path, exc.code, exc.message)
        message = scrub(message)
    headers: dict[str, str] = {}
    if retry_after is not None:
        headers["retry-after"] = str(max(1, math.ceil(retry_after)))
    return error_response(
        exc.status_code, code=exc.code, message=message, details=exc.details, headers=headers
    )


async def _trajops_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TrajopsError)
    return trajops_error_response(exc, method=request.method, path=request.url.path)


async def _request_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = [{"loc": _loc(e.get("loc", ())), "msg": str(e.get("msg", ""))} for e in exc.errors()]
    malformed = any(e.get("type") == "json_invalid" for e in exc.errors())
    return error_response(
        422,
        code="malformed_json" if malformed else "validation_error",
        message="request body is not valid JSON" if malformed else "invalid request",
        details=details[:50],
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    if exc.status_code == 404:
        message = f"no route {request.method} {request.url.path}"
    elif exc.status_code == 405:
        message = f"method {request.method} not allowed on {request.url.path}"
    return error_response(exc.status_code, code=code, message=message, headers=exc.headers)


async def _unhandled(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, code="internal_error", message="internal server error")


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that render every error in the one shape."""
    app.add_exception_handler(TrajopsError, _trajops_error)
    app.add_exception_handler(RequestValidationError, _request_validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unhandled)
