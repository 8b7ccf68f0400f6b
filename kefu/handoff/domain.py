"""The handover domain, pure: who an agent is, what a queue entry and a ticket hold, the resolution codes,
presence, the customer's contact details, and the refusals an agent's action can meet. No I/O here."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from kefu.core.types import Entity, Locale

Status = Literal["waiting", "claimed", "returned", "closed"]
ACTIVE: tuple[Status, ...] = ("waiting", "claimed")  # an open handover: in the queue, or with an agent
TicketStatus = Literal["open", "closed"]

# How an agent closes a conversation: a fixed set, so reports can count them. Labels for the console.
RESOLUTIONS: dict[str, dict[str, str]] = {
    "resolved": {"en": "Resolved", "zh": "已解决"},
    "refund_issued": {"en": "Refund issued", "zh": "已退款"},
    "replacement_sent": {"en": "Replacement sent", "zh": "已补发/换货"},
    "order_changed": {"en": "Order changed", "zh": "已修改订单"},
    "escalated": {"en": "Escalated", "zh": "已升级处理"},
    "callback_scheduled": {"en": "Callback scheduled", "zh": "已约定回电"},
    "customer_unreachable": {"en": "Customer unreachable", "zh": "联系不上客户"},
    "duplicate": {"en": "Duplicate", "zh": "重复会话"},
    "spam": {"en": "Spam or abuse", "zh": "垃圾/骚扰"},
    "other": {"en": "Other", "zh": "其他"},
}

# Templates the handover adds to the bot's reply (each pack has them; the defaults below stand in for a
# pack that does not). ``{contact}`` is the masked phone number or e-mail address.
NO_AGENT = "handoff_no_agent"
NO_AGENT_ASK_CONTACT = "handoff_no_agent_ask_contact"
CONTACT_NOTED = "handoff_contact_noted"
DEFAULT_TEMPLATES: dict[str, dict[Locale, str]] = {
    NO_AGENT: {
        "en": "No colleague is online right now, so I've opened a ticket for you. We'll contact you at {contact} "
        "as soon as someone is available; you can also keep writing here.",
        "zh": "目前没有人工客服在线，我已为您创建工单。客服上线后会尽快通过 {contact} 联系您，您也可以继续在这里留言。",
    },
    NO_AGENT_ASK_CONTACT: {
        "en": "No colleague is online right now, so I've opened a ticket for you. Please leave a phone number or "
        "an e-mail address and we'll contact you as soon as someone is available.",
        "zh": "目前没有人工客服在线，我已为您创建工单。请留下您的手机号或邮箱，客服上线后会尽快联系您。",
    },
    CONTACT_NOTED: {
        "en": "Thank you, I've added {contact} to your ticket. A colleague will contact you as soon as possible.",
        "zh": "谢谢，已将 {contact} 记录到您的工单中，客服会尽快与您联系。",
    },
}


class HandoffError(Exception):
    """An agent's action that cannot be done; ``status`` and ``code`` are the HTTP answer."""

    status = 409
    code = "conflict"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConversationNotFound(HandoffError):
    status, code = 404, "conversation_not_found"


class ConversationClosed(HandoffError):
    status, code = 409, "conversation_closed"


class NotWaiting(HandoffError):
    status, code = 409, "not_waiting"


class AlreadyClaimed(HandoffError):
    status, code = 409, "already_claimed"


class NotOwner(HandoffError):
    status, code = 403, "not_owner"


class MessageIdReused(HandoffError):
    status, code = 409, "message_id_conflict"


@dataclass(frozen=True, slots=True)
class Agent:
    """A person (or a program with an agent key) answering customers. ``id`` is what is stored as the
    assignee: the username, or ``key:<id>`` for an API key; ``name`` is what customers and colleagues see."""

    id: str
    name: str

    @classmethod
    def of(cls, kind: str, name: str) -> Agent:
        return cls(name if kind == "user" else f"{kind}:{name}", name)


def is_online(seen_at: datetime, now: datetime, window_s: float) -> bool:
    return now - seen_at <= timedelta(seconds=window_s)


def online_since(now: datetime, window_s: float) -> datetime:
    """Agents seen at or after this instant are online."""
    return now - timedelta(seconds=window_s)


@dataclass(frozen=True, slots=True)
class Contact:
    """How to reach a customer, from what they wrote (the NLU's ``phone`` and ``email`` entities)."""

    phone: str | None = None
    email: str | None = None

    @classmethod
    def from_entities(cls, entities: Iterable[Entity]) -> Contact:
        phone = next((e.value for e in entities if e.type == "phone"), None)
        email = next((e.value for e in entities if e.type == "email"), None)
        return cls(phone[:32] if phone else None, email[:254] if email else None)

    @property
    def known(self) -> bool:
        return bool(self.phone or self.email)

    def merged(self, other: Contact) -> Contact:
        return Contact(self.phone or other.phone, self.email or other.email)

    def masked(self) -> str:
        """What the bot repeats back: enough to recognise, not enough to leak (138****5678, a***@x.com)."""
        parts = []
        if self.phone:
            digits = self.phone
            parts.append(digits[:3] + "*" * max(0, len(digits) - 7) + digits[-4:] if len(digits) > 7 else digits)
        if self.email:
            local, _, domain = self.email.partition("@")
            parts.append(f"{local[:1]}***@{domain}")
        return " / ".join(parts)


@dataclass(frozen=True, slots=True)
class Summary:
    """What an agent reads before claiming: one text in the customer's language, and its parts."""

    text: str
    source: Literal["extractive", "llm"]
    intent: str | None = None
    orders: tuple[str, ...] = ()
    key_sentences: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "source": self.source,
            "intent": self.intent,
            "orders": list(self.orders),
            "key_sentences": list(self.key_sentences),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Summary:
        data = data or {}
        source: Literal["extractive", "llm"] = "llm" if data.get("source") == "llm" else "extractive"
        return cls(
            str(data.get("text") or ""),
            source,
            data.get("intent"),
            tuple(str(o) for o in data.get("orders") or ()),
            tuple(str(s) for s in data.get("key_sentences") or ()),
        )


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """One handover as the console lists it."""

    id: int
    conversation_id: str
    status: Status
    reason: str
    language: Locale
    channel: str
    requested_at: datetime
    summary: Summary
    agents_online: bool
    assignee: str | None = None
    assignee_name: str | None = None
    claimed_at: datetime | None = None
    ended_at: datetime | None = None
    resolution: str | None = None
    user_id: str | None = None

    def waiting_s(self, now: datetime) -> float:
        """Seconds the customer waited (or has waited so far) for an agent."""
        until = self.claimed_at or self.ended_at or now
        return max(0.0, (until - self.requested_at).total_seconds())

    def to_dict(self, now: datetime) -> dict[str, Any]:
        return {
            "id": self.id,
            "conversation_id": self.conversation_id,
            "status": self.status,
            "reason": self.reason,
            "language": self.language,
            "channel": self.channel,
            "requested_at": self.requested_at.isoformat(),
            "waiting_s": round(self.waiting_s(now), 1),
            "summary": self.summary.to_dict(),
            "agents_online": self.agents_online,
            "assignee": self.assignee,
            "assignee_name": self.assignee_name,
            "claimed_at": self.claimed_at.isoformat() if self.claimed_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "resolution": self.resolution,
            "user_id": self.user_id,
        }


@dataclass(frozen=True, slots=True)
class Ticket:
    id: int
    conversation_id: str
    handoff_id: int
    status: TicketStatus
    reason: str
    language: Locale
    contact: Contact
    summary: Summary
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "conversation_id": self.conversation_id,
            "handoff_id": self.handoff_id,
            "status": self.status,
            "reason": self.reason,
            "language": self.language,
            "phone": self.contact.phone,
            "email": self.contact.email,
            "contact_needed": not self.contact.known,
            "summary": self.summary.to_dict(),
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
        }


@dataclass(frozen=True, slots=True)
class Note:
    """An agent's internal note on a conversation: colleagues see it, the customer never does."""

    text: str
    agent: str
    agent_name: str
    ts: datetime
    note_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.note_id, "text": self.text, "agent": self.agent_name, "ts": self.ts.isoformat()}


@dataclass(frozen=True, slots=True)
class AgentReply:
    """An agent's message as stored; ``replayed`` when the same ``message_id`` was sent before."""

    conversation_id: str
    message_id: str
    text: str
    agent_name: str
    ts: datetime
    replayed: bool = False
    delivered: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id,
            "message_id": self.message_id,
            "role": "agent",
            "text": self.text,
            "agent": self.agent_name,
            "ts": self.ts.isoformat(),
            "replayed": self.replayed,
            "delivered": self.delivered,
        }


def notice_template(agents_online: bool, contact: Contact) -> str | None:
    """What the bot adds to a handover's reply: nothing while an agent is online; otherwise that nobody
    is, with the contact details it will use, or asking for some."""
    if agents_online:
        return None
    return NO_AGENT if contact.known else NO_AGENT_ASK_CONTACT


_SPACES = re.compile(r"\s+")


def clean_text(text: str) -> str:
    """An agent's text as stored: surrounding blanks dropped (inner ones kept: lists, addresses)."""
    return text.strip()


def one_line(text: str, limit: int) -> str:
    flat = _SPACES.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


@dataclass(frozen=True, slots=True)
class ConversationView:
    """What an agent sees of one conversation: the customer's transcript, internal notes, the handover."""

    conversation_id: str
    owner: str
    state: str
    user_id: str | None
    channel: str
    locale: Locale | None
    messages: list[dict[str, Any]]
    notes: list[Note]
    handoff: QueueEntry | None
    tickets: list[Ticket] = field(default_factory=list)
