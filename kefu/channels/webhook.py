"""The generic signed webhook's callback: how replies written later reach the sender's system.

Inbound: ``POST /channels/webhook`` with ``{"conversation_id", "message_id", "text", "user_id"?, "locale"?}``,
signed as ``kefu.channels.signing`` describes; the answer is the turn (the same JSON as the HTTP contract).
Outbound: what is said later in a webhook conversation (an agent's reply, a turn a Kafka worker ran) is
POSTed as ``OutboundMessage.to_dict()`` to ``KEFU_WEBHOOK_CALLBACK_URL``, signed the same way with a fresh
timestamp on every attempt; ``message_id`` lets the receiver drop a delivery it already has.
"""

from __future__ import annotations

import asyncio
import json
import logging

import httpx

from kefu.channels.base import OutboundMessage
from kefu.channels.signing import signed_headers

log = logging.getLogger(__name__)

CHANNEL = "webhook"
CALLBACK_ATTEMPTS = 3
CALLBACK_BACKOFF_S = (0.2, 0.6)  # waits between attempts
RETRIED_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class CallbackFailed(Exception):
    """The callback URL did not take a delivery after every attempt."""


class WebhookCallback:
    """Implements ``Delivery`` for the ``webhook`` channel."""

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        timeout_s: float = 5.0,
        attempts: int = CALLBACK_ATTEMPTS,
        backoff_s: tuple[float, ...] = CALLBACK_BACKOFF_S,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.url = url
        self._secret = secret
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._client = client or httpx.AsyncClient(timeout=timeout_s)

    async def deliver(self, message: OutboundMessage) -> None:
        body = json.dumps(message.to_dict(), ensure_ascii=False).encode()
        problem = ""
        for attempt in range(self._attempts):
            if attempt:
                await asyncio.sleep(self._backoff_s[min(attempt - 1, len(self._backoff_s) - 1)])
            headers = {"Content-Type": "application/json; charset=utf-8", **signed_headers(self._secret, body)}
            try:
                response = await self._client.post(self.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if response.is_success:
                return
            problem = f"HTTP {response.status_code}"
            if response.status_code not in RETRIED_STATUSES:
                break  # the receiver refused this delivery; sending it again will not change that
        log.warning("webhook callback failed", extra={"conversation_id": message.conversation_id, "error": problem})
        raise CallbackFailed(f"callback to {self.url} failed: {problem}")

    async def close(self) -> None:
        await self._client.aclose()
