"""A real HTTP server standing in for api.weixin.qq.com (and WeCom's qyapi.weixin.qq.com) in tests: it
issues access tokens, takes customer-service messages, and records every call (served by
``wiring.local_server``)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

APP_ID = "wx-test-app"
APP_SECRET = "wx-test-secret"
CORP_ID = "wx5823bf96d3bd56c7"  # Tencent's sample CorpID (its sample messages are sealed for it)
CORP_SECRET = "wecom-test-secret"


@dataclass
class Sent:
    token: str
    raw: bytes
    accepted: bool

    @property
    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.raw)
        return data


@dataclass
class WeChatStandIn:
    expires_in: int = 7200
    token_calls: list[dict[str, str]] = field(default_factory=list)
    sends: list[Sent] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)  # tokens answered with errcode 40001
    expired: set[str] = field(default_factory=set)  # tokens answered with errcode 42001
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.app = FastAPI()
        self.app.add_api_route("/cgi-bin/token", self.token, methods=["GET"])
        self.app.add_api_route("/cgi-bin/message/custom/send", self.send, methods=["POST"])
        # WeCom's API (qyapi.weixin.qq.com) has the same shape under other names.
        self.app.add_api_route("/cgi-bin/gettoken", self.wecom_token, methods=["GET"])
        self.app.add_api_route("/cgi-bin/message/send", self.send, methods=["POST"])

    @property
    def current_token(self) -> str:
        return f"TOKEN-{len(self.token_calls)}"

    async def token(self, request: Request) -> JSONResponse:
        params = dict(request.query_params)
        if params.get("grant_type") != "client_credential":
            return JSONResponse({"errcode": 40002, "errmsg": "invalid grant_type"})
        if (params.get("appid"), params.get("secret")) != (APP_ID, APP_SECRET):
            return JSONResponse({"errcode": 40013, "errmsg": "invalid appid"})
        with self._lock:
            self.token_calls.append(params)
            token = self.current_token
        return JSONResponse({"access_token": token, "expires_in": self.expires_in})

    async def wecom_token(self, request: Request) -> JSONResponse:
        params = dict(request.query_params)
        if (params.get("corpid"), params.get("corpsecret")) != (CORP_ID, CORP_SECRET):
            return JSONResponse({"errcode": 40001, "errmsg": "invalid credential"})
        with self._lock:
            self.token_calls.append(params)
            token = self.current_token
        return JSONResponse({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": self.expires_in})

    async def send(self, request: Request) -> JSONResponse:
        token = request.query_params.get("access_token", "")
        raw = await request.body()
        with self._lock:
            if token in self.revoked or token != self.current_token:
                self.sends.append(Sent(token, raw, False))
                return JSONResponse({"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"})
            if token in self.expired:
                self.sends.append(Sent(token, raw, False))
                return JSONResponse({"errcode": 42001, "errmsg": "access_token expired"})
            self.sends.append(Sent(token, raw, True))
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    def delivered(self) -> list[dict[str, Any]]:
        """The customer-service messages WeChat accepted, oldest first."""
        return [s.body for s in self.sends if s.accepted]
