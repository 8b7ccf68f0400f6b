"""Token buckets: the arithmetic with a fake clock, the same answers from the in-process store and from
Redis (db 15, a key prefix of this run's own), and the bounds on what each keeps."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from kefu.access.ratelimit import (
    Buckets,
    LimiterUnavailable,
    MemoryBuckets,
    RedisBuckets,
    Rule,
    Verdict,
    take_token,
)


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_rules_refuse_nonsense() -> None:
    for per_s, burst in ((0.0, 5), (-1.0, 5), (1.0, 0)):
        with pytest.raises(ValueError):
            Rule(per_s, burst)
    assert Rule(0.5, 10).refill_s == 20.0


def test_retry_after_is_whole_seconds_and_at_least_one() -> None:
    assert Verdict(False, 0.01, 0.0).retry_after_header == "1"
    assert Verdict(False, 1.0, 0.0).retry_after_header == "1"
    assert Verdict(False, 1.2, 0.0).retry_after_header == "2"
    assert Verdict(False, 59.9, 0.0).retry_after_header == "60"


def test_take_token_refills_by_elapsed_time_up_to_the_burst() -> None:
    rule = Rule(per_s=2.0, burst=4)
    tokens, at, verdict = take_token(0.0, 100.0, 100.25, rule)  # half a token: refused
    assert not verdict.allowed and verdict.retry_after_s == pytest.approx(0.25)
    tokens, at, verdict = take_token(tokens, at, 100.5, rule)
    assert verdict.allowed and tokens == pytest.approx(0.0)
    tokens, at, verdict = take_token(tokens, at, 1000.0, rule)  # a long pause refills only to the burst
    assert verdict.allowed and tokens == pytest.approx(3.0)


def test_a_clock_that_went_back_refills_nothing_and_keeps_the_latest_time() -> None:
    rule = Rule(per_s=1.0, burst=2)
    tokens, at, verdict = take_token(0.5, 200.0, 198.0, rule)  # another host, two seconds behind
    assert not verdict.allowed and at == 200.0 and tokens == 0.5
    assert verdict.retry_after_s == pytest.approx(0.5 + 2.0)


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Buckets, Clock]]:
    clock = Clock()
    if request.param == "memory":
        yield MemoryBuckets(clock=clock), clock
        return
    url = request.getfixturevalue("redis_url")
    redis = Redis.from_url(url)
    prefix = f"kefu-test:{uuid.uuid4().hex}:"
    buckets = RedisBuckets(redis, prefix=prefix, clock=clock)
    try:
        yield buckets, clock
    finally:
        keys = [k async for k in redis.scan_iter(match=prefix + "*")]
        if keys:
            await redis.delete(*keys)
        await buckets.close()


async def test_burst_then_refusal_then_refill(store: tuple[Buckets, Clock]) -> None:
    buckets, clock = store
    rule = Rule(per_s=0.5, burst=3)  # 30 a minute, 3 at once
    taken = [await buckets.take("user:a", rule) for _ in range(4)]
    assert [v.allowed for v in taken] == [True, True, True, False]
    assert [round(v.remaining, 6) for v in taken[:3]] == [2.0, 1.0, 0.0]
    assert taken[3].retry_after_s == pytest.approx(2.0) and taken[3].retry_after_header == "2"
    clock.now += 1.0  # half a token back: still refused, one more second to wait
    later = await buckets.take("user:a", rule)
    assert not later.allowed and later.retry_after_s == pytest.approx(1.0)
    clock.now += 1.0
    assert (await buckets.take("user:a", rule)).allowed
    assert (await buckets.take("user:b", rule)).allowed  # buckets are per key
    clock.now += 3600
    refilled = [await buckets.take("user:a", rule) for _ in range(4)]
    assert [v.allowed for v in refilled] == [True, True, True, False]  # never more than the burst


async def test_a_steady_rate_is_served_and_a_faster_one_is_cut_to_the_rate(store: tuple[Buckets, Clock]) -> None:
    buckets, clock = store
    rule = Rule(per_s=10.0, burst=5)
    served = 0
    for _ in range(200):  # 20 requests a second for 10 seconds against 10 a second
        served += (await buckets.take("key:k", rule)).allowed
        clock.now += 0.05
    assert 100 <= served <= 106  # 10 s x 10/s, plus the burst at the start at most


async def test_redis_keys_expire_once_the_bucket_would_be_full(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    prefix = f"kefu-test:{uuid.uuid4().hex}:"
    buckets = RedisBuckets(redis, prefix=prefix)
    try:
        await buckets.take("user:x", Rule(per_s=1.0, burst=30))
        ttl_ms = await redis.pttl(prefix + "user:x")
        assert 30_000 < ttl_ms <= 31_000
    finally:
        await redis.delete(prefix + "user:x")
        await buckets.close()


async def test_replicas_share_redis_buckets(redis_url: str) -> None:
    prefix = f"kefu-test:{uuid.uuid4().hex}:"
    first, second = (RedisBuckets(Redis.from_url(redis_url), prefix=prefix) for _ in range(2))
    rule = Rule(per_s=0.01, burst=4)
    try:
        verdicts = [await (first if i % 2 else second).take("key:shared", rule) for i in range(6)]
        assert [v.allowed for v in verdicts] == [True, True, True, True, False, False]
    finally:
        await first._redis.delete(prefix + "key:shared")
        await first.close()
        await second.close()


async def test_an_unreachable_redis_is_reported_not_ignored() -> None:
    buckets = RedisBuckets(Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5))
    try:
        with pytest.raises(LimiterUnavailable):
            await buckets.take("key:k", Rule(1.0, 1))
    finally:
        await buckets.close()


async def test_memory_buckets_keep_at_most_max_keys_least_recent_first() -> None:
    clock = Clock()
    buckets = MemoryBuckets(clock=clock, max_keys=3)
    rule = Rule(per_s=0.001, burst=1)
    for name in ("a", "b", "c"):
        assert (await buckets.take(name, rule)).allowed
    assert not (await buckets.take("a", rule)).allowed  # "a" is now the most recent
    assert (await buckets.take("d", rule)).allowed  # evicts "b", the least recently used
    assert len(buckets) == 3
    assert (await buckets.take("b", rule)).allowed  # forgotten: starts full (errs on serving)
    assert not (await buckets.take("a", rule)).allowed  # still remembered
