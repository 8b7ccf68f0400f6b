"""Shared dependencies: the runtime, API-key checks and validated path ids."""

from __future__ import annotations

import hmac
import re
from typing import Annotated

from fastapi import Depends, Path, Request

from kefu.api.errors import ApiError
from kefu.runtime import Runtime

_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
_ID = re.compile(_ID_PATTERN)


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def check_key(runtime: Runtime, authorization: str | None) -> None:
    keys = runtime.settings.api_keys
    if not keys:
        return
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(
            401,
            "unauthorized",
            "missing API key: send 'Authorization: Bearer <key>'",
            {"WWW-Authenticate": "Bearer"},
        )
    if not any(hmac.compare_digest(token.encode(), key.encode()) for key in keys):
        raise ApiError(401, "unauthorized", "invalid API key", {"WWW-Authenticate": "Bearer"})


def require_api_key(request: Request, runtime: RuntimeDep) -> None:
    check_key(runtime, request.headers.get("authorization"))


def conversation_id(
    # Documented in the schema, checked here: a bad id is a 400 with its own code, not a generic 422.
    conversation_id: Annotated[
        str, Path(description="1-128 characters [A-Za-z0-9._:-]", json_schema_extra={"pattern": _ID_PATTERN})
    ],
) -> str:
    if not _ID.fullmatch(conversation_id):
        raise ApiError(400, "invalid_conversation_id", "conversation_id must be 1-128 characters of [A-Za-z0-9._:-]")
    return conversation_id


def valid_id(value: str) -> bool:
    return bool(_ID.fullmatch(value))


ConversationId = Annotated[str, Depends(conversation_id)]
