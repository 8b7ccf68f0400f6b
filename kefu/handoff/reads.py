"""Reading the handover tables: the queue, one conversation's latest handover, tickets, the events an
agent's view is built from, and conversations left without a queue entry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from kefu.core.types import Locale
from kefu.handoff.domain import ACTIVE, Contact, QueueEntry, Status, Summary, Ticket
from kefu.store.models import ConversationRow, EventRow, HandoffRow, TicketRow

# The events of a conversation an agent's view is built from: the customer's transcript (the first three),
# notes and changes of hands, and what the summary and the order list read.
VIEW_EVENTS = (
    "message_received",
    "reply_sent",
    "agent_message",
    "agent_note",
    "owner_changed",
    "agent_claimed",
    "nlu_parsed",
    "tool_called",
)


def utc(value: datetime | None) -> datetime | None:
    return None if value is None else value if value.tzinfo else value.replace(tzinfo=UTC)


def entry_of(row: HandoffRow, user_id: str | None = None) -> QueueEntry:
    return QueueEntry(
        id=row.id,
        conversation_id=row.conversation_id,
        status=cast(Status, row.status),
        reason=row.reason,
        language=cast(Locale, row.language),
        channel=row.channel,
        requested_at=cast(datetime, utc(row.requested_at)),
        summary=Summary.from_dict(row.summary),
        agents_online=bool(row.agents_online),
        assignee=row.assignee,
        assignee_name=row.assignee_name,
        claimed_at=utc(row.claimed_at),
        ended_at=utc(row.ended_at),
        resolution=row.resolution,
        user_id=user_id,
    )


def ticket_of(row: TicketRow) -> Ticket:
    return Ticket(
        id=row.id,
        conversation_id=row.conversation_id,
        handoff_id=row.handoff_id,
        status="closed" if row.status == "closed" else "open",
        reason=row.reason,
        language=cast(Locale, row.language),
        contact=Contact(row.phone, row.email),
        summary=Summary.from_dict(row.summary),
        created_at=cast(datetime, utc(row.created_at)),
        updated_at=cast(datetime, utc(row.updated_at)),
        closed_at=utc(row.closed_at),
    )


@dataclass(frozen=True, slots=True)
class ViewEvent:
    seq: int
    type: str
    message_id: str | None
    payload: dict[str, Any]
    ts: datetime


class HandoffReads:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)

    async def entries(self, statuses: Sequence[Status], limit: int = 200) -> list[QueueEntry]:
        query = (
            select(HandoffRow, ConversationRow.user_id)
            .join(ConversationRow, ConversationRow.id == HandoffRow.conversation_id)
            .where(HandoffRow.status.in_(list(statuses)))
            .order_by(HandoffRow.requested_at, HandoffRow.id)
            .limit(limit)
        )
        async with self._sessions() as session:
            return [entry_of(row, user_id) for row, user_id in (await session.execute(query)).all()]

    async def latest(self, conversation_id: str) -> QueueEntry | None:
        query = (
            select(HandoffRow, ConversationRow.user_id)
            .join(ConversationRow, ConversationRow.id == HandoffRow.conversation_id)
            .where(HandoffRow.conversation_id == conversation_id)
            .order_by(HandoffRow.id.desc())
            .limit(1)
        )
        async with self._sessions() as session:
            found = (await session.execute(query)).first()
        return None if found is None else entry_of(found[0], found[1])

    async def waiting_count(self) -> int:
        query = select(func.count()).select_from(HandoffRow).where(HandoffRow.status == "waiting")
        async with self.engine.connect() as connection:
            return int((await connection.execute(query)).scalar_one())

    async def tickets(
        self, status: str | None = "open", conversation_id: str | None = None, limit: int = 200
    ) -> list[Ticket]:
        query = select(TicketRow).order_by(TicketRow.created_at.desc(), TicketRow.id.desc()).limit(limit)
        if status is not None:
            query = query.where(TicketRow.status == status)
        if conversation_id is not None:
            query = query.where(TicketRow.conversation_id == conversation_id)
        async with self._sessions() as session:
            return [ticket_of(row) for row in (await session.scalars(query)).all()]

    async def view_events(self, conversation_id: str) -> tuple[ConversationRow, list[ViewEvent]] | None:
        async with self._sessions() as session:
            conversation = await session.get(ConversationRow, conversation_id)
            if conversation is None:
                return None
            rows = await session.execute(
                select(EventRow.seq, EventRow.type, EventRow.message_id, EventRow.payload, EventRow.created_at)
                .where(EventRow.conversation_id == conversation_id, EventRow.type.in_(VIEW_EVENTS))
                .order_by(EventRow.seq)
            )
            events = [
                ViewEvent(seq, kind, mid, dict(payload), cast(datetime, utc(ts)))
                for seq, kind, mid, payload, ts in rows
            ]
            return conversation, events

    async def orphans(self, quiet_since: datetime, limit: int = 50) -> list[str]:
        """Conversations an agent owns, unchanged since ``quiet_since``, with no open handover (a replica
        stopped between a handing-over turn and its queue entry): the service queues them again."""
        active = select(HandoffRow.id).where(
            HandoffRow.conversation_id == ConversationRow.id, HandoffRow.status.in_(list(ACTIVE))
        )
        query = (
            select(ConversationRow.id)
            .where(ConversationRow.owner == "agent", ConversationRow.updated_at < quiet_since, ~active.exists())
            .limit(limit)
        )
        async with self.engine.connect() as connection:
            return list((await connection.execute(query)).scalars())

    @staticmethod
    async def _active(session: AsyncSession, conversation_id: str) -> HandoffRow | None:
        return cast(
            HandoffRow | None,
            await session.scalar(
                select(HandoffRow).where(
                    and_(HandoffRow.conversation_id == conversation_id, HandoffRow.status.in_(list(ACTIVE)))
                )
            ),
        )
