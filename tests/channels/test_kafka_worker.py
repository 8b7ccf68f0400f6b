"""The Kafka worker in this process against a real broker (tansu) and the real pipeline: answers in order,
commits, dead letters, redelivery answered from the store, a clean rebalance, and the gateway's relay."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from kefu.channels.base import OutboundMessage, Outbox, conversation_topic
from kefu.channels.hub import InProcessHub
from kefu.channels.kafka.codec import encode_outbound
from kefu.channels.kafka.gateway import KafkaGateway
from kefu.channels.kafka.worker import KafkaWorker, TurnHandler, WorkerConfig
from kefu.core.types import InboundMessage, TurnResult
from kefu.runtime import Runtime, build_runtime
from tests.channels.conftest import KafkaNames
from tests.channels.kafka_io import committed, create_topics, in_reply_to, inbound_value, read, send
from tests.conftest import make_settings

TEXTS = ("你好", "hello", "订单 100001 到哪了", "how long does shipping take", "谢谢")


def config(bootstrap: str, names: KafkaNames, **extra: Any) -> WorkerConfig:
    return WorkerConfig(
        bootstrap=bootstrap,
        group=names.group,
        inbound_topic=names.inbound,
        outbound_topic=names.outbound,
        deadletter_topic=names.deadletter,
        commit_interval_s=0.2,
        retry_backoff_s=0.01,
        session_timeout_ms=6000,
        **extra,
    )


@contextlib.asynccontextmanager
async def running(cfg: WorkerConfig, handler: TurnHandler) -> AsyncIterator[KafkaWorker]:
    worker = KafkaWorker(cfg, handler)
    await worker.start()
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 60)
        await worker.close()


def conversation_messages(prefix: str, conversations: int, each: int) -> list[tuple[bytes, bytes]]:
    """Round-robin over conversations, so partitions interleave; message ids say their order."""
    records = []
    for index in range(each):
        for c in range(conversations):
            cid = f"{prefix}-c{c}"
            records.append((cid.encode(), inbound_value(cid, f"{cid}-m{index}", TEXTS[index % len(TEXTS)])))
    return records


async def stored_order(runtime: Runtime, prefix: str) -> dict[str, list[str]]:
    async with runtime.engine.connect() as db:
        rows = await db.execute(
            text(
                "SELECT conversation_id, message_id FROM events WHERE type = 'message_received' "
                "AND conversation_id LIKE :p ORDER BY conversation_id, seq"
            ),
            {"p": f"{prefix}-%"},
        )
        order: dict[str, list[str]] = {}
        for cid, mid in rows:
            order.setdefault(cid, []).append(mid)
        return order


async def count_events(runtime: Runtime, prefix: str, kind: str) -> dict[str, int]:
    async with runtime.engine.connect() as db:
        rows = await db.execute(
            text(
                "SELECT message_id, COUNT(*) FROM events WHERE type = :kind AND conversation_id LIKE :p "
                "GROUP BY message_id"
            ),
            {"kind": kind, "p": f"{prefix}-%"},
        )
        return {mid: n for mid, n in rows}


async def until(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 -- polling a counter another task moves
            await asyncio.sleep(0.05)


class FailsOn:
    """The real pipeline, except that a message saying ``trigger`` raises its first ``times`` times."""

    def __init__(self, pipeline: TurnHandler, trigger: str, times: int) -> None:
        self.pipeline = pipeline
        self.trigger = trigger
        self.times = times
        self.calls = 0

    async def handle(self, message: InboundMessage) -> TurnResult:
        if message.text == self.trigger:
            self.calls += 1
            if self.calls <= self.times:
                raise RuntimeError(f"order system down (call {self.calls})")
        return await self.pipeline.handle(message)


async def test_every_message_is_answered_once_in_order_and_committed(
    kafka_bootstrap: str, kafka_names: KafkaNames, runtime: Runtime
) -> None:
    prefix = uuid.uuid4().hex[:8]
    records = conversation_messages(prefix, conversations=12, each=8)
    await create_topics(kafka_bootstrap, kafka_names.inbound, kafka_names.outbound, kafka_names.deadletter)
    await send(kafka_bootstrap, kafka_names.inbound, records)
    async with running(config(kafka_bootstrap, kafka_names, concurrency=8), runtime.pipeline) as worker:
        replies = await read(kafka_bootstrap, kafka_names.outbound, len(records), 60)
    assert worker.stats.answered == len(records)
    assert worker.stats.dead_letters == 0
    assert sorted(in_reply_to(replies)) == sorted(json.loads(v)["message_id"] for _, v in records)
    first = replies[0].value
    assert {"conversation_id", "message_id", "in_reply_to", "text", "handoff", "owner", "ts"} <= set(first)
    assert first["message_id"] == f"{first['in_reply_to']}:reply" and first["text"] and first["channel"] == "kafka"
    assert all(r.key == r.value["conversation_id"].encode() for r in replies)
    # Stored in the order sent, per conversation, one bot reply per message.
    order = await stored_order(runtime, prefix)
    assert order == {f"{prefix}-c{c}": [f"{prefix}-c{c}-m{i}" for i in range(8)] for c in range(12)}
    assert set((await count_events(runtime, prefix, "reply_sent")).values()) == {1}
    # Everything read is committed: a worker starting now gets nothing again.
    offsets = await committed(kafka_bootstrap, kafka_names.group, kafka_names.inbound)
    assert sum(offsets.values()) == len(records)


async def test_poison_and_failing_messages_go_to_the_dead_letters(
    kafka_bootstrap: str, kafka_names: KafkaNames, runtime: Runtime
) -> None:
    prefix = uuid.uuid4().hex[:8]
    cid = f"{prefix}-c"
    good = [inbound_value(cid, f"{cid}-m{i}", t) for i, t in enumerate(["你好", "explode", "hello", "flaky", "谢谢"])]
    poison: list[tuple[bytes | None, bytes]] = [
        (cid.encode(), b"{this is not json"),
        (cid.encode(), json.dumps({"conversation_id": cid, "text": "no ids"}).encode()),
        (cid.encode(), inbound_value(cid, f"{cid}-long", "长" * 5000)),
        (b"someone-else", inbound_value(cid, f"{cid}-key", "wrong key")),
    ]
    await create_topics(kafka_bootstrap, kafka_names.inbound, kafka_names.outbound, kafka_names.deadletter)
    reused = inbound_value(cid, f"{cid}-m0", "the same id, another text")  # refused, not guessed at
    await send(
        kafka_bootstrap, kafka_names.inbound, [*poison, *((cid.encode(), v) for v in good), (cid.encode(), reused)]
    )
    explode = FailsOn(runtime.pipeline, "explode", times=10**6)
    handler = FailsOn(explode, "flaky", times=1)  # fails once, then answers
    cfg = config(kafka_bootstrap, kafka_names, max_attempts=3)
    async with running(cfg, handler) as worker:
        letters = await read(kafka_bootstrap, kafka_names.deadletter, 6, 60)
        replies = await read(kafka_bootstrap, kafka_names.outbound, 4, 30)
    reasons = sorted(letter.value["reason"] for letter in letters)
    assert reasons == [
        "invalid_json",
        "key_mismatch",
        "message_id_conflict",
        "missing_field",
        "text_too_long",
        "turn_failed",
    ]
    failed = next(letter.value for letter in letters if letter.value["reason"] == "turn_failed")
    assert failed["attempts"] == 3 and explode.calls == 3
    assert failed["message_id"] == f"{cid}-m1" and failed["text"] == "explode"  # the original, kept whole
    assert "order system down" in failed["error"]
    assert failed["source"]["topic"] == kafka_names.inbound
    raw = next(letter.value for letter in letters if letter.value["reason"] == "invalid_json")
    assert raw["value"] == "{this is not json"
    # The conversation went on around the failed message, in order; the flaky one was answered.
    assert in_reply_to(replies) == [f"{cid}-m0", f"{cid}-m2", f"{cid}-m3", f"{cid}-m4"]
    assert worker.stats.retried == 2 + 1 and worker.stats.dead_letters == 6
    assert (await stored_order(runtime, prefix))[cid] == [f"{cid}-m0", f"{cid}-m2", f"{cid}-m3", f"{cid}-m4"]
    offsets = await committed(kafka_bootstrap, kafka_names.group, kafka_names.inbound)
    assert sum(offsets.values()) == len(poison) + len(good) + 1  # dead letters are committed too


async def test_a_redelivered_message_is_answered_from_the_store(
    kafka_bootstrap: str, kafka_names: KafkaNames, runtime: Runtime
) -> None:
    prefix = uuid.uuid4().hex[:8]
    cid = f"{prefix}-c"
    first = inbound_value(cid, f"{cid}-m0", "订单 100001 到哪了")
    await create_topics(kafka_bootstrap, kafka_names.inbound, kafka_names.outbound, kafka_names.deadletter)
    await send(kafka_bootstrap, kafka_names.inbound, [(cid.encode(), first), (cid.encode(), first)])
    async with running(config(kafka_bootstrap, kafka_names), runtime.pipeline) as worker:
        replies = await read(kafka_bootstrap, kafka_names.outbound, 2, 60)
    assert worker.stats.answered == 2 and worker.stats.replayed == 1
    assert replies[0].value["text"] == replies[1].value["text"] and "SF1234567890" in replies[0].value["text"]
    assert await count_events(runtime, prefix, "message_received") == {f"{cid}-m0": 1}
    assert await count_events(runtime, prefix, "reply_sent") == {f"{cid}-m0": 1}


class Slow:
    """The real pipeline, each turn ``delay_s`` longer (so a rebalance finds turns under way)."""

    def __init__(self, pipeline: TurnHandler, delay_s: float) -> None:
        self.pipeline = pipeline
        self.delay_s = delay_s

    async def handle(self, message: InboundMessage) -> TurnResult:
        await asyncio.sleep(self.delay_s)
        return await self.pipeline.handle(message)


async def test_a_clean_rebalance_finishes_and_commits_before_giving_partitions_up(
    kafka_bootstrap: str, kafka_names: KafkaNames, runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    prefix = uuid.uuid4().hex[:8]
    records = conversation_messages(prefix, conversations=30, each=10)
    await create_topics(kafka_bootstrap, kafka_names.inbound, kafka_names.outbound, kafka_names.deadletter)
    cfg = config(kafka_bootstrap, kafka_names, concurrency=4)
    caplog.set_level(logging.INFO, "kefu.channels.kafka.worker")
    async with running(cfg, Slow(runtime.pipeline, 0.05)) as first:
        await send(kafka_bootstrap, kafka_names.inbound, records)
        await until(lambda: first.stats.answered >= 20)
        async with running(cfg, Slow(runtime.pipeline, 0.05)) as second:  # the first gives up half its partitions
            replies = await read(kafka_bootstrap, kafka_names.outbound, len(records), 120, settle_s=1.0)
    assert first.stats.answered > 20 and second.stats.answered > 20
    assert first.stats.answered + second.stats.answered == len(records)
    handovers = [r for r in caplog.records if r.getMessage() == "rebalance: finishing turns"]
    assert handovers  # the first worker had turns under way when its partitions were revoked
    # Nothing was redelivered: what the first had started it finished and committed before the handover.
    assert first.stats.replayed == second.stats.replayed == 0
    assert sorted(in_reply_to(replies)) == sorted(json.loads(v)["message_id"] for _, v in records)
    order = await stored_order(runtime, prefix)
    assert all(mids == sorted(mids, key=lambda m: int(m.rsplit("-m", 1)[1])) for mids in order.values())
    assert sum(len(mids) for mids in order.values()) == len(records)


class Collected:
    """A channel's delivery that keeps what it is given (the WeChat or webhook push in production)."""

    def __init__(self) -> None:
        self.messages: list[OutboundMessage] = []

    async def deliver(self, message: OutboundMessage) -> None:
        self.messages.append(message)


async def test_gateway_publishes_and_relays_answers_to_the_channel_once(
    kafka_bootstrap: str, kafka_names: KafkaNames, runtime: Runtime
) -> None:
    outbox = Outbox(InProcessHub())
    delivered = Collected()
    outbox.register("wechat", delivered)
    gateway = KafkaGateway(
        kafka_bootstrap,
        outbox,
        inbound_topic=kafka_names.inbound,
        outbound_topic=kafka_names.outbound,
        deadletter_topic=kafka_names.deadletter,
        group=f"{kafka_names.group}.gateway",
    )
    await gateway.start()
    cid = f"{uuid.uuid4().hex[:8]}-c"
    message = InboundMessage(cid, f"{cid}-m0", "你好", datetime.now(UTC), user_id="openid-1", channel="wechat")
    try:
        async with (
            outbox.hub.subscribe(conversation_topic(cid)) as events,
            running(config(kafka_bootstrap, kafka_names), runtime.pipeline) as worker,
        ):
            await gateway.publish(message)
            await gateway.publish(message)  # a retried delivery: answered twice, relayed once
            event = await asyncio.wait_for(anext(events), 60)
            await until(lambda: worker.stats.answered == 2)
            assert len(await read(kafka_bootstrap, kafka_names.outbound, 2, 10)) == 2
            await asyncio.sleep(1.0)  # time for the relay to (wrongly) deliver the second answer
    finally:
        await gateway.stop()
    assert event["event"] == "message" and event["in_reply_to"] == message.message_id
    assert [m.in_reply_to for m in delivered.messages] == [message.message_id]
    assert delivered.messages[0].user_id == "openid-1" and delivered.messages[0].text
    assert gateway.relayed == 1


async def test_build_runtime_starts_the_relay_when_kafka_is_configured(
    kafka_bootstrap: str, kafka_names: KafkaNames, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, llm_answers=False, **kafka_names.settings(kafka_bootstrap))
    built = await build_runtime(settings)
    try:
        assert built.kafka is not None and built.kafka.group == f"{kafka_names.group}.gateway"
        delivered = Collected()
        built.outbox.register("app", delivered)
        answer = OutboundMessage("c-1", "m-1:reply", "m-1", "您好", False, "bot", channel="app", user_id="u")
        await send(kafka_bootstrap, kafka_names.outbound, [encode_outbound(answer)])
        await until(lambda: len(delivered.messages) == 1)
        assert delivered.messages[0].text == "您好"
    finally:
        await built.close()
