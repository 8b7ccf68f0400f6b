"""Every refusal is ``{"error": {"code", "message"}}`` with a precise 4xx; nothing else leaks out."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from kefu.core.types import MessageIdConflict, StaleConversation
from kefu.store.locks import LockTimeout

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, request: Request | None = None
) -> JSONResponse:
    runtime = getattr(request.app.state, "runtime", None) if request is not None else None
    if runtime is not None:
        runtime.metrics.http_errors.labels(code).inc()
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def describe_validation(exc: RequestValidationError) -> tuple[int, str, str]:
    """Turn pydantic's error list into one status, code and readable message naming the field."""
    errors = exc.errors()
    first = errors[0] if errors else {}
    kind = str(first.get("type", ""))
    if kind == "json_invalid":
        ctx = first.get("ctx") or {}
        return 400, "invalid_json", f"request body is not valid JSON: {ctx.get('error', 'parse error')}"
    if kind in ("model_attributes_type", "dict_type") and tuple(first.get("loc", ())) == ("body",):
        return 422, "invalid_request", "request body must be a JSON object"
    if kind == "missing" and tuple(first.get("loc", ())) == ("body",):
        return 422, "invalid_request", "request body is required"
    parts = []
    for error in errors[:5]:
        field = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{field}: {error.get('msg')}")
    return 422, "invalid_request", "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.headers, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, code, message = describe_validation(exc)
        return error_response(status, code, message, request=request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and "parsing the body" in str(exc.detail):
            # FastAPI could not decode the body at all (for example it is not UTF-8).
            message = "request body could not be parsed: it must be UTF-8 JSON"
            return error_response(400, "invalid_json", message, request=request)
        code = _HTTP_CODES.get(exc.status_code, "bad_request" if exc.status_code == 400 else "http_error")
        return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None), request)

    @app.exception_handler(MessageIdConflict)
    async def _conflict(request: Request, exc: MessageIdConflict) -> JSONResponse:
        return error_response(409, "message_id_conflict", str(exc), request=request)

    @app.exception_handler(StaleConversation)
    async def _contended(request: Request, exc: StaleConversation) -> JSONResponse:
        message = "the conversation kept changing under concurrent writers; retry (run Redis with several replicas)"
        return error_response(503, "conversation_busy", message, {"Retry-After": "1"}, request)

    @app.exception_handler(LockTimeout)
    async def _busy(request: Request, exc: LockTimeout) -> JSONResponse:
        message = f"conversation {exc} is busy; retry shortly"
        return error_response(503, "conversation_busy", message, {"Retry-After": "1"}, request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"error": type(exc).__name__})
        return error_response(500, "internal_error", "internal error; the request was not stored", request=request)
