"""``/auth``: agents and admins sign in with a password and get a session token (also set as an HttpOnly,
SameSite=Strict cookie for the web console); ``/auth/me`` says who a credential belongs to."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from kefu.access.control import InvalidCredentials
from kefu.access.passwords import MAX_LENGTH
from kefu.access.principals import Role
from kefu.api.deps import SESSION_COOKIE, SignedIn, address_of, get_access, limited
from kefu.api.errors import ApiError
from kefu.api.schemas import ERRORS

router = APIRouter(prefix="/auth", tags=["auth"])
log = logging.getLogger(__name__)


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=MAX_LENGTH)


class SessionOut(BaseModel):
    token: str = Field(description="Send as 'Authorization: Bearer <token>' (the cookie carries it too).")
    expires_at: datetime
    role: Role


class WhoAmI(BaseModel):
    kind: Literal["key", "user"]
    name: str = Field(description="The username, the API key's id, or 'env' for a KEFU_API_KEYS key.")
    role: Role
    expires_at: datetime | None = None


@router.post("/login", response_model=SessionOut, responses=ERRORS)
async def login(body: LoginIn, request: Request, response: Response) -> SessionOut:
    """Sign in. Wrong username and wrong password get the same 401; tries are limited per username and address."""
    access = get_access(request)
    try:
        session = await limited(access.login(body.username, body.password, address_of(request)))
    except InvalidCredentials as exc:
        log.warning("sign-in refused")  # not the name typed: it is sometimes the password
        raise ApiError(401, "invalid_credentials", "wrong username or password / 用户名或密码错误") from exc
    log.info("signed in", extra={"account": session.username, "role": session.role})
    response.set_cookie(
        SESSION_COOKIE,
        session.token,
        max_age=access.tokens.ttl_s,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return SessionOut(token=session.token, expires_at=session.expires_at, role=session.role)


@router.post("/logout", status_code=204)
async def logout(response: Response) -> None:
    """Forget the session cookie. (A token copied elsewhere stays valid until it expires, or until the
    account's password is changed or the account disabled.)"""
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")


@router.get("/me", response_model=WhoAmI, responses=ERRORS)
async def me(principal: SignedIn) -> WhoAmI:
    """Who the credential sent (header or cookie) belongs to."""
    assert principal.role is not None and principal.kind != "anonymous"
    return WhoAmI(kind=principal.kind, name=principal.name, role=principal.role, expires_at=principal.expires_at)
