"""Live pushes on the customer WebSocket: what the hub carries for a conversation reaches its open sockets
while they wait for the customer, the customer's own turns are not echoed, internal events never leak, and
the subscription ends with the socket. A real uvicorn server in the test's loop, a real websockets client."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvicorn
import websockets
from websockets.asyncio.client import ClientConnection

from kefu.api import create_app
from kefu.api.routers.ws import OwnMessages, customer_frame
from kefu.channels.base import AGENTS, OutboundMessage, conversation_topic
from kefu.channels.hub import InProcessHub
from kefu.runtime import Runtime

FRAME_TIMEOUT_S = 15.0
QUIET_S = 0.3  # how long "nothing arrives" is watched for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def served(runtime: Runtime) -> AsyncIterator[str]:
    """The app on the session's runtime, served by uvicorn in this loop (so the test shares its hub)."""
    port = free_port()
    app = create_app(runtime.settings, runtime)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="off"))
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.025)
    assert server.started, "uvicorn did not start"
    try:
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest.fixture
async def base(runtime: Runtime) -> AsyncIterator[str]:
    async with served(runtime) as url:
        yield url


def new_id() -> str:
    return f"push-{uuid.uuid4().hex[:12]}"


async def frame(ws: ClientConnection) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), FRAME_TIMEOUT_S))
    return data


async def nothing_more(ws: ClientConnection) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ws.recv(), QUIET_S)


def agent_says(cid: str, text: str) -> OutboundMessage:
    return OutboundMessage.said_by("agent", cid, text, "agent", channel="web", user_id=None)


def bot_reply(cid: str, in_reply_to: str, text: str) -> OutboundMessage:
    return OutboundMessage(cid, f"{in_reply_to}:reply", in_reply_to, text, False, "bot", "bot")


async def test_an_agent_message_and_an_owner_change_reach_an_idle_socket(runtime: Runtime, base: str) -> None:
    cid = new_id()
    async with websockets.connect(f"{base}/v1/ws/{cid}") as ws:
        said = agent_says(cid, "您好，我是人工客服小王")
        assert await runtime.outbox.send(said)
        pushed = await frame(ws)
        assert pushed["event"] == "message" and pushed["role"] == "agent"
        assert pushed["text"] == "您好，我是人工客服小王" and pushed["message_id"] == said.message_id
        assert pushed["conversation_id"] == cid and pushed["owner"] == "agent"

        await runtime.hub.publish(conversation_topic(cid), {"event": "owner", "owner": "bot", "agent": "wang"})
        assert await frame(ws) == {"event": "owner", "owner": "bot", "agent": "wang"}
        await nothing_more(ws)


async def test_the_customers_own_turn_is_not_pushed_twice_but_reaches_another_tab(runtime: Runtime, base: str) -> None:
    cid = new_id()
    async with websockets.connect(f"{base}/v1/ws/{cid}") as tab_a, websockets.connect(f"{base}/v1/ws/{cid}") as tab_b:
        await tab_a.send(json.dumps({"text": "where is order 100001", "message_id": "mine-1"}))
        turn = await frame(tab_a)
        assert turn["message_id"] == "mine-1" and "SF1234567890" in turn["reply"]["text"]

        # A worker publishing the same answer (Kafka path) must not show it twice in the tab that asked.
        await runtime.outbox.send(bot_reply(cid, "mine-1", turn["reply"]["text"]))
        await runtime.outbox.send(bot_reply(cid, "someone-else", "an answer to another tab"))
        first_in_a = await frame(tab_a)
        assert first_in_a["in_reply_to"] == "someone-else"  # the echo of mine-1 was skipped, order kept
        echo_in_b = await frame(tab_b)
        assert echo_in_b["in_reply_to"] == "mine-1" and echo_in_b["role"] == "bot"
        assert (await frame(tab_b))["in_reply_to"] == "someone-else"
        await nothing_more(tab_a)


async def test_internal_events_and_other_conversations_never_reach_the_customer(runtime: Runtime, base: str) -> None:
    cid, other = new_id(), new_id()
    async with websockets.connect(f"{base}/v1/ws/{cid}") as ws:
        topic = conversation_topic(cid)
        await runtime.hub.publish(topic, {"event": "note", "text": "VIP, be careful", "author": "wang"})
        await runtime.hub.publish(topic, {"event": "message", "role": "note", "text": "internal"})
        await runtime.hub.publish(AGENTS, {"event": "queue", "conversation_id": cid})
        await runtime.outbox.send(agent_says(other, "for someone else"))
        await runtime.hub.publish(topic, {"event": "owner", "owner": "closed"})
        assert await frame(ws) == {"event": "owner", "owner": "closed"}
        await nothing_more(ws)


async def test_pushes_during_a_streamed_turn_keep_every_frame_whole(runtime: Runtime, base: str) -> None:
    cid = new_id()
    async with websockets.connect(f"{base}/v1/ws/{cid}") as ws:
        await ws.send(json.dumps({"text": "how long is the warranty?", "stream": True, "locale": "en"}))
        await runtime.outbox.send(agent_says(cid, "an agent is looking too"))
        deltas: list[str] = []
        pushes: list[dict[str, Any]] = []
        while True:
            got = await frame(ws)
            if "delta" in got:
                deltas.append(got["delta"])
            elif "event" in got:
                pushes.append(got)
            else:
                turn = got
                break
        assert "".join(deltas) == turn["reply"]["text"] and "warranty" in turn["reply"]["text"].lower()
        if not pushes:  # published before the first delta was written, or after the turn: either is fine
            pushes.append(await frame(ws))
        assert [p["text"] for p in pushes] == ["an agent is looking too"]


async def test_a_handoff_then_the_agents_reply_then_the_bot_stays_silent(runtime: Runtime, base: str) -> None:
    """With the real handover service: the handover's owner event is pushed, the bot's handover notice
    (published for the consoles, in reply to this socket's message) is not pushed back, the customer's
    later messages reach no one here, and the bot stays silent."""
    cid = new_id()
    async with websockets.connect(f"{base}/v1/ws/{cid}") as ws:
        await ws.send(json.dumps({"text": "转人工", "locale": "zh", "message_id": "ask-human"}))
        got = [await frame(ws), await frame(ws)]  # the turn inline and the owner event, in either order
        turn = next(f for f in got if "reply" in f)
        assert turn["handoff"] is True and turn["owner"] == "agent" and turn["reply"]["text"]
        owner = next(f for f in got if f.get("event") == "owner")
        assert owner["owner"] == "agent" and owner["conversation_id"] == cid
        await nothing_more(ws)  # the notice's {"event": "message", "in_reply_to": "ask-human"} stays out

        await runtime.outbox.send(agent_says(cid, "您好，请问订单号是多少？"))
        assert (await frame(ws))["text"] == "您好，请问订单号是多少？"
        await ws.send(json.dumps({"text": "100001"}))
        silent = await frame(ws)
        assert silent["owner"] == "agent" and silent["reply"]["text"] == ""
        await nothing_more(ws)  # the consoles' customer_message event is not echoed to the customer


async def test_the_subscription_ends_with_the_socket(runtime: Runtime, base: str) -> None:
    hub = runtime.hub
    assert isinstance(hub, InProcessHub)
    cid = new_id()
    topic = conversation_topic(cid)
    async with websockets.connect(f"{base}/v1/ws/{cid}") as ws:
        assert hub.subscribers(topic) == 1  # subscribed before the socket opened
        await ws.send(json.dumps({"text": "你好"}))
        await frame(ws)
    for _ in range(200):
        if hub.subscribers(topic) == 0:
            break
        await asyncio.sleep(0.025)
    assert hub.subscribers(topic) == 0
    # A push after the customer left goes nowhere and breaks nothing.
    assert await runtime.outbox.send(agent_says(cid, "still there?"))


async def test_a_refused_socket_never_subscribes(runtime: Runtime, base: str) -> None:
    hub = runtime.hub
    assert isinstance(hub, InProcessHub)
    with pytest.raises(websockets.exceptions.InvalidStatus):
        async with websockets.connect(f"{base}/v1/ws/{'x' * 129}"):
            pass
    assert hub.subscribers(conversation_topic("x" * 129)) == 0


def test_own_messages_forget_the_oldest_first() -> None:
    own = OwnMessages(capacity=2)
    for mid in ("a", "b", "c"):
        own.add(mid)
    assert "a" not in own and "b" in own and "c" in own
    assert customer_frame({"event": "message", "role": "bot", "in_reply_to": "a"}, own) is not None
    assert customer_frame({"event": "message", "role": "bot", "in_reply_to": "c"}, own) is None
    assert customer_frame({"event": "message", "role": "agent", "in_reply_to": "c"}, own) is not None
    assert customer_frame({"event": "typing"}, own) is None
