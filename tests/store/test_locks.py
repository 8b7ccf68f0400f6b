"""Per-conversation locks: FIFO in-process, mutual exclusion across processes through Redis."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis

from kefu.store.locks import InProcessLocks, LockTimeout, RedisLocks

pytestmark = pytest.mark.asyncio


async def _record_order(locks: InProcessLocks | RedisLocks, key: str, n: int) -> tuple[list[int], int]:
    order: list[int] = []
    inside = 0
    overlap = 0

    async def worker(i: int) -> None:
        nonlocal inside, overlap
        async with locks.hold(key):
            inside += 1
            overlap = max(overlap, inside)
            order.append(i)
            await asyncio.sleep(0.001)
            inside -= 1

    await asyncio.gather(*(worker(i) for i in range(n)))
    return order, overlap


async def test_in_process_lock_is_fifo_and_exclusive() -> None:
    locks = InProcessLocks()
    order, overlap = await _record_order(locks, "c1", 50)
    assert order == list(range(50))
    assert overlap == 1
    assert locks.active == 0  # idle conversations are forgotten


async def test_in_process_lock_times_out() -> None:
    locks = InProcessLocks(timeout_s=0.05)
    async with locks.hold("busy"):
        with pytest.raises(LockTimeout):
            async with locks.hold("busy"):
                pass
    assert locks.active == 0


async def test_other_conversations_do_not_wait() -> None:
    locks = InProcessLocks(timeout_s=0.5)
    async with locks.hold("a"), locks.hold("b"):
        pass


@pytest.mark.redis
async def test_redis_locks_exclude_across_lock_managers(redis_url: str) -> None:
    # Two managers stand for two server processes sharing one Redis.
    redis_a, redis_b = Redis.from_url(redis_url), Redis.from_url(redis_url)
    try:
        prefix = f"kefu-test-{uuid.uuid4().hex}:"
        managers = [RedisLocks(redis_a, prefix=prefix), RedisLocks(redis_b, prefix=prefix)]
        inside = 0
        overlap = 0
        done = 0

        async def worker(i: int) -> None:
            nonlocal inside, overlap, done
            async with managers[i % 2].hold("shared"):
                inside += 1
                overlap = max(overlap, inside)
                await asyncio.sleep(0.002)
                inside -= 1
                done += 1

        await asyncio.gather(*(worker(i) for i in range(30)))
        assert done == 30 and overlap == 1
        assert await redis_a.exists(prefix + "shared") == 0  # released
    finally:
        await redis_a.aclose()
        await redis_b.aclose()


@pytest.mark.redis
async def test_redis_lock_times_out_and_expired_lease_frees_it(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        prefix = f"kefu-test-{uuid.uuid4().hex}:"
        holder = RedisLocks(redis, prefix=prefix, lease_s=0.2)
        waiter = RedisLocks(redis, prefix=prefix, timeout_s=0.05)
        await redis.set(prefix + "x", "someone-else", px=200)  # a crashed process's lease
        with pytest.raises(LockTimeout):
            async with waiter.hold("x"):
                pass
        async with holder.hold("x"):  # acquired once the lease expires
            assert await redis.get(prefix + "x") not in (None, b"someone-else")
    finally:
        await redis.aclose()
