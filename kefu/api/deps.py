"""Shared dependencies: the runtime, who is calling (API keys, sessions), rate limits and validated path ids.

``/v1`` is open while no API key exists (the demo default) and needs one as soon as any does; every
``/admin`` route needs an admin, always. Refusals: 401 without valid credentials, 403 for a valid caller
without the role, 429 with ``Retry-After`` over a rate limit.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

from fastapi import Depends, Path, Request
from starlette.requests import HTTPConnection

from kefu.access.control import AccessControl, Unauthenticated, Via
from kefu.access.principals import Principal, Role, anonymous, role_allows
from kefu.access.ratelimit import LimiterUnavailable, RateLimited
from kefu.api.errors import ApiError, error_body
from kefu.runtime import Runtime

_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
_ID = re.compile(_ID_PATTERN)
SESSION_COOKIE = "kefu_session"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The routes that run a turn (matched on the URL, whatever prefix a proxy mounts kefu under).
_TURN_PATH = re.compile(r"/v1/(?:conversations/[^/]+/messages|(chat/completions))$")
_BEARER = {"WWW-Authenticate": "Bearer"}
T = TypeVar("T")


# Dependencies are ``async def`` even when they do not await: FastAPI runs a plain ``def`` dependency in a
# thread pool, a thread hop per request on the hot path.
async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_access(connection: HTTPConnection) -> AccessControl:
    access: AccessControl = connection.app.state.access
    return access


def address_of(connection: HTTPConnection) -> str:
    return connection.client.host if connection.client else "unknown"


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, _BEARER)


def _credential(connection: HTTPConnection) -> tuple[str | None, Via]:
    """The Authorization header, else a WebSocket's ``?api_key=`` (browsers cannot set headers there),
    else the session cookie of the web console."""
    header = connection.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("malformed Authorization header: send 'Authorization: Bearer <key>'")
        return token.strip(), "header"
    if connection.scope["type"] == "websocket" and connection.query_params.get("api_key"):
        return connection.query_params["api_key"], "query"
    return connection.cookies.get(SESSION_COOKIE) or None, "cookie"


def _same_origin(connection: HTTPConnection) -> bool:
    origin = connection.headers.get("origin")
    return origin is None or urlsplit(origin).netloc.lower() == connection.headers.get("host", "").lower()


async def identify(connection: HTTPConnection) -> Principal:
    """The caller, or 401 for credentials that are not valid. A session cookie is only taken from the
    console's own origin for anything that changes state (cross-site request forgery)."""
    credential, via = _credential(connection)
    try:
        principal = await get_access(connection).authenticate(credential, via, address_of(connection))
    except Unauthenticated as exc:
        raise _unauthorized(str(exc)) from exc
    unsafe = connection.scope["type"] == "websocket" or connection.scope.get("method") not in _SAFE_METHODS
    if principal.via == "cookie" and unsafe and not _same_origin(connection):
        raise ApiError(403, "cross_origin", "a session cookie is only accepted from this site / 会话仅限本站使用")
    return principal


async def client_of(connection: HTTPConnection) -> Principal:
    """A ``/v1`` caller: while no key exists anyone may call (and bad credentials count as none)."""
    access = get_access(connection)
    try:
        principal = await identify(connection)
    except ApiError:
        if await access.keys_required():
            raise
        return anonymous(address_of(connection))
    if principal.role is None and await access.keys_required():
        raise _unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    return principal


async def limited(check: Awaitable[T]) -> T:
    """Awaits something rate limited; over the limit is a 429 with ``Retry-After`` in whole seconds."""
    try:
        return await check
    except RateLimited as exc:
        seconds = exc.retry_after
        if exc.scope == "login":
            message = f"too many sign-in attempts; retry in {seconds} s / 登录尝试过多，请 {seconds} 秒后重试"
        else:
            message = f"too many requests; retry in {seconds} s / 请求过于频繁，请 {seconds} 秒后重试"
        raise ApiError(429, "rate_limited", message, {"Retry-After": str(seconds)}) from exc
    except LimiterUnavailable as exc:
        message = "the rate limiter's store is unavailable; retry shortly / 限流服务暂不可用，请稍后重试"
        raise ApiError(503, "limiter_unavailable", message, {"Retry-After": "1"}) from exc


async def _turn_user(request: Request, chat_completions: bool) -> str | None:
    """Whose turn this is: the body's ``user_id``, else the conversation (chat completions: ``user``)."""
    try:
        body = await request.json()  # already read by FastAPI: this parses its cached bytes
    except ValueError:
        body = None
    fields: dict[str, Any] = body if isinstance(body, dict) else {}
    if chat_completions:
        user = fields.get("user")  # without one every request starts a conversation of its own
        return user if isinstance(user, str) and user else None
    user_id = fields.get("user_id")
    if isinstance(user_id, str) and user_id:
        return user_id
    return str(request.path_params.get("conversation_id") or "") or None


async def require_api_key(request: Request) -> Principal:
    """Every ``/v1`` route: the caller (a key once any exists), its request rate and, for a turn, the
    user's turn rate. A refused request is answered before anything is stored."""
    access = get_access(request)
    principal = await client_of(request)
    await limited(access.limit_request(principal))
    turn = _TURN_PATH.search(request.url.path) if request.method == "POST" else None
    if access.limits_turns and turn is not None:
        user = await _turn_user(request, chat_completions=turn.group(1) is not None)
        if user:
            await limited(access.limit_turn(principal, user))
    request.state.principal = principal
    return principal


def require_role(role: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the caller, who must have ``role`` (or a role that includes it)."""

    async def dependency(request: Request) -> Principal:
        principal = await identify(request)
        if principal.role is None:
            raise _unauthorized(f"sign in (POST /auth/login) or send an API key with the {role} role")
        if not role_allows(principal.role, role):
            raise ApiError(403, "forbidden", f"this needs the {role} role / 需要 {role} 角色")
        request.state.principal = principal
        return principal

    dependency.__name__ = f"require_{role}"
    return dependency


def actor_of(request: Request) -> str:
    """Who made an audited change: the signed-in account or the API key's id (never a client address,
    which is personal data)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None or principal.kind == "anonymous":
        return "api:anonymous"
    return f"{principal.kind}:{principal.name}"


# Every /admin router: an admin session (header or cookie) or an admin-role API key.
require_admin = require_role("admin")
SignedIn = Annotated[Principal, Depends(require_role("channel"))]


async def socket_turn_allowed(connection: HTTPConnection, principal: Principal, user: str) -> None:
    """A WebSocket turn counts against the same buckets as an HTTP one."""
    access = get_access(connection)
    await limited(access.limit_request(principal))
    await limited(access.limit_turn(principal, user))


def socket_error(exc: ApiError) -> dict[str, Any]:
    """An error frame; a rate-limited one also says when to retry (a socket has no headers)."""
    frame: dict[str, Any] = error_body(exc.code, exc.message)
    retry = (exc.headers or {}).get("Retry-After")
    if retry is not None:
        frame["error"]["retry_after"] = int(retry)
    return frame


async def conversation_id(
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
