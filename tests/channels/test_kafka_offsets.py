"""The worker's bookkeeping without a broker: contiguous commits per partition, and one conversation's
messages in order while different conversations run at the same time."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

import pytest

from kefu.channels.kafka.lanes import KeyedLanes
from kefu.channels.kafka.offsets import OffsetTracker, PartitionProgress


def test_commit_stops_at_the_first_unfinished_offset() -> None:
    progress = PartitionProgress()
    assert progress.to_commit() is None
    for offset in (10, 11, 12, 13):
        progress.take(offset)
    assert progress.to_commit() == 10  # nothing finished: everything from 10 on is redelivered
    progress.finish(12)
    progress.finish(13)
    assert progress.done_below() == 10
    progress.finish(10)
    assert progress.to_commit() == 11
    progress.committed = 11
    assert progress.to_commit() is None  # nothing new since the last commit
    progress.finish(11)
    assert progress.to_commit() == 14
    assert progress.in_flight == 0


def test_gaps_in_offsets_are_fine() -> None:
    # Compacted topics and transaction markers leave holes: the commit point follows the records taken.
    progress = PartitionProgress()
    for offset in (5, 9, 20):
        progress.take(offset)
    progress.finish(9)
    progress.finish(5)
    assert progress.to_commit() == 20
    progress.finish(20)
    assert progress.to_commit() == 21


def test_misuse_is_refused() -> None:
    progress = PartitionProgress()
    progress.take(3)
    with pytest.raises(ValueError):
        progress.take(2)  # records come in offset order
    with pytest.raises(ValueError):
        progress.finish(4)  # never taken
    progress.finish(3)
    with pytest.raises(ValueError):
        progress.finish(3)  # twice


def test_random_finishing_order_never_commits_past_unfinished_work() -> None:
    rng = random.Random(7)
    tracker: OffsetTracker[int] = OffsetTracker()
    offsets = {p: list(range(p * 100, p * 100 + 60)) for p in range(3)}
    for partition, taken in offsets.items():
        for offset in taken:
            tracker.take(partition, offset)
    unfinished = {p: set(v) for p, v in offsets.items()}
    order = [(p, o) for p, v in offsets.items() for o in v]
    rng.shuffle(order)
    for partition, offset in order:
        tracker.finish(partition, offset)
        unfinished[partition].discard(offset)
        commits = tracker.to_commit()
        for p, commit in commits.items():
            assert all(o >= commit for o in unfinished[p])  # nothing unfinished below the commit point
            assert commit == (min(unfinished[p]) if unfinished[p] else offsets[p][-1] + 1)
        tracker.committed(commits)
    assert tracker.to_commit() == {}
    assert tracker.in_flight() == 0
    tracker.forget(1)
    assert sorted(tracker.partitions()) == [0, 2]


async def test_lanes_keep_each_conversation_in_order_and_run_conversations_together() -> None:
    lanes = KeyedLanes(concurrency=4)
    seen: dict[str, list[int]] = {}
    running = 0
    most = 0
    rng = random.Random(3)

    def job(key: str, index: int) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            nonlocal running, most
            running += 1
            most = max(most, running)
            await asyncio.sleep(rng.uniform(0, 0.004))
            seen.setdefault(key, []).append(index)
            running -= 1

        return run

    futures = [lanes.submit(f"c{i % 10}", job(f"c{i % 10}", i)) for i in range(200)]
    assert lanes.queued == 200
    await lanes.join()
    assert all(f.done() for f in futures)
    for key, indexes in seen.items():
        assert indexes == sorted(indexes), key
    assert sum(len(v) for v in seen.values()) == 200
    assert most == 4  # ten conversations, four slots: the slots were full, never exceeded
    assert lanes.queued == 0


async def test_a_failing_job_does_not_stop_its_lane() -> None:
    lanes = KeyedLanes(concurrency=2)
    done: list[int] = []

    async def boom() -> None:
        raise RuntimeError("broken job")

    async def ok() -> None:
        done.append(1)

    lanes.submit("c", boom)
    last = lanes.submit("c", ok)
    await last
    assert done == [1]


async def test_cancel_stops_running_and_waiting_jobs() -> None:
    lanes = KeyedLanes(concurrency=1)
    started: list[str] = []

    async def slow() -> None:
        started.append("slow")
        await asyncio.sleep(30)

    async def never() -> None:
        started.append("never")

    first = lanes.submit("a", slow)
    second = lanes.submit("a", never)
    await asyncio.sleep(0.01)
    await lanes.cancel()
    assert first.cancelled() and second.cancelled()
    assert started == ["slow"]
    with pytest.raises(ValueError):
        KeyedLanes(0)
