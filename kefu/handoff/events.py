"""The live events of handovers on the ``ConversationHub``, one builder each (documented in docs/handoff.md).

On a conversation's topic (the customer's widget and the agents' consoles listen): ``owner`` when the
conversation changes hands, ``customer_message`` for a customer's message while people own it (widgets
ignore it: they sent it), and ``message`` for what the bot or an agent said (the ``Outbox`` publishes
agents' messages). On ``AGENTS`` (consoles only): ``queue`` changes, ``note`` and ``ticket``. An internal
note is never published on a conversation's topic: a customer's widget listens there.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from kefu.core.types import Owner
from kefu.handoff.domain import Note, QueueEntry, Ticket

QueueAction = Literal["added", "claimed", "returned", "closed", "updated"]


def owner_event(conversation_id: str, owner: Owner, agent: str | None, reason: str, now: datetime) -> dict[str, Any]:
    return {
        "event": "owner",
        "conversation_id": conversation_id,
        "owner": owner,
        "agent": agent,
        "reason": reason,
        "ts": now.isoformat(),
    }


def queue_event(action: QueueAction, entry: QueueEntry, now: datetime) -> dict[str, Any]:
    return {"event": "queue", "action": action, "conversation_id": entry.conversation_id, "entry": entry.to_dict(now)}


def customer_message_event(
    conversation_id: str, message_id: str, text: str, owner: Owner, ts: datetime
) -> dict[str, Any]:
    return {
        "event": "customer_message",
        "conversation_id": conversation_id,
        "message_id": message_id,
        "role": "user",
        "text": text,
        "owner": owner,
        "ts": ts.isoformat(),
    }


def note_event(conversation_id: str, note: Note) -> dict[str, Any]:
    return {"event": "note", "conversation_id": conversation_id, "note": note.to_dict()}


def ticket_event(action: Literal["opened", "updated"], ticket: Ticket) -> dict[str, Any]:
    return {"event": "ticket", "action": action, "conversation_id": ticket.conversation_id, "ticket": ticket.to_dict()}
