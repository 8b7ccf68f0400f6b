"""The handover tables on SQLAlchemy (SQLite or PostgreSQL): the queue, claims, tickets, presence, and the
events an agent's action appends to the conversation's log, each action in one transaction.

A claim is decided in the database: the conversation row is locked (PostgreSQL) and the handover is moved
from ``waiting`` to ``claimed`` only if it is still waiting, so of two agents claiming at once exactly one
wins, on one replica or several. Appended events go through the conversation store's ``scrub`` like every
other event (PII redacted), and move ``last_seq`` on, so a turn running at the same time without the
conversation lock redoes itself on the new state instead of forking the log.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from kefu.core.types import DialogueState, Event, Locale
from kefu.handoff.domain import (
    Agent,
    AgentReply,
    AlreadyClaimed,
    Contact,
    ConversationClosed,
    ConversationNotFound,
    MessageIdReused,
    Note,
    NotOwner,
    NotWaiting,
    QueueEntry,
    Summary,
    Ticket,
)
from kefu.handoff.reads import HandoffReads, entry_of, ticket_of, utc
from kefu.store.conversations import Scrub
from kefu.store.models import ConversationRow, EventRow, HandoffRow, TicketRow


@dataclass(frozen=True, slots=True)
class Delivered:
    """An agent's message as stored, and where to send it."""

    reply: AgentReply
    channel: str
    user_id: str | None


@dataclass(frozen=True, slots=True)
class Opened:
    entry: QueueEntry
    ticket: Ticket | None
    created: bool  # False: this handover (or another open one) was already queued


class HandoffStore(HandoffReads):
    """The handover tables: every read (``HandoffReads``) and every write, each one transaction."""

    def __init__(self, engine: AsyncEngine, scrub: Scrub) -> None:
        super().__init__(engine)
        self.scrub = scrub

    # --- the handover itself (called after the handing-over turn is stored) ---

    async def open(
        self,
        *,
        conversation_id: str,
        message_id: str,
        reason: str,
        language: Locale,
        channel: str,
        agents_online: bool,
        summary: Summary,
        contact: Contact,
        now: datetime,
    ) -> Opened:
        """Queue the handover (and open a ticket when no agent is online). Idempotent: the same turn, or a
        conversation already in the queue, gives back what is there."""
        try:
            async with self._sessions.begin() as session:
                existing = await self._active(session, conversation_id)
                if existing is not None:
                    return Opened(entry_of(existing), await self._ticket_of(session, existing.id), False)
                row = HandoffRow(
                    conversation_id=conversation_id,
                    message_id=message_id,
                    status="waiting",
                    reason=reason[:64],
                    language=language,
                    channel=channel[:32],
                    agents_online=agents_online,
                    summary=summary.to_dict(),
                    requested_at=now,
                )
                session.add(row)
                await session.flush()
                ticket = None
                if not agents_online:
                    ticket = TicketRow(
                        conversation_id=conversation_id,
                        handoff_id=row.id,
                        status="open",
                        reason=reason[:64],
                        language=language,
                        phone=contact.phone,
                        email=contact.email,
                        summary=summary.to_dict(),
                        created_at=now,
                        updated_at=now,
                    )
                    session.add(ticket)
                    await session.flush()
                return Opened(entry_of(row), ticket_of(ticket) if ticket else None, True)
        except IntegrityError:
            # Another writer queued this conversation between our check and our insert.
            async with self._sessions() as session:
                existing = await self._active(session, conversation_id)
                if existing is None:
                    raise
                return Opened(entry_of(existing), await self._ticket_of(session, existing.id), False)

    async def set_summary(self, handoff_id: int, summary: Summary) -> QueueEntry | None:
        async with self._sessions.begin() as session:
            row = await session.get(HandoffRow, handoff_id)
            if row is None:
                return None
            row.summary = summary.to_dict()
            await session.execute(
                update(TicketRow).where(TicketRow.handoff_id == handoff_id).values(summary=summary.to_dict())
            )
            return entry_of(row)

    async def add_contact(self, conversation_id: str, contact: Contact, now: datetime) -> Ticket | None:
        """Contact details for the open ticket of a waiting handover that has none yet; None otherwise."""
        async with self._sessions.begin() as session:
            active = await self._active(session, conversation_id)
            if active is None or active.status != "waiting":
                return None
            ticket = await session.scalar(
                select(TicketRow).where(TicketRow.handoff_id == active.id, TicketRow.status == "open")
            )
            if ticket is None or ticket.phone or ticket.email:
                return None
            ticket.phone, ticket.email, ticket.updated_at = contact.phone, contact.email, now
            await session.flush()
            return ticket_of(ticket)

    async def wants_contact(self, conversation_id: str) -> bool:
        """Whether the conversation waits in the queue with a ticket that has no contact details yet."""
        query = (
            select(func.count())
            .select_from(TicketRow)
            .join(HandoffRow, HandoffRow.id == TicketRow.handoff_id)
            .where(
                HandoffRow.conversation_id == conversation_id,
                HandoffRow.status == "waiting",
                TicketRow.status == "open",
                TicketRow.phone.is_(None),
                TicketRow.email.is_(None),
            )
        )
        async with self.engine.connect() as connection:
            return bool((await connection.execute(query)).scalar_one())

    # --- an agent's actions: each one transaction, on the locked conversation row ---

    async def claim(self, conversation_id: str, agent: Agent, now: datetime) -> tuple[QueueEntry, bool]:
        """The claimed handover, and whether this call claimed it (False: the caller already held it)."""
        async with self._sessions.begin() as session:
            conversation = await self._conversation(session, conversation_id)
            active = await self._active(session, conversation_id)
            if active is None:
                raise NotWaiting(f"conversation {conversation_id!r} is not waiting for an agent")
            if active.status == "claimed":
                if active.assignee == agent.id:
                    return entry_of(active, conversation.user_id), False
                raise AlreadyClaimed(f"{active.assignee_name or active.assignee} already has this conversation")
            won = await session.execute(
                update(HandoffRow)
                .where(HandoffRow.id == active.id, HandoffRow.status == "waiting")
                .values(status="claimed", assignee=agent.id, assignee_name=agent.name, claimed_at=now)
                .execution_options(synchronize_session=False)
            )
            if cast(Any, won).rowcount != 1:
                raise AlreadyClaimed(f"another agent claimed conversation {conversation_id!r} first")
            await session.refresh(active)
            event = Event("agent_claimed", {"agent": agent.name, "agent_id": agent.id, "handoff_id": active.id})
            self._append(session, conversation, [event], now)
            return entry_of(active, conversation.user_id), True

    async def send(self, conversation_id: str, agent: Agent, message_id: str, text: str, now: datetime) -> Delivered:
        async with self._sessions.begin() as session:
            conversation = await self._conversation(session, conversation_id, allow_closed=True)
            earlier = await session.scalar(
                select(EventRow).where(
                    EventRow.conversation_id == conversation_id,
                    EventRow.type == "agent_message",
                    EventRow.message_id == message_id,
                )
            )
            if earlier is not None:
                if earlier.payload.get("fingerprint") != fingerprint(agent, text):
                    raise MessageIdReused(f"message_id {message_id!r} was already used for another message")
                reply = AgentReply(
                    conversation_id,
                    message_id,
                    str(earlier.payload.get("text") or ""),
                    agent.name,
                    cast(datetime, utc(earlier.created_at)),
                    replayed=True,
                )
                return Delivered(reply, conversation.channel, conversation.user_id)
            if conversation.owner == "closed":
                raise ConversationClosed(f"conversation {conversation_id!r} is closed")
            await self._held_by(session, conversation_id, agent)
            payload = {"text": text, "agent": agent.name, "agent_id": agent.id, "fingerprint": fingerprint(agent, text)}
            self._append(session, conversation, [Event("agent_message", payload, message_id)], now)
            reply = AgentReply(conversation_id, message_id, text, agent.name, now)
            return Delivered(reply, conversation.channel, conversation.user_id)

    async def note(self, conversation_id: str, agent: Agent, text: str, now: datetime) -> Note:
        """Any agent may leave a note, whoever holds the conversation (that is what notes are for)."""
        async with self._sessions.begin() as session:
            conversation = await self._conversation(session, conversation_id, allow_closed=True)
            note_id = uuid.uuid4().hex
            payload = {"text": text, "agent": agent.name, "agent_id": agent.id, "note_id": note_id}
            stored = self._append(session, conversation, [Event("agent_note", payload)], now)
            return Note(str(stored[0].payload.get("text") or ""), agent.id, agent.name, now, note_id)

    async def release(
        self, conversation_id: str, agent: Agent, now: datetime, *, resolution: str | None = None
    ) -> QueueEntry:
        """Give the conversation back to the bot (``resolution`` None) or close it with ``resolution``."""
        async with self._sessions.begin() as session:
            conversation = await self._conversation(session, conversation_id)
            active = await self._held_by(session, conversation_id, agent)
            closing = resolution is not None
            active.status = "closed" if closing else "returned"
            active.ended_at = now
            active.resolution = resolution
            if closing:
                await session.execute(
                    update(TicketRow)
                    .where(TicketRow.handoff_id == active.id, TicketRow.status == "open")
                    .values(status="closed", closed_at=now, updated_at=now)
                )
            owner = "closed" if closing else "bot"
            payload: dict[str, Any] = {
                "from": conversation.owner,
                "to": owner,
                "reason": "closed_by_agent" if closing else "returned_by_agent",
                "agent": agent.name,
            }
            if closing:
                payload["resolution"] = resolution
            self._append(session, conversation, [Event("owner_changed", payload)], now)
            conversation.owner = owner
            conversation.dialogue = DialogueState().to_dict()
            return entry_of(active, conversation.user_id)

    # --- helpers ---

    async def _conversation(
        self, session: AsyncSession, conversation_id: str, *, allow_closed: bool = False
    ) -> ConversationRow:
        if self.engine.dialect.name == "sqlite":
            # SQLite has no FOR UPDATE: a no-op write takes the write lock first, so what is read next is what
            # the last writer committed (another process's claim included), not an older snapshot.
            await session.execute(
                update(ConversationRow)
                .where(ConversationRow.id == conversation_id)
                .values(last_seq=ConversationRow.last_seq)
                .execution_options(synchronize_session=False)
            )
        conversation = await session.get(ConversationRow, conversation_id, with_for_update=True)
        if conversation is None:
            raise ConversationNotFound(f"no conversation {conversation_id!r}")
        if conversation.owner == "closed" and not allow_closed:
            raise ConversationClosed(f"conversation {conversation_id!r} is closed")
        return conversation

    @staticmethod
    async def _ticket_of(session: AsyncSession, handoff_id: int) -> Ticket | None:
        row = await session.scalar(select(TicketRow).where(TicketRow.handoff_id == handoff_id))
        return None if row is None else ticket_of(row)

    async def _held_by(self, session: AsyncSession, conversation_id: str, agent: Agent) -> HandoffRow:
        active = await self._active(session, conversation_id)
        if active is None or active.status != "claimed":
            raise NotOwner(f"claim conversation {conversation_id!r} first")
        if active.assignee != agent.id:
            raise NotOwner(f"{active.assignee_name or active.assignee} has this conversation, not you")
        return active

    def _append(
        self, session: AsyncSession, conversation: ConversationRow, events: Sequence[Event], now: datetime
    ) -> list[EventRow]:
        rows = [
            EventRow(
                conversation_id=conversation.id,
                seq=conversation.last_seq + i,
                type=e.type,
                message_id=e.message_id,
                payload=self.scrub(e.type, e.payload),
                created_at=now,
            )
            for i, e in enumerate(events, start=1)
        ]
        session.add_all(rows)
        conversation.last_seq += len(events)
        conversation.updated_at = now
        return rows


_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def fingerprint(agent: Agent, text: str) -> str:
    """Tells a retried agent message from a reused ``message_id``. Letters only: the store's PII scrub
    would take a run of hex digits for a phone or card number."""
    return hashlib.sha256(f"{agent.id}\x1f{text}".encode()).hexdigest().translate(_LETTERS)
