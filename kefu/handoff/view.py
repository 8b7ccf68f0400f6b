"""An agent's view of one conversation, from its events (pure): the transcript with who said what, the
changes of hands, the internal notes, and the part of the transcript the bot handled before the handover."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kefu.handoff.domain import Note
from kefu.handoff.reads import ViewEvent

TRANSCRIPT = {"message_received": "user", "reply_sent": "bot", "agent_message": "agent"}


@dataclass(frozen=True, slots=True)
class Timeline:
    messages: list[dict[str, Any]]  # role user / bot / agent / system, oldest first
    notes: list[Note]


def timeline(events: Sequence[ViewEvent]) -> Timeline:
    messages: list[dict[str, Any]] = []
    notes: list[Note] = []
    for event in events:
        payload = event.payload
        ts = event.ts.isoformat()
        role = TRANSCRIPT.get(event.type)
        if role is not None:
            text = str(payload.get("text") or "")
            if not text:  # the bot stayed silent
                continue
            line: dict[str, Any] = {"role": role, "text": text, "ts": ts, "message_id": event.message_id}
            if role == "agent":
                line["agent"] = payload.get("agent")
            messages.append(line)
        elif event.type == "owner_changed":
            messages.append(
                {
                    "role": "system",
                    "kind": "owner",
                    "from": payload.get("from"),
                    "to": payload.get("to"),
                    "reason": payload.get("reason"),
                    "agent": payload.get("agent"),
                    "resolution": payload.get("resolution"),
                    "ts": ts,
                }
            )
        elif event.type == "agent_claimed":
            messages.append({"role": "system", "kind": "claimed", "agent": payload.get("agent"), "ts": ts})
        elif event.type == "agent_note":
            notes.append(
                Note(
                    str(payload.get("text") or ""),
                    str(payload.get("agent_id") or ""),
                    str(payload.get("agent") or ""),
                    event.ts,
                    str(payload.get("note_id") or ""),
                )
            )
    return Timeline(messages, notes)


def bot_part(messages: Sequence[dict[str, Any]], handed_over_at: datetime | None) -> list[dict[str, Any]]:
    """What the customer and the bot said up to the (latest) handover."""
    return [
        m
        for m in messages
        if m["role"] in ("user", "bot")
        and (handed_over_at is None or datetime.fromisoformat(m["ts"]) <= handed_over_at)
    ]
