"""``WS /agent/ws``: the console's live stream (docs/handoff.md).

Authenticated like ``/agent`` (the console's session cookie from this site, an ``Authorization`` header,
or ``?api_key=`` with an agent-role key). The first frame is ``{"event": "hello", ...}``, sent once the
socket listens on ``AGENTS`` (queue changes, notes, tickets). The console then sends
``{"action": "watch", "conversation_id": ...}`` for each conversation it shows and gets ``{"event":
"watching", ...}`` once that conversation's events (customer messages, agents' and bot's messages, owner
changes) flow; ``unwatch`` stops them; ``ping`` answers ``pong``. While the socket is open the agent
counts as online (its presence is refreshed every third of KEFU_AGENT_ONLINE_S).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from kefu.access.principals import role_allows
from kefu.api.deps import identify, valid_id
from kefu.api.errors import ApiError, error_body
from kefu.channels.base import AGENTS, ConversationHub, conversation_topic
from kefu.handoff.domain import Agent
from kefu.handoff.service import HandoffService
from kefu.runtime import Runtime

router = APIRouter(tags=["agent"])
MAX_WATCHED = 50  # conversations one console follows at once
OUTGOING_BACKLOG = 1000
FRAME_BYTES = 4096


async def _authorised(websocket: WebSocket) -> Agent | None:
    """The agent, or None after closing the socket with 4401 / 4403 (4000 + the HTTP status). The socket
    is accepted first, so that a browser sees the code (a refused handshake only says "1006")."""
    try:
        principal = await identify(websocket)
    except ApiError as exc:
        await _refuse(websocket, 4000 + exc.status, exc.message)
        return None
    if principal.role is None:
        await _refuse(websocket, 4401, "sign in (POST /auth/login) or send an agent API key")
        return None
    if not role_allows(principal.role, "agent"):
        await _refuse(websocket, 4403, "this needs the agent role")
        return None
    return Agent.of(principal.kind, principal.name)


async def _refuse(websocket: WebSocket, code: int, reason: str) -> None:
    await websocket.accept()
    await websocket.close(code=code, reason=reason[:120])


@router.websocket("/agent/ws")
async def agent_socket(websocket: WebSocket) -> None:
    runtime: Runtime = websocket.app.state.runtime
    agent = await _authorised(websocket)
    if agent is None:
        return
    if runtime.handoff is None:
        await _refuse(websocket, 4503, "handover is not set up on this server")
        return
    await websocket.accept()
    await _Console(websocket, runtime.handoff, runtime.hub, agent, runtime.settings.agent_online_s).run()


class _Console:
    """One open console: forwards hub events to the socket and reads the console's actions."""

    def __init__(
        self, websocket: WebSocket, service: HandoffService, hub: ConversationHub, agent: Agent, online_s: float
    ) -> None:
        self.websocket = websocket
        self.service = service
        self.hub = hub
        self.agent = agent
        self.heartbeat_s = max(0.5, min(online_s / 3, 20.0))
        self.outgoing: asyncio.Queue[dict[str, Any]] = asyncio.Queue(OUTGOING_BACKLOG)
        self.watched: dict[str, asyncio.Task[None]] = {}

    async def run(self) -> None:
        await self.service.seen(self.agent)
        background = [
            asyncio.create_task(self._follow(AGENTS, self._hello), name="kefu-agent-ws-agents"),
            asyncio.create_task(self._write(), name="kefu-agent-ws-write"),
            asyncio.create_task(self._heartbeat(), name="kefu-agent-ws-heartbeat"),
        ]
        try:
            await self._read()
        finally:
            for task in [*background, *self.watched.values()]:
                task.cancel()
            for task in [*background, *self.watched.values()]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _hello(self) -> dict[str, Any]:
        return {
            "event": "hello",
            "agent": {"id": self.agent.id, "name": self.agent.name},
            "online_agents": await self.service.online_agents(),
        }

    def _put(self, event: dict[str, Any]) -> None:
        if self.outgoing.full():  # a console that stopped reading loses its oldest events (it reloads)
            self.outgoing.get_nowait()
        self.outgoing.put_nowait(event)

    async def _follow(self, topic: str, first: Any) -> None:
        async with self.hub.subscribe(topic) as events:
            self._put(await first())
            async for event in events:
                self._put(event)

    async def _write(self) -> None:
        while True:
            await self.websocket.send_json(await self.outgoing.get())

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            await self.service.seen(self.agent)

    async def _read(self) -> None:
        while True:
            try:
                raw = await self.websocket.receive_text()
            except WebSocketDisconnect:
                return
            if len(raw.encode("utf-8", "surrogatepass")) > FRAME_BYTES:
                self._put(error_body("payload_too_large", "frame is too large / 消息过大"))
                continue
            try:
                frame = json.loads(raw)
            except json.JSONDecodeError as exc:
                self._put(error_body("invalid_json", f"frame is not valid JSON: {exc.msg} / 不是合法的 JSON"))
                continue
            await self._act(frame if isinstance(frame, dict) else {})

    async def _act(self, frame: dict[str, Any]) -> None:
        action = frame.get("action")
        if action == "ping":
            await self.service.seen(self.agent)
            self._put({"event": "pong"})
            return
        cid = frame.get("conversation_id")
        if action not in ("watch", "unwatch"):
            self._put(error_body("invalid_request", "action must be watch, unwatch or ping / 未知操作"))
        elif not isinstance(cid, str) or not valid_id(cid):
            self._put(
                error_body("invalid_conversation_id", "conversation_id must be 1-128 characters of [A-Za-z0-9._:-]")
            )
        elif action == "unwatch":
            task = self.watched.pop(cid, None)
            if task is not None:
                task.cancel()
            self._put({"event": "unwatched", "conversation_id": cid})
        elif cid in self.watched:
            self._put({"event": "watching", "conversation_id": cid})
        elif len(self.watched) >= MAX_WATCHED:
            self._put(error_body("too_many_watched", f"a console follows at most {MAX_WATCHED} conversations"))
        else:

            async def watching() -> dict[str, Any]:
                return {"event": "watching", "conversation_id": cid}

            self.watched[cid] = asyncio.create_task(
                self._follow(conversation_topic(cid), watching), name=f"kefu-agent-ws-{cid}"
            )
