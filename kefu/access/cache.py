"""A small time-bounded cache for look-ups every request would otherwise make (API keys, accounts)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

V = TypeVar("V")


class TtlCache(Generic[V]):
    """Remembers each answer (``None`` too: an unknown key stays unknown without a query) for ``ttl_s``.
    At most ``max_entries``; the oldest go first."""

    def __init__(self, ttl_s: float, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, V | None]] = OrderedDict()

    async def get(self, key: str, load: Callable[[], Awaitable[V | None]]) -> V | None:
        now = self._clock()
        hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = await load()
        if self.ttl_s > 0:
            self._entries.pop(key, None)
            self._entries[key] = (now + self.ttl_s, value)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return value

    def forget(self, key: str) -> None:
        self._entries.pop(key, None)
