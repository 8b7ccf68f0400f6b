"""WeChat's server API, the two calls kefu needs: an access token, and a customer-service text message
(WeCom's API has the same shape: ``WeChatApi.wecom``).

``GET {base}/cgi-bin/token?grant_type=client_credential&appid=&secret=`` answers
``{"access_token", "expires_in"}``. The token is cached and fetched again shortly before it expires (every
fetch invalidates the previous token, so callers share one fetch), and at once when WeChat says it is no
longer valid (errcode 40001, 40014, 42001), after which the call is made once more.
``POST {base}/cgi-bin/message/custom/send?access_token=`` with ``{"touser", "msgtype": "text", "text":
{"content"}}`` sends text to a customer who wrote within the last 48 hours.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from typing import Any

import httpx

# errcodes that mean "this access token is not (or no longer) valid": refetch and call again
TOKEN_ERRORS = frozenset({40001, 40014, 42001})
REFRESH_MARGIN_S = 300.0  # fetch a new token this long before the old one expires (at most a tenth of its life)
# A text message is at most 2048 bytes; longer replies go out as several messages, split between sentences.
MAX_TEXT_BYTES = 2000
_SENTENCE = re.compile(r"[^。！？!?\n]*(?:[。！？!?\n]+|$)")


class WeChatApiError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"WeChat API error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


def split_text(text: str, max_bytes: int = MAX_TEXT_BYTES) -> list[str]:
    """``text`` in pieces of at most ``max_bytes`` UTF-8 bytes, cut after sentences where possible."""
    pieces: list[str] = []
    current = ""
    for sentence in (m.group(0) for m in _SENTENCE.finditer(text) if m.group(0)):
        while len(sentence.encode()) > max_bytes:  # one sentence longer than a message: cut by characters
            cut = len(sentence.encode()[:max_bytes].decode(errors="ignore"))
            if current:
                pieces.append(current)
                current = ""
            pieces.append(sentence[:cut])
            sentence = sentence[cut:]
        if len((current + sentence).encode()) > max_bytes:
            pieces.append(current)
            current = ""
        current += sentence
    if current.strip():
        pieces.append(current)
    return [p.strip() for p in pieces if p.strip()]


class WeChatApi:
    """An Official Account's API by default; ``WeChatApi.wecom`` makes the same client for a WeCom app
    (token from ``/cgi-bin/gettoken?corpid=&corpsecret=``, text through ``/cgi-bin/message/send`` with the
    app's ``agentid``)."""

    def __init__(
        self,
        base_url: str,
        app_id: str,
        app_secret: str,
        *,
        timeout_s: float = 5.0,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        token_path: str = "/cgi-bin/token",
        send_path: str = "/cgi-bin/message/custom/send",
        send_extra: dict[str, Any] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token_path = token_path
        self._token_params = (
            {"grant_type": "client_credential", "appid": app_id, "secret": app_secret}
            if token_path == "/cgi-bin/token"
            else {"corpid": app_id, "corpsecret": app_secret}
        )
        self._send_path = send_path
        self._send_extra = send_extra or {}
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self._clock = clock
        self._token: str | None = None
        self._fresh_until = 0.0
        self._fetching = asyncio.Lock()

    async def access_token(self) -> str:
        if self._token is not None and self._clock() < self._fresh_until:
            return self._token
        async with self._fetching:  # one fetch for every caller waiting on an expired token
            if self._token is not None and self._clock() < self._fresh_until:
                return self._token
            data = self._json(await self._client.get(f"{self.base_url}{self._token_path}", params=self._token_params))
            token, expires_in = data.get("access_token"), data.get("expires_in")
            if not isinstance(token, str) or not token or not isinstance(expires_in, int | float):
                raise WeChatApiError(-1, f"the token answer has no access_token/expires_in: {data}")
            self._token = token
            self._fresh_until = self._clock() + expires_in - min(REFRESH_MARGIN_S, expires_in / 10)
            return token

    @classmethod
    def wecom(cls, base_url: str, corp_id: str, secret: str, agent_id: int, **options: Any) -> WeChatApi:
        return cls(
            base_url,
            corp_id,
            secret,
            token_path="/cgi-bin/gettoken",
            send_path="/cgi-bin/message/send",
            send_extra={"agentid": agent_id},
            **options,
        )

    def _invalidate(self, token: str) -> None:
        if self._token == token:  # a caller that saw an older token must not throw away a newer one
            self._token = None

    async def send_text(self, openid: str, text: str) -> int:
        """Sends ``text`` to ``openid`` as customer-service messages; the number of messages sent."""
        pieces = split_text(text)
        for piece in pieces:
            payload = {"touser": openid, "msgtype": "text", **self._send_extra, "text": {"content": piece}}
            await self._post(self._send_path, payload)
        return len(pieces)

    async def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        # Sent as UTF-8 (not \u escapes): WeChat shows escaped text to the customer as it is.
        body = json.dumps(payload, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json; charset=utf-8"}
        for attempt in range(2):
            token = await self.access_token()
            response = await self._client.post(
                f"{self.base_url}{path}", params={"access_token": token}, content=body, headers=headers
            )
            try:
                return self._json(response)
            except WeChatApiError as exc:
                if exc.errcode not in TOKEN_ERRORS or attempt:
                    raise
                self._invalidate(token)
        raise AssertionError("unreachable")  # the loop returns or raises

    @staticmethod
    def _json(response: httpx.Response) -> dict[str, Any]:
        if not response.is_success:
            raise WeChatApiError(-1, f"HTTP {response.status_code}")
        try:
            data = response.json()
        except ValueError as exc:
            raise WeChatApiError(-1, "the answer is not JSON") from exc
        if not isinstance(data, dict):
            raise WeChatApiError(-1, "the answer is not a JSON object")
        errcode = data.get("errcode", 0)
        if errcode:
            raise WeChatApiError(int(errcode), str(data.get("errmsg", "")))
        return data

    async def close(self) -> None:
        await self._client.aclose()
