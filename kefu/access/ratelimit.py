"""Token buckets: a bucket holds up to ``burst`` tokens and refills at ``per_s`` tokens a second; a request
takes one or is refused with the time until one is there. Two stores behind one protocol: in this process,
or in Redis (one atomic Lua script per take, keys expire once a bucket would be full again), which replicas
share."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError


@dataclass(frozen=True)
class Rule:
    per_s: float  # refill rate, tokens a second (> 0)
    burst: int  # capacity: how many may come at once after a quiet spell (>= 1)

    def __post_init__(self) -> None:
        if self.per_s <= 0 or self.burst < 1:
            raise ValueError("a rate-limit rule needs per_s > 0 and burst >= 1")

    @property
    def refill_s(self) -> float:
        """Time for an empty bucket to fill up again; after it, a bucket is as good as new."""
        return self.burst / self.per_s


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after_s: float  # 0 when allowed
    remaining: float

    @property
    def retry_after_header(self) -> str:
        """Whole seconds, at least 1: a client that waits this long gets its token."""
        return str(max(1, math.ceil(self.retry_after_s)))


class RateLimited(Exception):
    def __init__(self, retry_after_s: float, scope: str) -> None:
        super().__init__(f"rate limited ({scope}); retry in {retry_after_s:.1f} s")
        self.retry_after_s = retry_after_s
        self.scope = scope  # "key", "user" or "login"

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil(self.retry_after_s))


class LimiterUnavailable(Exception):
    """The shared store (Redis) did not answer."""


class Buckets(Protocol):
    async def take(self, key: str, rule: Rule) -> Verdict: ...

    async def close(self) -> None: ...


def take_token(tokens: float, at: float, now: float, rule: Rule) -> tuple[float, float, Verdict]:
    """One take from a bucket holding ``tokens`` as of ``at``: (tokens, at, verdict) afterwards. A clock
    that went backwards (another host's) refills nothing and never moves ``at`` back."""
    if now > at:
        tokens = min(float(rule.burst), tokens + (now - at) * rule.per_s)
        at = now
    if tokens >= 1.0:
        return tokens - 1.0, at, Verdict(True, 0.0, tokens - 1.0)
    return tokens, at, Verdict(False, (1.0 - tokens) / rule.per_s + max(0.0, at - now), tokens)


class MemoryBuckets:
    """Buckets in this process. At most ``max_keys`` are kept: the least recently used go first (a bucket
    forgotten early lets its owner start full again, which errs on the side of serving)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    async def take(self, key: str, rule: Rule) -> Verdict:
        now = self._clock()
        tokens, at = self._buckets.pop(key, (float(rule.burst), now))
        tokens, at, verdict = take_token(tokens, at, now, rule)
        self._buckets[key] = (tokens, at)  # popped and put back: the most recently used come last
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return verdict

    def __len__(self) -> int:
        return len(self._buckets)

    async def close(self) -> None:
        self._buckets.clear()


# The same arithmetic as take_token, run atomically where the bucket lives.
_TAKE = """
local per_s = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
if now > at then
  tokens = math.min(burst, tokens + (now - at) * per_s)
  at = now
end
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = (1 - tokens) / per_s + math.max(0, at - now)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(at))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / per_s * 1000) + 1000)
return {allowed, tostring(wait), tostring(tokens)}
"""


class RedisBuckets:
    """Buckets in Redis under ``prefix``. The time comes from this host's clock (``time.time``); hosts with
    clocks apart refill a little late, never early."""

    def __init__(self, redis: Redis, prefix: str = "kefu:rl:", clock: Callable[[], float] = time.time) -> None:
        self._redis = redis
        self._prefix = prefix
        self._clock = clock
        self._script = redis.register_script(_TAKE)

    async def take(self, key: str, rule: Rule) -> Verdict:
        now = round(self._clock(), 3)
        try:
            allowed, wait, tokens = await self._script(keys=[self._prefix + key], args=[rule.per_s, rule.burst, now])
        except RedisError as exc:
            raise LimiterUnavailable(f"rate limiter store: {exc}") from exc
        return Verdict(bool(int(allowed)), float(wait), float(tokens))

    async def close(self) -> None:
        await self._redis.aclose()
