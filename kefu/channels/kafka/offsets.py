"""Which offset of a partition may be committed. Pure: no I/O.

Records of one partition are taken in offset order but finish out of order (different conversations run
at the same time). Kafka's committed offset means "everything below is done", so a partition commits only
up to its lowest unfinished offset: a worker that dies loses nothing, and what it had finished above that
point is redelivered and answered from the store.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

P = TypeVar("P", bound=Hashable)


class PartitionProgress:
    """Offsets taken from one partition and which of them are finished."""

    def __init__(self) -> None:
        self._taken: deque[int] = deque()  # in the order taken (offset order), up to the first unfinished
        self._open: set[int] = set()  # taken and not finished
        self._next: int | None = None  # one past the highest offset taken
        self.committed: int | None = None  # the last offset committed by this worker

    def take(self, offset: int) -> None:
        if self._next is not None and offset < self._next:
            raise ValueError(f"offset {offset} taken after {self._next - 1}: records must be taken in order")
        self._taken.append(offset)
        self._open.add(offset)
        self._next = offset + 1

    def finish(self, offset: int) -> None:
        if offset not in self._open:
            raise ValueError(f"offset {offset} was not taken or is already finished")
        self._open.remove(offset)
        while self._taken and self._taken[0] not in self._open:
            self._taken.popleft()

    @property
    def in_flight(self) -> int:
        return len(self._open)

    def done_below(self) -> int | None:
        """The offset to commit: every record below it is finished (None before anything was taken)."""
        if self._taken:
            return self._taken[0]
        return self._next

    def to_commit(self) -> int | None:
        """``done_below()`` when it is ahead of the last commit, else None."""
        below = self.done_below()
        if below is None or (self.committed is not None and below <= self.committed):
            return None
        return below


class OffsetTracker(Generic[P]):
    """``PartitionProgress`` for every partition this worker holds."""

    def __init__(self) -> None:
        self._partitions: dict[P, PartitionProgress] = {}

    def progress(self, partition: P) -> PartitionProgress:
        found = self._partitions.get(partition)
        if found is None:
            found = self._partitions[partition] = PartitionProgress()
        return found

    def take(self, partition: P, offset: int) -> None:
        self.progress(partition).take(offset)

    def finish(self, partition: P, offset: int) -> None:
        self.progress(partition).finish(offset)

    def to_commit(self, partitions: Iterable[P] | None = None) -> dict[P, int]:
        """Offsets to commit now, for ``partitions`` (default: all), skipping those with nothing new."""
        chosen = self._partitions.keys() if partitions is None else partitions
        offsets: dict[P, int] = {}
        for partition in chosen:
            progress = self._partitions.get(partition)
            offset = progress.to_commit() if progress is not None else None
            if offset is not None:
                offsets[partition] = offset
        return offsets

    def committed(self, offsets: dict[P, int]) -> None:
        for partition, offset in offsets.items():
            self.progress(partition).committed = offset

    def in_flight(self, partitions: Iterable[P] | None = None) -> int:
        chosen = self._partitions.keys() if partitions is None else partitions
        return sum(self._partitions[p].in_flight for p in chosen if p in self._partitions)

    def forget(self, partition: P) -> None:
        self._partitions.pop(partition, None)

    def partitions(self) -> list[P]:
        return list(self._partitions)
