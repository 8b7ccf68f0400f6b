"""``WS /agent/ws`` against a real server and a real websockets client: the console hears queue changes,
follows the conversations it watches (customers' messages, agents' messages, owner changes), notes stay on
the agents' topic, an open socket keeps the agent online, and bad credentials and frames are refused."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from kefu.channels.base import conversation_topic
from tests.handoff.serving import CHANNEL_KEY, Server, serve

pytestmark = pytest.mark.asyncio
FRAME_TIMEOUT_S = 10.0


@pytest.fixture
async def server(database_url: str, tmp_path: Path) -> AsyncIterator[Server]:
    async with serve(database_url, tmp_path, agent_online_s=1.5) as running:
        yield running


def _cid() -> str:
    return f"agent-ws-{uuid.uuid4().hex[:10]}"


async def _frame(ws: ClientConnection) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), FRAME_TIMEOUT_S))
    return data


async def _until(ws: ClientConnection, kind: str, cid: str | None = None) -> dict[str, Any]:
    """The next frame of this kind (for this conversation), skipping others."""
    while True:
        frame = await _frame(ws)
        if frame.get("event") == kind and (cid is None or frame.get("conversation_id") == cid):
            return frame


async def _say(customer: httpx.AsyncClient, cid: str, text: str) -> dict[str, Any]:
    answered = await customer.post(f"/v1/conversations/{cid}/messages", json={"text": text})
    assert answered.status_code == 200, answered.text
    body: dict[str, Any] = answered.json()
    return body


async def test_the_console_follows_queue_and_conversation_live(server: Server) -> None:
    cid = _cid()
    agent, token = await server.agent("ws-agent-" + uuid.uuid4().hex[:6])
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        server.customer() as customer,
        agent,
        websockets.connect(f"{server.ws_url}/agent/ws", additional_headers=headers) as ws,
    ):
        hello = await _frame(ws)
        assert hello["event"] == "hello" and hello["agent"]["name"].startswith("ws-agent-")
        assert any(a["id"] == hello["agent"]["id"] for a in hello["online_agents"])  # the socket counts

        handed = await _say(customer, cid, "转人工")
        assert "没有人工客服在线" not in handed["reply"]["text"]  # this console is open: somebody is online
        added = await _until(ws, "queue", cid)
        assert added["action"] == "added" and added["entry"]["status"] == "waiting"

        await ws.send(json.dumps({"action": "watch", "conversation_id": cid}))
        assert (await _until(ws, "watching", cid))["conversation_id"] == cid
        assert (await agent.post(f"/agent/conversations/{cid}/claim")).status_code == 200
        owner = await _until(ws, "owner", cid)
        assert owner["owner"] == "agent" and owner["agent"] == hello["agent"]["name"]
        assert (await _until(ws, "queue", cid))["action"] == "claimed"

        silent = await _say(customer, cid, "我的订单100002还能退吗？")
        assert silent["reply"]["text"] == ""
        heard = await _until(ws, "customer_message", cid)
        assert heard["text"] == "我的订单100002还能退吗？" and heard["role"] == "user"

        sent = await agent.post(
            f"/agent/conversations/{cid}/messages", json={"text": "可以的，我来帮您办理", "message_id": "ws-1"}
        )
        assert sent.status_code == 201
        said = await _until(ws, "message", cid)
        assert (said["role"], said["message_id"], said["text"]) == ("agent", "ws-1", "可以的，我来帮您办理")

        # A note reaches the consoles on the agents' topic and never a customer's widget.
        async with server.runtime.hub.subscribe(conversation_topic(cid)) as widget:
            noted = await agent.post(f"/agent/conversations/{cid}/notes", json={"text": "已核实订单"})
            assert noted.status_code == 201
            note = await _until(ws, "note", cid)
            assert note["note"]["text"] == "已核实订单"
            await agent.post(f"/agent/conversations/{cid}/return")
            seen_by_widget = await asyncio.wait_for(anext(widget), FRAME_TIMEOUT_S)
            assert seen_by_widget["event"] == "owner" and seen_by_widget["owner"] == "bot"  # not the note
        assert (await _until(ws, "owner", cid))["owner"] == "bot"

        await ws.send(json.dumps({"action": "unwatch", "conversation_id": cid}))
        assert (await _until(ws, "unwatched", cid))["conversation_id"] == cid
        await ws.send(json.dumps({"action": "ping"}))
        assert (await _until(ws, "pong"))["event"] == "pong"


async def test_an_open_console_keeps_its_agent_online(server: Server) -> None:
    """KEFU_AGENT_ONLINE_S is 1.5 s here: without the socket's own heartbeat the agent would drop off."""
    agent, token = await server.agent()
    async with agent:
        url = f"{server.ws_url}/agent/ws?api_key={token}"
        async with websockets.connect(url) as ws:
            hello = await _frame(ws)
            await asyncio.sleep(2.5)
            online = (await agent.get("/agent/queue")).json()["online_agents"]
            assert [a["id"] for a in online] == [hello["agent"]["id"]]
        await asyncio.sleep(2.0)  # closed: the presence expires by itself
        assert (await agent.get("/agent/queue")).json()["online_agents"] == []
        async with server.customer() as customer:
            handed = await _say(customer, _cid(), "I want to talk to a person")
        assert "No colleague is online right now" in handed["reply"]["text"]


async def test_refused_credentials_and_frames(server: Server) -> None:
    for url, headers, code in (
        (f"{server.ws_url}/agent/ws", {}, 4401),
        (f"{server.ws_url}/agent/ws", {"Authorization": "Bearer wrong"}, 4401),
        (f"{server.ws_url}/agent/ws?api_key={CHANNEL_KEY}", {}, 4403),  # a channel key is no agent
    ):
        async with websockets.connect(url, additional_headers=headers) as ws:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await _frame(ws)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == code
    agent, token = await server.agent()
    async with (
        agent,
        websockets.connect(f"{server.ws_url}/agent/ws", additional_headers={"Authorization": f"Bearer {token}"}) as ws,
    ):
        await _until(ws, "hello")
        for raw, error in (
            ("{not json", "invalid_json"),
            (json.dumps({"action": "dance"}), "invalid_request"),
            (json.dumps({"action": "watch", "conversation_id": "bad id"}), "invalid_conversation_id"),
            ("x" * 5000, "payload_too_large"),
        ):
            await ws.send(raw)
            frame = await _frame(ws)
            assert frame["error"]["code"] == error, frame
        await ws.send(json.dumps({"action": "ping"}))  # the socket stays open after refusals
        assert (await _until(ws, "pong"))["event"] == "pong"
