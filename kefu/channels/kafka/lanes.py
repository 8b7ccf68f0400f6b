"""One lane per conversation: its messages run one at a time in the order they were read, while different
conversations run at the same time (at most ``concurrency`` turns in all)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


class KeyedLanes:
    """Runs submitted jobs: the jobs of one key strictly in submission order, one after the other; jobs
    of different keys concurrently, never more than ``concurrency`` at once. A job is expected to handle
    its own errors; one that raises anyway is logged and its lane goes on."""

    def __init__(self, concurrency: int) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._slots = asyncio.Semaphore(concurrency)
        self._queues: dict[str, deque[tuple[Job, asyncio.Future[None]]]] = {}
        self._runners: set[asyncio.Task[None]] = set()

    def submit(self, key: str, job: Job) -> asyncio.Future[None]:
        """Queue ``job`` behind the key's earlier jobs. The future is done when the job has run (or is
        cancelled with its lane)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._queues.get(key)
        if queue is not None:
            queue.append((job, done))
            return done
        self._queues[key] = deque([(job, done)])
        runner = asyncio.create_task(self._run(key), name=f"kefu-lane-{key[:32]}")
        self._runners.add(runner)
        runner.add_done_callback(self._runners.discard)
        return done

    @property
    def queued(self) -> int:
        """Jobs submitted and not finished (running or waiting)."""
        return sum(len(queue) for queue in self._queues.values())

    async def join(self) -> None:
        """Wait until every lane is empty (jobs submitted meanwhile are waited for too)."""
        while self._runners:
            await asyncio.wait(set(self._runners))

    async def cancel(self) -> None:
        """Stop every lane: running jobs are cancelled, waiting ones never start."""
        runners = set(self._runners)
        for runner in runners:
            runner.cancel()
        if runners:
            await asyncio.wait(runners)

    async def _run(self, key: str) -> None:
        queue = self._queues[key]
        try:
            while queue:
                job, done = queue[0]
                async with self._slots:
                    try:
                        await job()
                    except Exception:  # the job's own error handling failed: keep the other messages moving
                        log.exception("a lane job failed", extra={"conversation_id": key})
                queue.popleft()
                if not done.done():
                    done.set_result(None)
        finally:
            # No await between the emptiness check above and here: a concurrent submit either saw this
            # queue (and its job ran) or finds no queue and starts a new lane.
            if self._queues.get(key) is queue:
                del self._queues[key]
            for _, done in queue:
                done.cancel()
