"""Per-conversation locks: FIFO in-process, plus a Redis lease across processes when configured."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from redis.asyncio import Redis


class LockTimeout(TimeoutError):
    """A conversation stayed locked longer than the configured timeout."""


@dataclass
class _Entry:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class InProcessLocks:
    """One ``asyncio.Lock`` per active conversation; waiters are served in arrival order (FIFO)."""

    def __init__(self, timeout_s: float = 30.0) -> None:
        self.timeout_s = timeout_s
        self._entries: dict[str, _Entry] = {}

    @asynccontextmanager
    async def hold(self, conversation_id: str) -> AsyncIterator[None]:
        entry = self._entries.setdefault(conversation_id, _Entry())
        entry.users += 1
        try:
            try:
                await asyncio.wait_for(entry.lock.acquire(), self.timeout_s)
            except TimeoutError as exc:
                raise LockTimeout(conversation_id) from exc
            try:
                yield
            finally:
                entry.lock.release()
        finally:
            entry.users -= 1
            if entry.users == 0:
                # Nobody holds or waits: forget the entry so idle conversations cost no memory.
                self._entries.pop(conversation_id, None)

    @property
    def active(self) -> int:
        return len(self._entries)


_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
"""


class RedisLocks:
    """Across processes: a Redis lease (SET NX PX, released only by its owner) behind the local FIFO lock.

    The local lock keeps arrival order among this process's turns and means at most one request per
    process polls Redis for a conversation. The lease expires if its holder dies, so no conversation is
    locked forever.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        timeout_s: float = 30.0,
        lease_s: float = 60.0,
        prefix: str = "kefu:lock:",
    ) -> None:
        self.redis = redis
        self.timeout_s = timeout_s
        self.lease_ms = int(lease_s * 1000)
        self.prefix = prefix
        self._local = InProcessLocks(timeout_s)
        self._release = redis.register_script(_RELEASE)

    @asynccontextmanager
    async def hold(self, conversation_id: str) -> AsyncIterator[None]:
        async with self._local.hold(conversation_id):
            key = self.prefix + conversation_id
            token = secrets.token_hex(16)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.timeout_s
            delay = 0.002
            while not await self.redis.set(key, token, nx=True, px=self.lease_ms):
                if loop.time() >= deadline:
                    raise LockTimeout(conversation_id)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.05)
            try:
                yield
            finally:
                await self._release(keys=[key], args=[token])
