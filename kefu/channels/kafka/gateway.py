"""The channel side of Kafka routing: publish customers' messages to ``kefu.inbound``, and relay the
workers' answers from ``kefu.outbound`` to the channel that delivers them.

The relay runs in the API server (started by ``build_runtime`` when ``KEFU_KAFKA_BOOTSTRAP`` is set). Its
consumer group is the gateways' own (``<kafka_group>.gateway`` unless given): the replicas of one gateway
share it, so each answer is delivered once; a different gateway (another group) sees every answer too.
An answer is handed to the ``Delivery`` its channel registered on the ``Outbox`` and published on the
hub for open widgets and consoles. Workers publish an answer again when a message is redelivered after a
crash; the relay drops an answer whose ``message_id`` it has just seen.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from kefu.channels.base import Outbox, conversation_topic
from kefu.channels.kafka.codec import PoisonMessage, Source, dead_letter, decode_outbound, encode_inbound
from kefu.channels.kafka.connect import BrokerUnavailable, ensure_topics
from kefu.config import Settings
from kefu.core.types import InboundMessage

log = logging.getLogger(__name__)

RECENT_ANSWERS = 10_000  # message ids remembered to drop an answer published twice


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
    ) -> None:
        self.bootstrap = bootstrap
        self.outbox = outbox
        self.inbound_topic = inbound_topic
        self.outbound_topic = outbound_topic
        self.deadletter_topic = deadletter_topic
        self.group = group
        self.relayed = 0
        self._recent = RecentIds()
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._relay: asyncio.Task[None] | None = None

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
        self._producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=2)
        try:
            await self._producer.start()
            if relay:
                self._consumer = AIOKafkaConsumer(
                    self.outbound_topic,
                    bootstrap_servers=self.bootstrap,
                    group_id=self.group,
                    enable_auto_commit=False,
                    auto_offset_reset="earliest",  # answers written before this gateway started are delivered
                )
                await self._consumer.start()
        except (KafkaError, OSError) as exc:
            await self.stop()
            raise BrokerUnavailable(f"cannot reach the Kafka broker at {self.bootstrap}: {exc}") from exc
        if self._consumer is not None:
            self._relay = asyncio.create_task(self._run_relay(self._consumer), name="kefu-kafka-relay")

    async def publish(self, message: InboundMessage) -> None:
        """Put a customer's message on the inbound topic (keyed by its conversation); returns once the
        broker has it."""
        if self._producer is None:
            raise RuntimeError("KafkaGateway.start() was not called")
        key, value = encode_inbound(message)
        await self._producer.send_and_wait(self.inbound_topic, value, key)

    async def stop(self) -> None:
        if self._relay is not None:
            self._relay.cancel()
            await asyncio.gather(self._relay, return_exceptions=True)
            self._relay = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def _run_relay(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        await self._relay_one(record.value, Source(record.topic, record.partition, record.offset))
                if batch:
                    await consumer.commit()
            except KafkaError as exc:  # the broker went away for a moment: what was not committed comes again
                log.warning("kafka relay: %s; retrying", exc)
                await asyncio.sleep(1.0)

    async def _relay_one(self, value: bytes | None, source: Source) -> None:
        try:
            message = decode_outbound(value)
        except PoisonMessage as exc:
            log.warning("kafka relay: not an answer; dead-lettered", extra={"reason": exc.reason, **source.to_dict()})
            if self._producer is not None:
                letter = dead_letter(value, reason=exc.reason, error=str(exc), attempts=0, source=source)
                await self._producer.send_and_wait(self.deadletter_topic, letter)
            return
        if not message.text or self._recent.seen(message.message_id):
            return  # the bot stayed silent (an agent owns the conversation), or an answer published twice
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
