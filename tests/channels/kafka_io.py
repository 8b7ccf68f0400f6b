"""Small clients of the test broker: send records, read a topic whole, read a group's committed offsets."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from kefu.channels.kafka.connect import ensure_topics

PARTITIONS = 6


@dataclass(frozen=True)
class Read:
    key: bytes | None
    value: dict[str, Any]
    partition: int
    offset: int


# Messages that never hand a conversation over (in any order): each gets a bot reply. The crash test and
# bench/kafka.py send these.
HANDOFF_FREE_TEXTS = (
    "你好",
    "hello",
    "订单 100001 到哪了",
    "how long does shipping take",
    "谢谢",
    "有什么耳机推荐",
    "我想开发票",
    "thanks",
)


def inbound_value(conversation_id: str, message_id: str, text: str, **extra: Any) -> bytes:
    value = {
        "conversation_id": conversation_id,
        "message_id": message_id,
        "user_id": f"user-{conversation_id}",
        "channel": "kafka",
        "text": text,
        "ts": datetime.now(UTC).isoformat(),
        **extra,
    }
    return json.dumps(value, ensure_ascii=False).encode()


async def create_topics(bootstrap: str, *topics: str) -> None:
    await ensure_topics(bootstrap, topics, PARTITIONS)


async def send(bootstrap: str, topic: str, records: Iterable[tuple[bytes | None, bytes]]) -> int:
    """Send every (key, value) in order and wait for the broker to have them all."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key) for key, value in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return len(futures)


async def read(bootstrap: str, topic: str, until: int, timeout_s: float, *, settle_s: float = 0.0) -> list[Read]:
    """Every record of ``topic`` from the start until ``until`` are read (or ``timeout_s``), then
    ``settle_s`` more to catch records that should not be there."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        found: list[Read] = []
        deadline = time.monotonic() + timeout_s
        settle_end: float | None = None
        while time.monotonic() < (settle_end or deadline):
            batch = await consumer.getmany(timeout_ms=200)
            for tp, records in batch.items():
                found.extend(Read(r.key, json.loads(r.value), tp.partition, r.offset) for r in records)
            if settle_end is None and len(found) >= until:
                settle_end = time.monotonic() + settle_s
        return found
    finally:
        await consumer.stop()


async def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The group's committed offset per partition (tansu has no list_consumer_group_offsets)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        offsets = {}
        for partition in range(PARTITIONS):
            offset = await consumer.committed(TopicPartition(topic, partition))
            if offset is not None:
                offsets[partition] = offset
        return offsets
    finally:
        await consumer.stop()


def in_reply_to(replies: Sequence[Read]) -> list[str]:
    return [str(r.value["in_reply_to"]) for r in replies]


class Collector:
    """Reads a topic from its start in the background, keeping every record."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.records: list[Read] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Collector:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        partitions = [TopicPartition(self.topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        self._task = asyncio.create_task(self._read(consumer))
        return self

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=200)
                for tp, records in batch.items():
                    self.records.extend(Read(r.key, json.loads(r.value), tp.partition, r.offset) for r in records)
        finally:
            await consumer.stop()

    def replied(self) -> set[str]:
        return {str(r.value["in_reply_to"]) for r in self.records}

    async def wait_for(self, count: int, timeout_s: float, what: str = "replies") -> None:
        """Until ``count`` distinct messages have a reply; ``TimeoutError`` naming the shortfall."""
        deadline = time.monotonic() + timeout_s
        while len(self.replied()) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.replied())} of {count} {what} after {timeout_s:.0f} s")
            await asyncio.sleep(0.2)

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
