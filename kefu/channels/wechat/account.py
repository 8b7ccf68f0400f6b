"""One WeChat Official Account: runs a pushed message's turn and answers it exactly once.

WeChat waits 5 seconds for an answer to each pushed message and, without one, pushes the same message again
(three retries). kefu answers within ``KEFU_WECHAT_REPLY_WINDOW_S``: with a passive XML reply when the turn
is done by then, otherwise with ``success`` (WeChat then stops retrying) and the answer follows through the
customer-service API as soon as the turn ends. Whatever WeChat sends meanwhile:

- a retry while the turn runs joins it (no second turn) and waits within its own window;
- the answer goes out once: whoever delivers it (a waiting request passively, or the API after the last
  request gave up waiting) first takes the message's *delivered* claim, shared by replicas through Redis;
- a retry after the answer went out gets ``success``; its turn, if it reaches the pipeline at all, is
  answered from the store (same message id) and appends nothing.

With Kafka (``answer_queued``) the turn runs in a ``kefu worker``: the message is published once (a
*queued* claim per message; a retry meanwhile only waits), the request waits within its window for the
answer on the conversation's hub topic, and the gateway's relay hands the same answer to ``deliver``,
which waits ``ANSWER_GRACE_S`` for a request to give it passively and otherwise sends it by the API. The
same *delivered* claim keeps it to one of the two.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from kefu.channels.base import ConversationHub, OutboundMessage, conversation_topic
from kefu.channels.once import OnceStore
from kefu.channels.wechat.api import MAX_TEXT_BYTES, WeChatApi, WeChatApiError
from kefu.channels.wechat.crypto import MessageCrypto
from kefu.channels.wechat.messages import WeChatMessage
from kefu.core.types import InboundMessage, TurnResult

log = logging.getLogger(__name__)

CHANNEL = "wechat"
CONVERSATION_PREFIX = "wx:"
DELIVERED_TTL_S = 900.0  # WeChat's retries come within 15 s; a delivered claim is kept far longer
# Kafka: how long a relayed answer waits for a request inside its window to give it passively before it is
# sent by the API (a waiting request takes it within milliseconds of the hub event).
ANSWER_GRACE_S = 0.5
# What the account says when it cannot read a message, or a turn failed after the window (zh + en: the
# customer's language is not known from an image).
TEXT_ONLY = (
    "抱歉，我目前只能阅读文字消息，请用文字描述您的问题。\n"
    "Sorry, I can only read text messages; please type your question."
)
TURN_FAILED = (
    "抱歉，系统开小差了，请稍后重新发送您的消息。\n"
    "Sorry, something went wrong on our side; please send your message again."
)
TOO_LONG = "抱歉，这条消息太长了，请分几条发送。\nSorry, that message is too long; please send it in shorter parts."


class TurnHandler(Protocol):
    async def handle(self, message: InboundMessage) -> TurnResult: ...


class InboundQueue(Protocol):
    """Where a message goes to be answered by a worker (``KafkaGateway``)."""

    async def publish(self, message: InboundMessage) -> None: ...


def conversation_id(openid: str) -> str:
    return CONVERSATION_PREFIX + openid


def _succeeded(task: asyncio.Task[TurnResult]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None


@dataclass
class _Turn:
    """A turn in progress for one WeChat message, and the requests waiting for it."""

    message: InboundMessage
    task: asyncio.Task[TurnResult]
    waiters: int = 0


class WeChatAccount:
    """Answers pushed messages; implements ``Delivery`` for the ``wechat`` channel (agents' replies go out
    by the customer-service API)."""

    def __init__(
        self,
        turns: TurnHandler,
        claims: OnceStore,
        api: WeChatApi | None,
        *,
        window_s: float,
        crypto: MessageCrypto | None = None,
        channel: str = CHANNEL,
        conversation_prefix: str = CONVERSATION_PREFIX,
        delivered_ttl_s: float = DELIVERED_TTL_S,
        answer_grace_s: float = ANSWER_GRACE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._turns = turns
        self._claims = claims
        self.api = api
        self.crypto = crypto  # safe / compatible mode: messages and passive replies are encrypted
        self.channel = channel  # "wechat", or "wecom" for a WeCom app (the same protocol)
        self._prefix = conversation_prefix
        self.window_s = window_s
        self._delivered_ttl_s = delivered_ttl_s
        self._answer_grace_s = answer_grace_s
        self._clock = clock
        self._running: dict[str, _Turn] = {}
        self._background: set[asyncio.Task[Any]] = set()

    # --- pushed messages -------------------------------------------------------------------------------

    async def answer_turn(self, wx: WeChatMessage, message: InboundMessage) -> str | None:
        """The text of the passive reply, or None to answer ``success``. Raises the turn's error when it
        failed inside the window (the router answers 5xx, so WeChat pushes the message again)."""
        deadline = self._clock() + self.window_s
        key = self._claim_key(wx)
        turn = self._running.get(key)
        if turn is None:
            turn = self._start(key, message)
        turn.waiters += 1
        passive: str | None = None
        try:
            await asyncio.wait({turn.task}, timeout=max(0.0, deadline - self._clock()))
            if not turn.task.done():
                return None  # "success" now; the answer follows by the API when the turn ends
            text = turn.task.result().reply.text  # raises the turn's error
            if not text.strip() or len(text.encode()) > MAX_TEXT_BYTES:
                return None  # nothing to say (an agent owns the conversation), or too long for one reply
            if await self._claims.claim(key, self._delivered_ttl_s):
                passive = text
            return passive
        finally:
            turn.waiters -= 1
            if passive is None and turn.waiters == 0 and _succeeded(turn.task):
                # The last request waiting saw the answer but did not give it (it was cancelled, or the
                # reply is too long for one message): the finisher may have passed already, so send it by
                # the API from here (the delivered claim keeps it to one send).
                self._spawn(self._deliver_late(key, turn), "kefu-wechat-late")

    async def answer_once(self, wx: WeChatMessage, text: str) -> str | None:
        """A fixed answer (welcome, "text only"), given once however often WeChat retries the message."""
        if await self._claims.claim(self._claim_key(wx), self._delivered_ttl_s):
            return text
        return None

    def _claim_key(self, wx: WeChatMessage) -> str:
        return f"{self.channel}:{wx.to_user}:{wx.key}"

    # --- pushed messages answered by a Kafka worker ---------------------------------------------------

    async def answer_queued(self, message: InboundMessage, queue: InboundQueue, hub: ConversationHub) -> str | None:
        """Like ``answer_turn``, with the turn run by a worker: the text of the passive reply, or None to
        answer ``success`` (the relay's answer then goes out through ``deliver``). Raises the queue's error,
        or ``TimeoutError`` when publishing outlasts the window (the router answers 5xx, so WeChat pushes the
        message again and that push publishes it)."""
        deadline = self._clock() + self.window_s
        key = self._answer_key(message.conversation_id, message.message_id)
        if await self._claims.held(key):
            return None  # answered already: a retry after the answer went out
        queued = f"{key}:queued"
        # Subscribed before publishing: the answer cannot come before the request listens for it.
        async with hub.subscribe(conversation_topic(message.conversation_id)) as events:
            if await self._claims.claim(queued, self._delivered_ttl_s):
                try:  # within the window too: past it WeChat has given up on this request and pushes again
                    async with asyncio.timeout(max(0.0, deadline - self._clock())):
                        await queue.publish(message)
                except BaseException:
                    await self._claims.release(queued)  # not published: WeChat's retry publishes it
                    raise
            # else: an earlier push of this message published it; this retry only waits for the answer
            text = await _answer_to(events, message.message_id, deadline - self._clock())
        if text is None or not text.strip() or len(text.encode()) > MAX_TEXT_BYTES:
            return None  # late (the relay sends it by the API), or too long for one passive reply
        return text if await self._claims.claim(key, self._delivered_ttl_s) else None

    def _answer_key(self, conversation_id: str, message_id: str) -> str:
        # Built the same from the pushed message and from the relayed answer (its conversation, in_reply_to).
        return f"{self.channel}:{conversation_id}:{message_id}"

    async def _deliver_queued(self, message: OutboundMessage, in_reply_to: str) -> None:
        await asyncio.sleep(self._answer_grace_s)  # a request still inside its window answers passively
        if not await self._claims.claim(self._answer_key(message.conversation_id, in_reply_to), self._delivered_ttl_s):
            return  # given passively (or by another replica)
        try:
            await self.deliver_now(message)
        except (WeChatApiError, OSError, TimeoutError) as exc:
            log.error(
                "wechat customer-service send failed",
                extra={"conversation_id": message.conversation_id, "error": str(exc)},
            )
        except Exception:  # an httpx error or similar: logged with its trace, the turn itself is stored
            log.exception("wechat customer-service send failed", extra={"conversation_id": message.conversation_id})

    def _start(self, key: str, message: InboundMessage) -> _Turn:
        task = asyncio.create_task(self._turns.handle(message), name=f"kefu-wechat-turn-{message.message_id}")
        turn = _Turn(message, task)
        self._running[key] = turn
        self._spawn(self._finish(key, turn), "kefu-wechat-finish")
        return turn

    def _spawn(self, coroutine: Any, name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.create_task(coroutine, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _finish(self, key: str, turn: _Turn) -> None:
        """Waits for the turn; when no request is waiting for it any more, sends the answer by the API."""
        try:
            await asyncio.wait({turn.task})
        finally:
            if self._running.get(key) is turn:
                del self._running[key]
        if turn.waiters == 0:
            await self._deliver_late(key, turn)
        # else: a request inside its window answers passively (or hands over to _deliver_late itself)

    async def _deliver_late(self, key: str, turn: _Turn) -> None:
        message = turn.message
        openid = message.user_id or message.conversation_id.removeprefix(self._prefix)
        if turn.task.cancelled():
            return
        error = turn.task.exception()
        if error is not None:
            log.error(
                "wechat turn failed after the reply window",
                extra={"conversation_id": message.conversation_id, "error": f"{type(error).__name__}: {error}"},
            )
            text = TURN_FAILED  # the message was not stored: ask for it again rather than stay silent
        else:
            text = turn.task.result().reply.text
            if not text.strip():
                return
            if not await self._claims.claim(key, self._delivered_ttl_s):
                return  # answered already (passively, or by another replica)
        if self.api is None:
            log.warning("answer not sent: no API credentials for this account", extra={"channel": self.channel})
            return
        try:
            await self.api.send_text(openid, text)
        except (WeChatApiError, OSError, TimeoutError) as exc:
            log.error(
                "wechat customer-service send failed",
                extra={"conversation_id": message.conversation_id, "error": str(exc)},
            )
        except Exception:  # an httpx error or similar: logged with its trace, the turn itself is stored
            log.exception("wechat customer-service send failed", extra={"conversation_id": message.conversation_id})

    # --- Delivery: what is said later (an agent's reply) ------------------------------------------------

    async def deliver(self, message: OutboundMessage) -> None:
        """Sends ``message`` by the API. A bot's answer to a pushed message (one a Kafka worker wrote, relayed
        here) goes out in the background after ``ANSWER_GRACE_S``, unless a request gave it passively."""
        if message.role == "bot" and message.in_reply_to is not None:
            if message.text.strip():
                self._spawn(self._deliver_queued(message, message.in_reply_to), "kefu-wechat-queued")
            return
        await self.deliver_now(message)

    async def deliver_now(self, message: OutboundMessage) -> None:
        if self.api is None:
            raise WeChatApiError(-1, f"{self.channel}: API credentials are needed to send later replies")
        if not message.text.strip():
            return
        openid = message.user_id or message.conversation_id.removeprefix(self._prefix)
        await self.api.send_text(openid, message.text)

    async def close(self, timeout_s: float = 10.0) -> None:
        """Lets running turns finish and their answers go out (bounded), then closes the API client."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=timeout_s)
        if self.api is not None:
            await self.api.close()


async def _answer_to(events: AsyncIterator[dict[str, Any]], message_id: str, timeout_s: float) -> str | None:
    """The text of the bot's answer to ``message_id`` among a conversation's hub events, or None when it
    does not come within ``timeout_s``."""
    try:
        async with asyncio.timeout(max(0.0, timeout_s)):
            async for event in events:
                answer = event.get("event") == "message" and event.get("role") == "bot"
                if answer and event.get("in_reply_to") == message_id:
                    return str(event.get("text") or "")
    except TimeoutError:
        return None
    return None
