"""The Redis ``ConversationHub`` against a real Redis: events cross replicas, one Redis subscription per topic
and process however many local subscribers (unsubscribed with the last), an event published right after
``subscribe`` returns arrives, a malformed event is dropped without stopping the hub, and two runtimes
share a handover live."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from kefu.channels.base import AGENTS, conversation_topic
from kefu.channels.hub_redis import RedisHub
from kefu.handoff.domain import Agent
from kefu.runtime import build_runtime
from tests.conftest import make_settings, message

pytestmark = pytest.mark.asyncio
EVENT_TIMEOUT_S = 5.0


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def prefix() -> str:
    return f"test-hub-{uuid.uuid4().hex[:8]}:"


async def _next(events: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    return await asyncio.wait_for(anext(events), EVENT_TIMEOUT_S)


async def _until(events: AsyncIterator[dict[str, Any]], kind: str, cid: str) -> dict[str, Any]:
    async def find() -> dict[str, Any]:
        async for event in events:
            if event.get("event") == kind and event.get("conversation_id") == cid:
                return event
        raise AssertionError("subscription ended")

    return await asyncio.wait_for(find(), EVENT_TIMEOUT_S)


async def _subscribers(redis: Redis, channel: str) -> int:
    return int(dict(await redis.pubsub_numsub(channel))[channel.encode()])


async def test_events_cross_replicas(redis_url: str, redis: Redis, prefix: str) -> None:
    replica_a, replica_b = (
        RedisHub(Redis.from_url(redis_url), prefix=prefix),
        RedisHub(Redis.from_url(redis_url), prefix=prefix),
    )
    try:
        async with replica_a.subscribe("conversation:c1") as first, replica_a.subscribe("conversation:c1") as second:
            async with replica_b.subscribe("conversation:c2") as other:
                await replica_b.publish("conversation:c1", {"event": "message", "text": "您好，我是客服小王"})
                await replica_a.publish("conversation:c2", {"event": "owner", "owner": "agent"})
                assert await _next(first) == {"event": "message", "text": "您好，我是客服小王"}
                assert await _next(second) == {"event": "message", "text": "您好，我是客服小王"}
                assert await _next(other) == {"event": "owner", "owner": "agent"}
                # Two local subscribers, one Redis subscription per process.
                assert await _subscribers(redis, f"{prefix}conversation:c1") == 1
                assert replica_a.subscribers("conversation:c1") == 2
            with pytest.raises(TimeoutError):  # nothing else arrived for c1
                await asyncio.wait_for(anext(first), 0.3)
        assert await _subscribers(redis, f"{prefix}conversation:c1") == 0  # the last one left: unsubscribed
        async with replica_a.subscribe("conversation:c1") as again:  # and subscribing anew works
            await replica_b.publish("conversation:c1", {"event": "message", "text": "again"})
            assert (await _next(again))["text"] == "again"
    finally:
        await replica_a.close()
        await replica_b.close()


async def test_an_event_published_right_after_subscribing_arrives(redis_url: str, prefix: str) -> None:
    hub, publisher = RedisHub(Redis.from_url(redis_url), prefix=prefix), Redis.from_url(redis_url)
    try:
        for round_ in range(20):  # subscribe then publish at once, from another connection, many times
            topic = f"t{round_}"
            async with hub.subscribe(topic) as events:
                await publisher.publish(f"{prefix}{topic}", json.dumps({"n": round_}))
                assert await _next(events) == {"n": round_}
    finally:
        await hub.close()
        await publisher.aclose()


async def test_a_malformed_event_is_dropped(redis_url: str, redis: Redis, prefix: str) -> None:
    hub = RedisHub(Redis.from_url(redis_url), prefix=prefix)
    try:
        async with hub.subscribe("x") as events:
            await redis.publish(f"{prefix}x", b"\xff not json")
            await redis.publish(f"{prefix}x", "[1, 2]")  # JSON, but not an event object
            await hub.publish("x", {"event": "ok"})
            assert await _next(events) == {"event": "ok"}
    finally:
        await hub.close()


async def test_two_runtimes_share_a_handover_live(redis_url: str, tmp_path: Path) -> None:
    """Two replicas on one database and one Redis: the customer on A, the agent on B."""
    settings = make_settings(tmp_path, redis_url=redis_url)
    replica_a = await build_runtime(settings)
    replica_b = await build_runtime(settings)
    cid = f"hub-{uuid.uuid4().hex[:10]}"
    agent = Agent("hub-agent", "小李")
    try:
        assert isinstance(replica_a.hub, RedisHub) and isinstance(replica_b.hub, RedisHub)
        assert replica_a.handoff is not None and replica_b.handoff is not None
        async with AsyncExitStack() as stack:
            console = await stack.enter_async_context(replica_b.hub.subscribe(AGENTS))
            widget = await stack.enter_async_context(replica_a.hub.subscribe(conversation_topic(cid)))
            handed = await replica_a.pipeline.handle(message(cid, "转人工"))
            assert handed.owner == "agent"
            assert (await _until(console, "queue", cid))["action"] == "added"
            assert (await _until(widget, "owner", cid))["agent"] is None

            await replica_b.handoff.claim(cid, agent)
            claimed = await _until(widget, "owner", cid)
            assert (claimed["owner"], claimed["agent"]) == ("agent", "小李")
            await replica_b.handoff.send(cid, agent, "hub-m1", "您好，我是客服小李")
            said = await _until(widget, "message", cid)
            assert (said["role"], said["text"], said["message_id"]) == ("agent", "您好，我是客服小李", "hub-m1")

            inbox = await stack.enter_async_context(replica_b.hub.subscribe(conversation_topic(cid)))
            await replica_a.pipeline.handle(message(cid, "好的，谢谢", "hub-c2"))
            heard = await _until(inbox, "customer_message", cid)
            assert (heard["text"], heard["message_id"]) == ("好的，谢谢", "hub-c2")
    finally:
        await replica_a.close()
        await replica_b.close()
