"""Claims that succeed once per key within a time window.

The channel adapters use them for two things: a signed webhook request may be used only once (replay
protection), and a WeChat answer is sent only once, passively or by the customer-service API, however
often WeChat retries the message. In one process the claims live in memory; with Redis configured
they are shared by every replica (``SET NX PX``), so a retry that reaches another replica is refused too.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis

MEMORY_CAPACITY = 200_000  # claims kept in one process; the oldest go first beyond this (bounded memory)


class OnceStore(Protocol):
    async def claim(self, key: str, ttl_s: float) -> bool:
        """True the first time ``key`` is claimed within ``ttl_s`` seconds, False afterwards."""

    async def release(self, key: str) -> None:
        """Forget a claim (the work it guarded failed and may be tried again)."""

    async def held(self, key: str) -> bool:
        """True while ``key`` is claimed (without claiming it)."""

    async def close(self) -> None: ...


class MemoryOnce:
    """Claims in this process. Expired claims are dropped as new ones arrive."""

    def __init__(self, capacity: int = MEMORY_CAPACITY, clock: Callable[[], float] = time.monotonic) -> None:
        self._capacity = capacity
        self._clock = clock
        self._expiry: OrderedDict[str, float] = OrderedDict()

    async def claim(self, key: str, ttl_s: float) -> bool:
        now = self._clock()
        self._drop_expired(now)
        expires = self._expiry.get(key)
        if expires is not None and expires > now:
            return False
        self._expiry[key] = now + ttl_s
        self._expiry.move_to_end(key)
        while len(self._expiry) > self._capacity:
            self._expiry.popitem(last=False)
        return True

    async def release(self, key: str) -> None:
        self._expiry.pop(key, None)

    async def held(self, key: str) -> bool:
        expires = self._expiry.get(key)
        return expires is not None and expires > self._clock()

    def _drop_expired(self, now: float) -> None:
        # Insertion order is close to expiry order (one store serves a few fixed time-to-lives), so the
        # front holds the oldest claims; a longer-lived claim in front only delays the sweep, never a check.
        while self._expiry:
            key, expires = next(iter(self._expiry.items()))
            if expires > now:
                break
            del self._expiry[key]

    def __len__(self) -> int:
        return len(self._expiry)

    async def close(self) -> None:
        self._expiry.clear()


class RedisOnce:
    """Claims shared by every replica through Redis."""

    def __init__(self, redis: Redis, prefix: str = "kefu:once:") -> None:
        self._redis = redis
        self._prefix = prefix

    async def claim(self, key: str, ttl_s: float) -> bool:
        stored = await self._redis.set(self._prefix + key, b"1", nx=True, px=max(1, int(ttl_s * 1000)))
        return bool(stored)

    async def release(self, key: str) -> None:
        await self._redis.delete(self._prefix + key)

    async def held(self, key: str) -> bool:
        return bool(await self._redis.exists(self._prefix + key))

    async def close(self) -> None:
        await self._redis.aclose()


def build_once_store(redis_url: str) -> OnceStore:
    if redis_url:
        return RedisOnce(Redis.from_url(redis_url))
    return MemoryOnce()
