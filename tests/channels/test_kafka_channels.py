"""The asynchronous channels through Kafka, end to end against a real broker (tansu): the signed webhook and
WeChat publish to the inbound topic, a Kafka worker in this process answers with the real pipeline, and the
gateway's relay hands the answer to a real local HTTP receiver (the webhook callback) or to a real local
stand-in for WeChat's customer-service API, exactly once.

The late WeChat path needs a turn slower than the reply window: the window is made small and the
conversation is kept busy (the test holds its lock, as a turn of an earlier message would)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import socket
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from kefu.channels.adapters import build_channel_adapters
from kefu.channels.hub_redis import RedisHub
from kefu.channels.kafka.gateway import KafkaGateway
from kefu.channels.kafka.worker import KafkaWorker, TurnHandler, WorkerConfig
from kefu.channels.signing import check_signature, signed_headers
from kefu.channels.wechat import signature
from kefu.channels.wecom import conversation_id as wecom_conversation
from kefu.runtime import Runtime
from tests.channels.conftest import MEMORY, KafkaNames, free_port, tansu_binary
from tests.channels.kafka_io import read
from tests.channels.test_webhook import Receiver
from tests.channels.test_wechat import busy_for, reply_fields, text_xml
from tests.channels.test_wechat_crypto import KEY as WECOM_KEY
from tests.channels.test_wechat_crypto import TOKEN as WECOM_TOKEN
from tests.channels.test_wecom import AGENT_ID as WECOM_AGENT_ID
from tests.channels.test_wecom import _opened as opened
from tests.channels.test_wecom import _sealed_push as sealed_push
from tests.channels.wechat_standin import APP_ID, APP_SECRET, CORP_ID, CORP_SECRET, WeChatStandIn
from tests.channels.wiring import app_client, channel_runtime, local_server

SECRET = "kafka-webhook-secret"
TOKEN = "kafka-wechat-token"


def signed(payload: dict[str, Any], now: float | None = None) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload, ensure_ascii=False).encode()
    return body, {"Content-Type": "application/json", **signed_headers(SECRET, body, now)}


def wechat_query() -> dict[str, str]:
    timestamp, nonce = str(int(time.time())), uuid.uuid4().hex[:10]
    return {"signature": signature(TOKEN, timestamp, nonce), "timestamp": timestamp, "nonce": nonce}


async def until(check: Callable[[], bool], timeout_s: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not met within {timeout_s} s")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def worker(bootstrap: str, names: KafkaNames, handler: TurnHandler) -> AsyncIterator[KafkaWorker]:
    """A Kafka worker in this process (the real pipeline of the session's runtime)."""
    config = WorkerConfig(
        bootstrap=bootstrap,
        group=names.group,
        inbound_topic=names.inbound,
        outbound_topic=names.outbound,
        deadletter_topic=names.deadletter,
        commit_interval_s=0.2,
        session_timeout_ms=6000,
    )
    running = KafkaWorker(config, handler)
    await running.start()
    task = asyncio.create_task(running.run())
    try:
        yield running
    finally:
        running.stop()
        await asyncio.wait_for(task, 30)
        await running.close()


async def start_gateway(rt: Runtime) -> KafkaGateway:
    gateway = KafkaGateway.from_settings(rt.settings, rt.outbox)
    await gateway.start()
    rt.kafka = gateway
    return gateway


@dataclass
class Routed:
    """The app with Kafka configured, its gateway, and the worker answering kefu.inbound."""

    client: httpx.AsyncClient
    runtime: Runtime
    worker: KafkaWorker
    bootstrap: str
    names: KafkaNames

    @property
    def gateway(self) -> KafkaGateway:
        assert self.runtime.kafka is not None
        return self.runtime.kafka

    async def transcript(self, cid: str) -> list[tuple[str, str]]:
        answer = await self.client.get(f"/v1/conversations/{cid}")
        if answer.status_code == 404:
            return []
        return [(m["role"], m["text"]) for m in answer.json()["messages"]]

    async def published(self, expected: int) -> Counter[str]:
        """How often each message id is on the inbound topic (read until ``expected`` records, then a
        little longer for records that should not be there)."""
        records = await read(self.bootstrap, self.names.inbound, expected, 10, settle_s=0.5)
        return Counter(str(r.value["message_id"]) for r in records)


@contextlib.asynccontextmanager
async def redis_runtime(runtime: Runtime, redis_url: str, **settings: Any) -> AsyncIterator[Runtime]:
    """As ``channel_runtime``, with the hub and the answer-once claims in Redis (as replicas share them)."""
    changed = runtime.settings.model_copy(update={**settings, "redis_url": redis_url})
    redis = Redis.from_url(redis_url)
    hub = RedisHub(redis, prefix=f"test-kafka-{uuid.uuid4().hex[:8]}:")
    copy = dataclasses.replace(runtime, settings=changed, _closers=[], inflight=set(), hub=hub)
    copy.channels = build_channel_adapters(changed, copy.pipeline, copy.outbox)
    try:
        yield copy
    finally:
        await copy.channels.close()
        await hub.close()
        await redis.aclose()


@contextlib.asynccontextmanager
async def routed(
    runtime: Runtime, bootstrap: str, names: KafkaNames, redis_url: str = "", **settings: Any
) -> AsyncIterator[Routed]:
    settings.update(names.settings(bootstrap))
    copied = redis_runtime(runtime, redis_url, **settings) if redis_url else channel_runtime(runtime, **settings)
    async with copied as rt:
        gateway = await start_gateway(rt)
        try:
            async with worker(bootstrap, names, runtime.pipeline) as running, app_client(rt) as client:
                yield Routed(client, rt, running, bootstrap, names)
        finally:
            if rt.kafka is not None:
                await rt.kafka.stop()
            await gateway.stop()


# --- signed webhook ------------------------------------------------------------------------------------


async def test_webhook_is_queued_answered_by_a_worker_and_called_back_once_even_after_a_restart(
    kafka_bootstrap: str, kafka_names: KafkaNames, runtime: Runtime
) -> None:
    receiver = Receiver([])
    cid = f"kwh-{uuid.uuid4().hex[:8]}"
    with local_server(receiver.app) as base:
        settings = {"webhook_secret": SECRET, "webhook_callback_url": f"{base}/hook"}
        async with routed(runtime, kafka_bootstrap, kafka_names, **settings) as kafka:
            payload = {"conversation_id": cid, "message_id": "m1", "text": "订单100001到哪了", "user_id": "u-1"}
            body, headers = signed(payload)
            started = time.monotonic()
            queued = await kafka.client.post("/channels/webhook", content=body, headers=headers)
            assert queued.status_code == 202, queued.text
            assert queued.json() == {"conversation_id": cid, "message_id": "m1", "queued": True}
            await until(lambda: len(receiver.calls) == 1, what="the callback")
            latency = time.monotonic() - started

            called, raw = receiver.calls[0]
            check_signature(SECRET, called["x-kefu-timestamp"], called["x-kefu-signature"], raw, time.time(), 60)
            answer = json.loads(raw)
            assert answer["conversation_id"] == cid and answer["in_reply_to"] == "m1"
            assert answer["message_id"] == "m1:reply" and answer["role"] == "bot" and answer["channel"] == "webhook"
            assert answer["user_id"] == "u-1" and answer["owner"] == "bot"
            assert "SF1234567890" in answer["text"] and "顺丰" in answer["text"]
            assert await kafka.transcript(cid) == [("user", "订单100001到哪了"), ("bot", answer["text"])]

            # The same exact request again is a replay; the same message signed afresh is published
            # again, answered from the store by the worker, and dropped by the relay as a repeat.
            assert (await kafka.client.post("/channels/webhook", content=body, headers=headers)).status_code == 409
            body, headers = signed(payload, now=time.time() + 1)
            again = await kafka.client.post("/channels/webhook", content=body, headers=headers)
            assert again.status_code == 202, again.text
            await until(lambda: kafka.gateway.repeated == 1, what="the repeated answer dropped")
            assert kafka.worker.stats.replayed == 1 and len(receiver.calls) == 1

            # The same id with other text: refused at once, as without Kafka (nothing published).
            other, other_headers = signed({**payload, "text": "取消订单100003"})
            conflict = await kafka.client.post("/channels/webhook", content=other, headers=other_headers)
            assert conflict.status_code == 409 and conflict.json()["error"]["code"] == "message_id_conflict"

            # A gateway restart: the new relay reads back the answers already relayed, so a repost
            # answered again by the worker still reaches the callback once.
            await kafka.gateway.stop()
            restarted = await start_gateway(kafka.runtime)
            body, headers = signed(payload, now=time.time() + 2)
            assert (await kafka.client.post("/channels/webhook", content=body, headers=headers)).status_code == 202
            await until(lambda: restarted.repeated == 1, what="the repeated answer dropped after a restart")
            assert kafka.worker.stats.replayed == 2
            # ... and it relays new answers.
            body, headers = signed({**payload, "message_id": "m2", "text": "how long does shipping take?"})
            assert (await kafka.client.post("/channels/webhook", content=body, headers=headers)).status_code == 202
            await until(lambda: len(receiver.calls) == 2, what="the second callback")
            # Message ids are the sender's, unique per conversation only: another conversation's "m1".
            other_cid = f"kwh-{uuid.uuid4().hex[:8]}"
            body, headers = signed({**payload, "conversation_id": other_cid})
            assert (await kafka.client.post("/channels/webhook", content=body, headers=headers)).status_code == 202
            await until(lambda: len(receiver.calls) == 3, what="the other conversation's callback")
            await asyncio.sleep(0.5)  # a duplicate would come now, if any were due
            callbacks = [
                (json.loads(raw)["conversation_id"], json.loads(raw)["in_reply_to"]) for _, raw in receiver.calls
            ]
            assert callbacks == [(cid, "m1"), (cid, "m2"), (other_cid, "m1")]
            assert len(await kafka.transcript(cid)) == 4
            assert await kafka.published(5) == {"m1": 4, "m2": 1}  # the conflicting text was not published
    assert latency < 10


async def test_webhook_without_a_callback_keeps_answering_in_the_request(
    kafka_bootstrap: str, kafka_names: KafkaNames, runtime: Runtime
) -> None:
    async with routed(runtime, kafka_bootstrap, kafka_names, webhook_secret=SECRET) as kafka:
        cid = f"kwh-{uuid.uuid4().hex[:8]}"
        body, headers = signed({"conversation_id": cid, "message_id": "m1", "text": "订单100003能取消吗"})
        answer = await kafka.client.post("/channels/webhook", content=body, headers=headers)
        assert answer.status_code == 200 and "100003" in answer.json()["reply"]["text"]
        assert await kafka.published(0) == Counter()


# --- WeChat ----------------------------------------------------------------------------------------------


@pytest.fixture
def standin() -> Iterator[tuple[WeChatStandIn, str]]:
    api = WeChatStandIn()
    with local_server(api.app) as base:
        yield api, base


def wechat_settings(base: str, window_s: float) -> dict[str, Any]:
    return {
        "wechat_token": TOKEN,
        "wechat_app_id": APP_ID,
        "wechat_app_secret": APP_SECRET,
        "wechat_api_base": base,
        "wechat_reply_window_s": window_s,
    }


def openid() -> str:
    return "o" + uuid.uuid4().hex[:27]


def msg_id() -> str:
    return str(uuid.uuid4().int % 10**19)


async def push(kafka: Routed, body: bytes) -> httpx.Response:
    return await kafka.client.post(
        "/channels/wechat", content=body, params=wechat_query(), headers={"Content-Type": "text/xml"}
    )


@pytest.fixture(params=["memory", "redis"])
def shared(request: pytest.FixtureRequest) -> str:
    """Where the hub and the answer-once claims live: this process, or Redis (as for several replicas)."""
    if request.param == "memory":
        return ""
    url: str = request.getfixturevalue("redis_url")
    return url


async def test_wechat_through_kafka_gets_the_passive_reply_within_the_window_once(
    kafka_bootstrap: str,
    kafka_names: KafkaNames,
    runtime: Runtime,
    standin: tuple[WeChatStandIn, str],
    shared: str,
) -> None:
    api, base = standin
    async with routed(runtime, kafka_bootstrap, kafka_names, shared, **wechat_settings(base, 4.5)) as kafka:
        user, mid = openid(), msg_id()
        body = text_xml(user, "帮我看看订单100001到哪了", mid)
        started = time.monotonic()
        fields = reply_fields(await push(kafka, body))
        took = time.monotonic() - started
        assert fields["ToUserName"] == user and "SF1234567890" in fields["Content"]
        assert took < 4.5

        # WeChat's retries arriving together: published once, one passive reply, the rest "success".
        user2, mid2 = openid(), msg_id()
        body2 = text_xml(user2, "Is order 100002 still returnable?", mid2)
        answers = await asyncio.gather(*(push(kafka, body2) for _ in range(4)))
        passive = [a for a in answers if a.headers["content-type"].startswith("application/xml")]
        assert len(passive) == 1 and sorted(a.text for a in answers if a not in passive) == ["success"] * 3
        assert "100002" in reply_fields(passive[0])["Content"]
        assert (await push(kafka, body2)).text == "success"  # a retry after the answer went out

        await asyncio.sleep(1.0)  # past the relay's grace: an API send would come now, if any were due
        assert api.sends == [] and api.token_calls == []
        assert await kafka.published(2) == {f"wx-{mid}": 1, f"wx-{mid2}": 1}  # retries published nothing
        assert [role for role, _ in await kafka.transcript(f"wx:{user}")] == ["user", "bot"]
        assert [role for role, _ in await kafka.transcript(f"wx:{user2}")] == ["user", "bot"]
        assert kafka.worker.stats.answered == 2 and kafka.worker.stats.replayed == 0


async def test_wechat_through_kafka_answers_late_turns_once_by_the_customer_service_api(
    kafka_bootstrap: str, kafka_names: KafkaNames, runtime: Runtime, standin: tuple[WeChatStandIn, str]
) -> None:
    api, base = standin
    window = 0.4
    async with routed(runtime, kafka_bootstrap, kafka_names, **wechat_settings(base, window)) as kafka:
        user, mid = openid(), msg_id()
        body = text_xml(user, "我的订单100001到哪了", mid)
        held = asyncio.Event()
        busy = asyncio.create_task(busy_for(runtime, f"wx:{user}", 2.0, held))
        await held.wait()

        started = time.monotonic()
        first = await push(kafka, body)
        assert first.text == "success" and window <= time.monotonic() - started < window + 1.0
        retries = await asyncio.gather(*(push(kafka, body) for _ in range(3)))  # while the turn waits
        assert [r.text for r in retries] == ["success"] * 3
        assert api.sends == []

        await busy
        await until(lambda: len(api.delivered()) == 1, what="the customer-service message")
        for _ in range(3):  # retries after the answer went out
            assert (await push(kafka, body)).text == "success"
        await asyncio.sleep(1.0)  # a second send would come now, if any were due
        delivered = api.delivered()
        assert len(api.sends) == 1 and delivered[0]["touser"] == user
        assert "SF1234567890" in delivered[0]["text"]["content"]
        assert await kafka.published(1) == {f"wx-{mid}": 1}  # the retries published nothing
        assert await kafka.transcript(f"wx:{user}") == [
            ("user", "我的订单100001到哪了"),
            ("bot", delivered[0]["text"]["content"]),
        ]


async def test_wechat_retry_waiting_when_the_late_answer_comes_gives_it_passively(
    kafka_bootstrap: str, kafka_names: KafkaNames, runtime: Runtime, standin: tuple[WeChatStandIn, str]
) -> None:
    api, base = standin
    window = 1.5
    async with routed(runtime, kafka_bootstrap, kafka_names, **wechat_settings(base, window)) as kafka:
        user, mid = openid(), msg_id()
        body = text_xml(user, "how long does shipping take?", mid)
        held = asyncio.Event()
        busy = asyncio.create_task(busy_for(runtime, f"wx:{user}", window + 0.2, held))
        await held.wait()
        assert (await push(kafka, body)).text == "success"  # gave up waiting after its window
        fields = reply_fields(await push(kafka, body))  # WeChat's retry: the answer comes inside its window
        assert fields["ToUserName"] == user and fields["Content"]
        await busy
        await asyncio.sleep(1.0)
        assert api.sends == []  # answered once, passively
        assert await kafka.published(1) == {f"wx-{mid}": 1}
        assert [role for role, _ in await kafka.transcript(f"wx:{user}")] == ["user", "bot"]


async def test_wecom_through_kafka_answers_passively_encrypted_or_late_by_the_app_api_once(
    kafka_bootstrap: str, kafka_names: KafkaNames, runtime: Runtime, standin: tuple[WeChatStandIn, str]
) -> None:
    api, base = standin
    settings: dict[str, Any] = {
        "wecom_token": WECOM_TOKEN,
        "wecom_encoding_aes_key": WECOM_KEY,
        "wecom_corp_id": CORP_ID,
        "wecom_agent_id": WECOM_AGENT_ID,
        "wecom_secret": CORP_SECRET,
        "wecom_api_base": base,
        "wechat_reply_window_s": 1.5,
    }
    async with routed(runtime, kafka_bootstrap, kafka_names, **settings) as kafka:
        member, first = f"m{uuid.uuid4().hex[:8]}", msg_id()
        body, query = sealed_push(member, "订单100003能取消吗", first)
        reply = opened(await kafka.client.post("/channels/wecom", content=body, params=query))
        assert reply["ToUserName"] == member and "100003" in reply["Content"]

        late = msg_id()
        held = asyncio.Event()
        busy = asyncio.create_task(busy_for(runtime, wecom_conversation(member), 4.0, held))
        await held.wait()
        for _ in range(2):  # the push and WeCom's retry, each giving up at the end of its window
            body, query = sealed_push(member, "how long does shipping take?", late)
            assert (await kafka.client.post("/channels/wecom", content=body, params=query)).text == "success"
        await busy
        await until(lambda: len(api.delivered()) == 1, what="the app message")
        await asyncio.sleep(1.0)  # a second send would come now, if any were due
        sent = api.delivered()
        assert len(api.sends) == 1 and sent[0]["touser"] == member and sent[0]["agentid"] == WECOM_AGENT_ID
        assert sent[0]["text"]["content"]
        assert await kafka.published(2) == {f"wecom-{first}": 1, f"wecom-{late}": 1}
        assert await kafka.transcript(wecom_conversation(member)) == [
            ("user", "订单100003能取消吗"),
            ("bot", reply["Content"]),
            ("user", "how long does shipping take?"),
            ("bot", sent[0]["text"]["content"]),
        ]


# --- a broker that does not take the message -------------------------------------------------------------


@contextlib.contextmanager
def own_broker() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A tansu broker of this test alone (it is stopped in the middle)."""
    binary = tansu_binary()
    if binary is None:
        pytest.skip("no tansu binary")
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    broker = subprocess.Popen(
        [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url, *MEMORY],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            assert broker.poll() is None and time.monotonic() < deadline, "tansu did not start"
            time.sleep(0.1)
        yield f"127.0.0.1:{port}", broker
    finally:
        broker.kill()
        broker.wait(10)


async def test_a_message_the_broker_does_not_take_is_refused_so_that_it_is_sent_again(
    kafka_names: KafkaNames, runtime: Runtime, standin: tuple[WeChatStandIn, str]
) -> None:
    _api, base = standin
    with own_broker() as (bootstrap, broker):
        settings = {
            **kafka_names.settings(bootstrap),
            **wechat_settings(base, 0.5),
            "webhook_secret": SECRET,
            "webhook_callback_url": f"{base}/hook",
        }
        async with channel_runtime(runtime, **settings) as rt, app_client(rt) as client:
            gateway = KafkaGateway.from_settings(rt.settings, rt.outbox)
            gateway.publish_timeout_s = 2.0
            await gateway.start(relay=False)
            rt.kafka = gateway
            try:
                broker.kill()
                broker.wait(10)
                cid = f"kwh-{uuid.uuid4().hex[:8]}"
                body, headers = signed({"conversation_id": cid, "message_id": "m1", "text": "hello"})
                for _ in range(2):  # refused inside kefu: the very same signed request may come again
                    refused = await client.post("/channels/webhook", content=body, headers=headers)
                    assert refused.status_code == 503, refused.text
                    assert refused.json()["error"]["code"] == "queue_unavailable"
                    assert refused.headers["retry-after"] == "1"

                user = openid()
                pushed = text_xml(user, "你好", msg_id())
                for _ in range(2):  # WeChat's retry publishes again rather than waiting for nothing
                    started = time.monotonic()
                    answer = await client.post("/channels/wechat", content=pushed, params=wechat_query())
                    assert answer.status_code == 503 and answer.json()["error"]["code"] == "queue_unavailable"
                    assert time.monotonic() - started < 1.5  # within the reply window, not the publish timeout
                assert await runtime.store.transcript(cid) is None
            finally:
                stopping = time.monotonic()
                await gateway.stop()
        assert time.monotonic() - stopping < 5.0  # what the broker never took is not waited for again
