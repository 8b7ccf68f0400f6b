"""The channel side of Kafka routing: publish customers' messages to ``kefu.inbound``, and relay the
workers' answers from ``kefu.outbound`` to the channel that delivers them.

The relay runs in the API server (started by ``build_runtime`` when ``KEFU_KAFKA_BOOTSTRAP`` is set). Its
consumer group is the gateways' own (``<kafka_group>.gateway`` unless given): the replicas of one gateway
share it, so each answer is delivered once; a different gateway (another group) sees every answer too.
An answer is handed to the ``Delivery`` its channel registered on the ``Outbox`` and published on the
hub for open widgets and consoles. Workers publish an answer again when a message is redelivered after a
crash, or sent again by its channel; the relay drops an answer (conversation and ``message_id``) it has just relayed. So
that this holds across a gateway restart (or a partition moving to another replica), the relay reads back
the last answers it committed on each partition it is given before it delivers anything new there.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from kefu.channels.base import OutboundMessage, Outbox, conversation_topic
from kefu.channels.kafka.codec import PoisonMessage, Source, dead_letter, decode_outbound, encode_inbound
from kefu.channels.kafka.connect import FETCH_MAX_WAIT_MS, BrokerUnavailable, ensure_topics
from kefu.config import Settings
from kefu.core.types import InboundMessage

log = logging.getLogger(__name__)

RECENT_ANSWERS = 10_000  # answers (conversation and message id) remembered to drop one published twice
REMEMBERED_PER_PARTITION = 1_000  # answers read back from a partition the relay takes over
REMEMBER_TIMEOUT_S = 5.0  # reading them back may take this long; then the relay goes on without the rest
PUBLISH_TIMEOUT_S = 10.0
STOP_COMMIT_TIMEOUT_S = 5.0  # a channel request waits this long for the broker to take its message


class RecentIds:
    """The last ``size`` ids seen, oldest forgotten first."""

    def __init__(self, size: int = RECENT_ANSWERS) -> None:
        self._size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def seen(self, message_id: str) -> bool:
        """True when ``message_id`` was seen already; remembers it either way."""
        if message_id in self._ids:
            self._ids.move_to_end(message_id)
            return True
        self._ids[message_id] = None
        if len(self._ids) > self._size:
            self._ids.popitem(last=False)
        return False


class KafkaGateway:
    def __init__(
        self,
        bootstrap: str,
        outbox: Outbox,
        *,
        inbound_topic: str = "kefu.inbound",
        outbound_topic: str = "kefu.outbound",
        deadletter_topic: str = "kefu.deadletter",
        group: str = "kefu-workers.gateway",
        publish_timeout_s: float = PUBLISH_TIMEOUT_S,
    ) -> None:
        self.bootstrap = bootstrap
        self.outbox = outbox
        self.inbound_topic = inbound_topic
        self.outbound_topic = outbound_topic
        self.deadletter_topic = deadletter_topic
        self.group = group
        self.relayed = 0
        self.repeated = 0
        self.publish_timeout_s = publish_timeout_s
        self._recent = RecentIds()
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._relay: asyncio.Task[None] | None = None
        self._done: dict[TopicPartition, int] = {}  # per partition: the offset after the last answer relayed
        self._committed: dict[TopicPartition, int] = {}

    @classmethod
    def from_settings(cls, settings: Settings, outbox: Outbox, group: str | None = None) -> KafkaGateway:
        return cls(
            settings.kafka_bootstrap,
            outbox,
            inbound_topic=settings.kafka_inbound_topic,
            outbound_topic=settings.kafka_outbound_topic,
            deadletter_topic=settings.kafka_deadletter_topic,
            group=group or f"{settings.kafka_group}.gateway",
        )

    async def start(self, relay: bool = True) -> None:
        """Connect (``BrokerUnavailable`` when that fails) and, with ``relay``, start delivering answers."""
        await ensure_topics(self.bootstrap, (self.inbound_topic, self.outbound_topic, self.deadletter_topic))
        # A message the broker has not taken within the publish timeout expires in the producer too (the
        # channel was told to send it again), so stopping never waits longer than that for it.
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            linger_ms=2,
            request_timeout_ms=int(self.publish_timeout_s * 1000),
        )
        try:
            await self._producer.start()
            if relay:
                self._consumer = AIOKafkaConsumer(
                    bootstrap_servers=self.bootstrap,
                    group_id=self.group,
                    enable_auto_commit=False,
                    auto_offset_reset="earliest",  # answers written before this gateway started are delivered
                    fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
                )
                self._consumer.subscribe([self.outbound_topic], listener=_Takeover(self))
                await self._consumer.start()
        except (KafkaError, OSError) as exc:
            await self.stop()
            raise BrokerUnavailable(f"cannot reach the Kafka broker at {self.bootstrap}: {exc}") from exc
        if self._consumer is not None:
            self._relay = asyncio.create_task(self._run_relay(self._consumer), name="kefu-kafka-relay")

    async def publish(self, message: InboundMessage) -> None:
        """Put a customer's message on the inbound topic (keyed by its conversation); returns once the
        broker has it. ``BrokerUnavailable`` when it did not take it within ``publish_timeout_s`` (it may
        still arrive: the same ``message_id`` sent again is answered once, from the store)."""
        if self._producer is None:
            raise RuntimeError("KafkaGateway.start() was not called")
        key, value = encode_inbound(message)
        try:
            await asyncio.wait_for(self._producer.send_and_wait(self.inbound_topic, value, key), self.publish_timeout_s)
        except (KafkaError, TimeoutError) as exc:
            raise BrokerUnavailable(
                f"{self.inbound_topic} did not take the message: {exc or type(exc).__name__}"
            ) from exc

    async def stop(self) -> None:
        if self._relay is not None:
            self._relay.cancel()
            await asyncio.gather(self._relay, return_exceptions=True)
            self._relay = None
        if self._consumer is not None:
            try:  # what was relayed is not relayed again after a restart
                await asyncio.wait_for(self._commit(self._consumer), STOP_COMMIT_TIMEOUT_S)
            except TimeoutError:
                log.warning("kafka relay: last commit timed out; those answers may be relayed again")
            await self._consumer.stop()
            self._consumer = None
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def _run_relay(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                batch = await consumer.getmany(timeout_ms=500)
                for tp, records in batch.items():
                    for record in records:
                        await self._relay_one(record.value, Source(record.topic, record.partition, record.offset))
                        self._done[tp] = record.offset + 1
                await self._commit(consumer)
            except KafkaError as exc:  # the broker went away for a moment: what was not committed comes again
                log.warning("kafka relay: %s; retrying", exc)
                await asyncio.sleep(1.0)

    async def _commit(self, consumer: AIOKafkaConsumer, partitions: set[TopicPartition] | None = None) -> None:
        """Commits up to the last answer relayed (not the whole batch read: a relay stopped half-way through
        a batch delivers the rest after a restart). Best effort: what is not committed is relayed again."""
        due = {
            tp: offset
            for tp, offset in self._done.items()
            if (partitions is None or tp in partitions) and self._committed.get(tp) != offset
        }
        if not due:
            return
        try:
            await consumer.commit(due)
        except KafkaError as exc:
            log.warning("kafka relay: commit failed (%s); those answers may be relayed again", exc)
            return
        self._committed.update(due)

    async def _hand_back(self, revoked: set[TopicPartition]) -> None:
        consumer = self._consumer
        if consumer is not None:
            await self._commit(consumer, revoked)
        for tp in revoked:
            self._done.pop(tp, None)
            self._committed.pop(tp, None)

    async def _take_over(self, assigned: set[TopicPartition]) -> None:
        """Remembers the message ids of the last answers committed on ``assigned`` (by this gateway before a
        restart, or by another replica), so that an answer published again is still dropped."""
        consumer = self._consumer
        if consumer is None or not assigned:
            return
        ends: dict[TopicPartition, int] = {}
        try:
            for tp in assigned:
                committed = await consumer.committed(tp)
                if committed:
                    ends[tp] = committed
        except KafkaError as exc:
            log.warning("kafka relay: committed offsets unknown (%s); recent answers not read back", exc)
            return
        if not ends:
            return
        reader = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        remembered = 0
        try:
            async with asyncio.timeout(REMEMBER_TIMEOUT_S):
                await reader.start()
                reader.assign(list(ends))
                for tp, end in ends.items():
                    reader.seek(tp, max(0, end - REMEMBERED_PER_PARTITION))
                pending = set(ends)
                while pending:
                    batch = await reader.getmany(*pending, timeout_ms=200)
                    for tp, records in batch.items():
                        for record in records:
                            if record.offset < ends[tp]:
                                remembered += self._remember(record.value)
                    pending = {tp for tp in pending if await reader.position(tp) < ends[tp]}
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("kafka relay: recent answers only partly read back (%s)", exc or type(exc).__name__)
        finally:
            await reader.stop()
        log.info("kafka relay: partitions taken over", extra={"partitions": len(ends), "remembered": remembered})

    def _remember(self, value: bytes | None) -> int:
        try:
            message = decode_outbound(value)
        except PoisonMessage:
            return 0
        self._recent.seen(_answer_key(message))
        return 1

    async def _relay_one(self, value: bytes | None, source: Source) -> None:
        try:
            message = decode_outbound(value)
        except PoisonMessage as exc:
            log.warning("kafka relay: not an answer; dead-lettered", extra={"reason": exc.reason, **source.to_dict()})
            if self._producer is not None:
                letter = dead_letter(value, reason=exc.reason, error=str(exc), attempts=0, source=source)
                await self._producer.send_and_wait(self.deadletter_topic, letter)
            return
        if not message.text:
            return  # the bot stayed silent (an agent owns the conversation)
        if self._recent.seen(_answer_key(message)):
            self.repeated += 1  # an answer published again (a redelivery, or the channel sent it again)
            return
        self.relayed += 1
        delivery = self.outbox.delivery(message.channel)
        if delivery is not None:
            try:
                await delivery.deliver(message)
            except Exception:  # stored in the transcript already; a failed push must not stop the relay
                log.exception("kafka relay: delivery failed", extra={"channel": message.channel})
        await self.outbox.hub.publish(
            conversation_topic(message.conversation_id), {"event": "message", **message.to_dict()}
        )


def _answer_key(message: OutboundMessage) -> str:
    # Message ids are unique within a conversation only (a webhook sender's "m1" may be in every one).
    return f"{message.conversation_id}\x1f{message.message_id}"


class _Takeover(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, gateway: KafkaGateway) -> None:
        self.gateway = gateway

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.gateway._hand_back(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.gateway._take_over(set(assigned))
