"""Group commit: turns that finish while a transaction is being written go together into the next one.

No timer and no added delay: under light load every turn gets its own transaction at once; under heavy
load the transactions grow, and each turn pays a fraction of the transaction's fixed cost. If a batch
fails (a duplicate message from another process, a conversation changed behind our back), its turns are
written again one per transaction, so only the faulty one fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

Item = TypeVar("Item")
Writer = Callable[[AsyncConnection, Sequence[Item]], Awaitable[None]]


class GroupCommitter(Generic[Item]):
    def __init__(self, engine: AsyncEngine, write: Writer[Item], max_batch: int = 64) -> None:
        self.engine = engine
        self.write = write
        self.max_batch = max_batch
        self._pending: list[tuple[Item, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.batches = 0  # transactions written, for tests and metrics
        self.items = 0

    async def submit(self, item: Item) -> None:
        """Write ``item`` durably; returns when its transaction has committed, raises if it failed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        while self._pending:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            try:
                await self._write([item for item, _ in batch])
            except Exception:  # one bad turn must not fail the others: write them one by one
                for item, future in batch:
                    try:
                        await self._write([item])
                    except Exception as exc:
                        if not future.done():
                            future.set_exception(exc)
                    else:
                        if not future.done():
                            future.set_result(None)
                continue
            for _, future in batch:
                if not future.done():
                    future.set_result(None)

    async def _write(self, items: list[Item]) -> None:
        async with self.engine.begin() as connection:
            await self.write(connection, items)
        self.batches += 1
        self.items += len(items)
