"""What every channel shares: the outbound message, how it is delivered, and the live hub.

A customer's turn is answered on the request that carried it (HTTP, WebSocket, a passive WeChat reply).
Everything said later, by an agent or by a turn a Kafka worker ran, goes through the ``Outbox``: it is
published on the ``ConversationHub`` (open widgets and consoles see it at once) and handed to the
``Delivery`` registered for the conversation's channel (WeChat's customer-service API, a webhook callback,
the Kafka outbound topic).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from kefu.core.types import InboundMessage, Owner, TurnResult

log = logging.getLogger(__name__)

Speaker = Literal["bot", "agent", "system"]


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """Something said to a customer. ``to_dict`` is the ``kefu.outbound`` Kafka value (plus ``role``,
    ``channel`` and ``user_id`` so a gateway knows where to deliver it)."""

    conversation_id: str
    message_id: str
    in_reply_to: str | None
    text: str
    handoff: bool
    owner: Owner
    role: Speaker = "bot"
    channel: str = "web"
    user_id: str | None = None
    ts: datetime = field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def from_turn(cls, message: InboundMessage, result: TurnResult) -> OutboundMessage:
        return cls(
            conversation_id=result.conversation_id,
            message_id=f"{result.message_id}:reply",
            in_reply_to=result.message_id,
            text=result.reply.text,
            handoff=result.handoff,
            owner=result.owner,
            role="bot",
            channel=message.channel,
            user_id=message.user_id,
        )

    @classmethod
    def said_by(
        cls, role: Speaker, conversation_id: str, text: str, owner: Owner, *, channel: str, user_id: str | None
    ) -> OutboundMessage:
        """A message nobody asked for just now (an agent's reply, a notice)."""
        return cls(conversation_id, uuid.uuid4().hex, None, text, owner == "agent", owner, role, channel, user_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id,
            "message_id": self.message_id,
            "in_reply_to": self.in_reply_to,
            "text": self.text,
            "handoff": self.handoff,
            "owner": self.owner,
            "role": self.role,
            "channel": self.channel,
            "user_id": self.user_id,
            "ts": self.ts.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutboundMessage:
        return cls(
            conversation_id=str(data["conversation_id"]),
            message_id=str(data["message_id"]),
            in_reply_to=data.get("in_reply_to"),
            text=str(data["text"]),
            handoff=bool(data.get("handoff", False)),
            owner=data.get("owner", "bot"),
            role=data.get("role", "bot"),
            channel=str(data.get("channel") or "web"),
            user_id=data.get("user_id"),
            ts=datetime.fromisoformat(data["ts"]) if data.get("ts") else datetime.now(UTC),
        )


class Delivery(Protocol):
    """Sends an outbound message to the customer over one channel."""

    async def deliver(self, message: OutboundMessage) -> None: ...


class ConversationHub(Protocol):
    """Live events per conversation (``{"event": "message" | "owner" | ..., ...}``) and on the agents'
    topic ``AGENTS`` (queue changes). In-process by default; Redis pub/sub across replicas."""

    async def publish(self, topic: str, event: dict[str, Any]) -> None: ...

    def subscribe(self, topic: str) -> AbstractAsyncContextManager[AsyncIterator[dict[str, Any]]]: ...

    async def close(self) -> None: ...


AGENTS = "agents"  # the hub topic every agent console listens on


def conversation_topic(conversation_id: str) -> str:
    return f"conversation:{conversation_id}"


class Outbox:
    """Routes what is said outside a customer's own request: to the hub, then to the channel's delivery.
    A delivery that fails is logged and the message stays in the transcript (the widget shows it on
    reload); the caller has already stored it."""

    def __init__(self, hub: ConversationHub) -> None:
        self.hub = hub
        self._deliveries: dict[str, Delivery] = {}

    def register(self, channel: str, delivery: Delivery) -> None:
        self._deliveries[channel] = delivery

    def delivery(self, channel: str) -> Delivery | None:
        return self._deliveries.get(channel)

    async def send(self, message: OutboundMessage) -> bool:
        """Publishes ``message`` and delivers it; False when its channel's delivery failed."""
        await self.hub.publish(conversation_topic(message.conversation_id), {"event": "message", **message.to_dict()})
        delivery = self._deliveries.get(message.channel)
        if delivery is None:
            return True
        try:
            await delivery.deliver(message)
        except Exception:  # the message is stored; a failed push must not fail the agent's request
            log.exception(
                "delivery failed", extra={"channel": message.channel, "conversation_id": message.conversation_id}
            )
            return False
        return True
