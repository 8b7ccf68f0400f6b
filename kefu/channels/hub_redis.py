"""The ``ConversationHub`` across replicas: Redis pub/sub (used when ``KEFU_REDIS_URL`` is set).

A customer's widget may be connected to one replica while the agent who answers is on another: every
event is published to Redis (channel ``kefu:hub:<topic>``) and each replica hands what it receives to its
own subscribers. One pub/sub connection per process, whatever the number of open widgets and consoles:
a topic is subscribed in Redis while at least one local subscriber listens to it, and a ``subscribe``
returns only once Redis has confirmed, so nothing published after it is missed. Events are JSON.

Pub/sub is at-most-once: a replica that loses its Redis connection misses what is published until it
reconnects (and resubscribes). Nothing is lost for good: every message is in the store, and widgets and
consoles reload the transcript when they reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from kefu.channels.hub import SUBSCRIBER_BACKLOG, InProcessHub

log = logging.getLogger(__name__)

PREFIX = "kefu:hub:"
CONFIRM_S = 5.0  # how long a subscribe waits for Redis to confirm it
RECONNECT_S = 1.0


class RedisHub:
    def __init__(self, redis: Redis, *, prefix: str = PREFIX, backlog: int = SUBSCRIBER_BACKLOG) -> None:
        self._redis = redis
        self._prefix = prefix
        self._local = InProcessHub(backlog)  # fans what Redis delivers out to this process's subscribers
        self._pubsub: PubSub | None = None
        self._reader: asyncio.Task[None] | None = None
        self._listeners: dict[str, int] = {}  # topic -> local subscribers
        self._confirmed: dict[str, asyncio.Event] = {}  # Redis channel -> subscription confirmed
        self._commands = asyncio.Lock()  # one SUBSCRIBE / UNSUBSCRIBE at a time

    async def publish(self, topic: str, event: dict[str, Any]) -> None:
        await self._redis.publish(self._prefix + topic, json.dumps(event, ensure_ascii=False, default=str))

    @contextlib.asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        # The local queue exists before Redis confirms: nothing delivered in between is dropped.
        async with self._local.subscribe(topic) as events:
            await self._join(topic)
            try:
                yield events
            finally:
                await self._leave(topic)

    def subscribers(self, topic: str) -> int:
        return self._local.subscribers(topic)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
            self._pubsub = None
        self._listeners.clear()
        self._confirmed.clear()
        await self._local.close()

    async def _join(self, topic: str) -> None:
        channel = self._prefix + topic
        async with self._commands:
            self._listeners[topic] = self._listeners.get(topic, 0) + 1
            if self._listeners[topic] == 1:
                if self._pubsub is None:
                    self._pubsub = self._redis.pubsub()
                self._confirmed[channel] = asyncio.Event()
                try:
                    await self._pubsub.subscribe(channel)
                except BaseException:
                    self._forget(topic)
                    raise
                if self._reader is None or self._reader.done():
                    self._reader = asyncio.create_task(self._read(), name="kefu-redis-hub")
            confirmed = self._confirmed.get(channel)
        if confirmed is not None:
            try:
                await asyncio.wait_for(confirmed.wait(), CONFIRM_S)
            except TimeoutError:
                await self._leave(topic)
                raise

    async def _leave(self, topic: str) -> None:
        async with self._commands:
            if self._forget(topic) and self._pubsub is not None:
                try:
                    await self._pubsub.unsubscribe(self._prefix + topic)
                except (RedisError, OSError):  # the connection is gone: so is the subscription
                    log.warning("could not unsubscribe %s", topic, exc_info=True)

    def _forget(self, topic: str) -> bool:
        """One local subscriber fewer; True when it was the last one."""
        left = self._listeners.get(topic, 0) - 1
        if left > 0:
            self._listeners[topic] = left
            return False
        self._listeners.pop(topic, None)
        self._confirmed.pop(self._prefix + topic, None)
        return True

    async def _read(self) -> None:
        while True:
            pubsub = self._pubsub
            if pubsub is None:
                return
            try:
                message = await pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError):
                log.warning("Redis hub connection lost; reconnecting", exc_info=True)
                await asyncio.sleep(RECONNECT_S)
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.connect()  # type: ignore[no-untyped-call]  # resubscribes every channel it had
                continue
            if message is not None:
                await self._dispatch(message)

    async def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        channel = message.get("channel")
        name = channel.decode() if isinstance(channel, bytes) else str(channel)
        if kind == "subscribe":
            confirmed = self._confirmed.get(name)
            if confirmed is not None:
                confirmed.set()
            return
        if kind != "message" or not name.startswith(self._prefix):
            return
        data = message.get("data")
        try:
            event = json.loads(data.decode() if isinstance(data, bytes) else str(data))
        except (ValueError, UnicodeDecodeError):
            log.warning("dropped a malformed hub event on %s", name)
            return
        if isinstance(event, dict):
            await self._local.publish(name[len(self._prefix) :], event)
