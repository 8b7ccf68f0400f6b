"""``kefu worker``'s engine: the pipeline in a Kafka consumer group, at least once and in order.

- A record's offset is committed only after its turn is stored and its reply is on the outbound topic
  (``PartitionProgress``: a partition commits up to its lowest unfinished record).
- A redelivered record (after a crash or a rebalance) is answered from the store: the pipeline replays the
  stored turn for a known ``message_id`` and appends nothing; its reply is published again.
- One conversation's records run one at a time in offset order (``KeyedLanes``; the key is the
  conversation id, so a conversation lives in one partition); conversations run concurrently.
- Partitions taken away in a rebalance first finish their running turns and commit them; the next owner
  starts after them, so a conversation's order survives rebalances.
- A value that cannot be a message goes to the dead letters at once; a turn that raises is retried and
  after ``max_attempts`` goes there too (and is committed). Nothing is dropped without a trace.
- ``stop()`` (SIGTERM): stop fetching, finish the running turns, publish their replies, commit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from functools import partial
from typing import Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from kefu.channels.base import OutboundMessage
from kefu.channels.kafka.codec import PoisonMessage, Source, dead_letter, decode_inbound, encode_outbound
from kefu.channels.kafka.connect import DEFAULT_PARTITIONS, FETCH_MAX_WAIT_MS, BrokerUnavailable, ensure_topics
from kefu.channels.kafka.lanes import KeyedLanes
from kefu.channels.kafka.offsets import OffsetTracker
from kefu.config import Settings
from kefu.core.types import InboundMessage, MessageIdConflict, TurnResult

log = logging.getLogger(__name__)


class Record(Protocol):
    """What the worker reads of an ``aiokafka.ConsumerRecord``."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class TurnHandler(Protocol):
    """What answers a message: ``kefu.core.pipeline.Pipeline``."""

    async def handle(self, message: InboundMessage) -> TurnResult: ...


class LagGauge(Protocol):
    """Where the per-partition lag goes: ``kefu.obs.metrics.Metrics``."""

    def set_kafka_lag(self, topic: str, partition: int, lag: int) -> None: ...

    def forget_kafka_partition(self, topic: str, partition: int) -> None: ...


class WorkerFailed(RuntimeError):
    """The worker stopped because the broker refused a reply or a dead letter (nothing after the record
    concerned was committed; it is redelivered when a worker starts again)."""


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    bootstrap: str
    group: str
    inbound_topic: str
    outbound_topic: str
    deadletter_topic: str
    max_attempts: int = 3
    concurrency: int = 16
    max_text_chars: int = 4000
    partitions: int = DEFAULT_PARTITIONS  # for topics the worker has to create
    retry_backoff_s: float = 0.2  # times the attempt number
    commit_interval_s: float = 0.5
    status_interval_s: float = 10.0
    session_timeout_ms: int = 10_000

    @classmethod
    def from_settings(cls, settings: Settings, bootstrap: str, **overrides: object) -> WorkerConfig:
        values: dict[str, object] = {
            "bootstrap": bootstrap,
            "group": settings.kafka_group,
            "inbound_topic": settings.kafka_inbound_topic,
            "outbound_topic": settings.kafka_outbound_topic,
            "deadletter_topic": settings.kafka_deadletter_topic,
            "max_attempts": settings.kafka_max_attempts,
            "max_text_chars": settings.max_text_chars,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    @property
    def max_in_flight(self) -> int:
        """Records read and not finished; fetching waits above this (bounds memory and redelivery)."""
        return self.concurrency * 8


@dataclass(slots=True)
class WorkerStats:
    taken: int = 0  # records read
    answered: int = 0  # turns run and replies published
    replayed: int = 0  # of those, answered from the store (redelivered after a crash or a rebalance)
    retried: int = 0  # failed attempts that were tried again
    dead_letters: int = 0
    commits: int = 0  # offset commits that moved at least one partition forward


class KafkaWorker:
    def __init__(self, config: WorkerConfig, handler: TurnHandler, lag: LagGauge | None = None) -> None:
        self.config = config
        self.handler = handler
        self.lag = lag
        self.stats = WorkerStats()
        self._tracker: OffsetTracker[TopicPartition] = OffsetTracker()
        self._running: defaultdict[TopicPartition, set[asyncio.Future[None]]] = defaultdict(set)
        self._lanes = KeyedLanes(config.concurrency)
        self._stopping = asyncio.Event()
        self._progress = asyncio.Event()  # a record finished: there may be room to fetch again
        self._commit_lock = asyncio.Lock()
        self._failure: BaseException | None = None
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        """Create missing topics, connect, join the group. ``BrokerUnavailable`` when that fails."""
        c = self.config
        await ensure_topics(c.bootstrap, (c.inbound_topic, c.outbound_topic, c.deadletter_topic), c.partitions)
        self._producer = AIOKafkaProducer(bootstrap_servers=c.bootstrap, acks="all", linger_ms=2)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=c.bootstrap,
            group_id=c.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",  # a new group starts with the oldest unanswered message
            session_timeout_ms=c.session_timeout_ms,
            heartbeat_interval_ms=max(500, c.session_timeout_ms // 4),
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )
        self._consumer.subscribe([c.inbound_topic], listener=_Rebalance(self))
        try:
            await self._producer.start()
            await self._consumer.start()
        except (KafkaError, OSError) as exc:
            await self.close()
            raise BrokerUnavailable(
                f"cannot reach the Kafka broker at {c.bootstrap}: {exc or type(exc).__name__}"
            ) from exc

    def stop(self) -> None:
        """Ask ``run`` to stop fetching, finish what it holds, commit and return."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def abort(self) -> None:
        """Stop now: running turns are cancelled and not committed (they are redelivered)."""
        self._stopping.set()
        await self._lanes.cancel()

    async def run(self) -> None:
        """Fetch and answer until ``stop()``; then drain and commit. Raises ``WorkerFailed`` when the broker
        refused a reply or a dead letter."""
        consumer = self._require_consumer()
        ticker = asyncio.create_task(self._tick(), name="kefu-kafka-commit")
        try:
            while not self._stopping.is_set():
                room = self.config.max_in_flight - self._tracker.in_flight()
                if room <= 0:
                    self._progress.clear()
                    await _first(self._progress.wait(), self._stopping.wait())
                    continue
                batch = await consumer.getmany(timeout_ms=200, max_records=room)
                # No await from here to the end of the loop body: a rebalance cannot slip in between
                # reading a record and registering it as running.
                for tp, records in batch.items():
                    for record in records:
                        self._dispatch(tp, record)
            await self._lanes.join()
        finally:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
            await self._commit()
        if self._failure is not None:
            raise WorkerFailed(str(self._failure)) from self._failure

    async def close(self) -> None:
        """Leave the group and flush the producer."""
        if self._consumer is not None:
            await self._consumer.stop()
        if self._producer is not None:
            await self._producer.stop()
        if self.lag is not None:
            for tp in self._tracker.partitions():
                self.lag.forget_kafka_partition(tp.topic, tp.partition)

    def status(self) -> dict[str, object]:
        assigned = self._consumer.assignment() if self._consumer is not None else set()
        return {**asdict(self.stats), "partitions": len(assigned), "in_flight": self._tracker.in_flight()}

    # --- records

    def _dispatch(self, tp: TopicPartition, record: Record) -> None:
        self._tracker.take(tp, record.offset)
        self.stats.taken += 1
        # One lane per conversation; a record without a usable key gets a lane of its own (it is a
        # dead letter anyway).
        key = record.key.decode("utf-8", "replace") if record.key else f"{tp.partition}@{record.offset}"
        done = self._lanes.submit(key, partial(self._process, tp, record))
        running = self._running[tp]
        running.add(done)
        done.add_done_callback(running.discard)

    async def _process(self, tp: TopicPartition, record: Record) -> None:
        if self._failure is not None:
            return  # left unfinished (never committed): redelivered in order after the restart
        source = Source(record.topic, record.partition, record.offset)
        try:
            try:
                message = decode_inbound(record.key, record.value, max_text_chars=self.config.max_text_chars)
            except PoisonMessage as exc:
                await self._dead_letter(record, source, exc.reason, str(exc), attempts=0)
            else:
                await self._answer(message, record, source)
        except (KafkaError, OSError) as exc:
            # The broker would not take the reply or the dead letter: this offset stays unfinished, so
            # nothing at or after it is committed; stop and let a restart redeliver it.
            log.error("broker refused a write; stopping", extra={"error": str(exc), **source.to_dict()})
            self._failure = self._failure or exc
            self._stopping.set()
            return
        self._tracker.finish(tp, record.offset)
        self._progress.set()

    async def _answer(self, message: InboundMessage, record: Record, source: Source) -> None:
        attempts = self.config.max_attempts
        for attempt in range(1, attempts + 1):
            try:
                result = await self.handler.handle(message)
            except MessageIdConflict as exc:  # the same id with another text: no retry can fix it
                await self._dead_letter(record, source, "message_id_conflict", str(exc), attempts=attempt)
                return
            except Exception as exc:  # a failed turn is retried, then dead-lettered: never lost
                error = f"{type(exc).__name__}: {exc}"
                if attempt == attempts:
                    await self._dead_letter(record, source, "turn_failed", error, attempts=attempt)
                    return
                self.stats.retried += 1
                log.warning(
                    "turn failed; retrying",
                    extra={"conversation_id": message.conversation_id, "attempt": attempt, "error": error},
                )
                await asyncio.sleep(self.config.retry_backoff_s * attempt)
                continue
            await self._publish(OutboundMessage.from_turn(message, result))
            self.stats.answered += 1
            self.stats.replayed += result.replayed
            return

    async def _publish(self, reply: OutboundMessage) -> None:
        key, value = encode_outbound(reply)
        await self._require_producer().send_and_wait(self.config.outbound_topic, value, key)

    async def _dead_letter(self, record: Record, source: Source, reason: str, error: str, attempts: int) -> None:
        value = dead_letter(record.value, reason=reason, error=error, attempts=attempts, source=source)
        await self._require_producer().send_and_wait(self.config.deadletter_topic, value, record.key)
        self.stats.dead_letters += 1
        log.warning("dead letter", extra={"reason": reason, "attempts": attempts, **source.to_dict()})

    # --- offsets, lag and status

    async def _commit(self, partitions: set[TopicPartition] | None = None) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        async with self._commit_lock:
            assigned = consumer.assignment()
            chosen = [tp for tp in (partitions if partitions is not None else assigned) if tp in assigned]
            offsets = self._tracker.to_commit(chosen)
            if not offsets:
                return
            try:
                await consumer.commit(offsets)
            except KafkaError as exc:  # a rebalance under way: the next owner redelivers, the store replays
                log.warning("commit failed", extra={"error": str(exc) or type(exc).__name__})
                return
            self._tracker.committed(offsets)
            self.stats.commits += 1

    async def _tick(self) -> None:
        last_status = time.monotonic()
        while True:
            await asyncio.sleep(self.config.commit_interval_s)
            await self._commit()
            await self._report_lag()
            if time.monotonic() - last_status >= self.config.status_interval_s:
                last_status = time.monotonic()
                log.info("kafka worker", extra=self.status())

    async def _report_lag(self) -> None:
        consumer = self._consumer
        if self.lag is None or consumer is None:
            return
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            done = self._tracker.progress(tp).done_below()
            if done is None:
                try:
                    done = await asyncio.wait_for(consumer.position(tp), 1.0)
                except (KafkaError, TimeoutError):
                    continue
            if highwater is not None:
                self.lag.set_kafka_lag(tp.topic, tp.partition, highwater - done)

    async def _give_up(self, revoked: set[TopicPartition]) -> None:
        """Before ``revoked`` go to another worker: finish their running turns and commit them."""
        running = set().union(*(self._running.get(tp, set()) for tp in revoked))
        if running:
            log.info("rebalance: finishing turns", extra={"partitions": len(revoked), "turns": len(running)})
            await asyncio.wait(running)
        await self._commit(revoked)
        for tp in revoked:
            self._tracker.forget(tp)
            self._running.pop(tp, None)
            if self.lag is not None:
                self.lag.forget_kafka_partition(tp.topic, tp.partition)

    def _require_consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("KafkaWorker.start() was not called")
        return self._consumer

    def _require_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("KafkaWorker.start() was not called")
        return self._producer


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: KafkaWorker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if revoked:
            await self.worker._give_up(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("partitions assigned", extra={"partitions": sorted(tp.partition for tp in assigned)})


async def _first(*waits: object) -> None:
    """Wait until the first of several coroutines finishes; cancel the others."""
    tasks = [asyncio.ensure_future(w) for w in waits]  # type: ignore[call-overload]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
