"""The event-sourced conversation store on SQLAlchemy (SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker

from kefu.core.types import (
    ConversationSnapshot,
    DialogueState,
    DuplicateMessage,
    Event,
    InboundMessage,
    Locale,
    Owner,
    Role,
    StaleConversation,
    StoredTurn,
    TranscriptMessage,
    TurnResult,
)
from kefu.store.group_commit import GroupCommitter
from kefu.store.models import ConversationRow, EventRow, FeedbackRow, TurnRow


@dataclass(frozen=True, slots=True)
class _PendingTurn:
    conversation_id: str
    expected_seq: int
    new_conversation: dict[str, Any] | None
    state: dict[str, Any]
    events: list[dict[str, Any]]
    turn: dict[str, Any]


# Event types that carry a transcript line, and who spoke it.
_TRANSCRIPT_ROLES: dict[str, Role] = {
    "message_received": "user",
    "reply_sent": "bot",
    "agent_message": "agent",
}


def _utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every stored time is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# Rewrites a payload before it is stored: ``(event type, payload) -> payload`` (PII redaction, sealing).
Scrub = Callable[[str, Mapping[str, Any]], dict[str, Any]]


def _keep(_event_type: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    return dict(payload)


class SqlConversationStore:
    """Appends each turn's events, the turn's answer and the conversation projection in one transaction.
    Everything written passes through ``scrub`` first, so no raw PII reaches the database."""

    def __init__(self, engine: AsyncEngine, scrub: Scrub | None = None) -> None:
        self.engine = engine
        self.scrub: Scrub = scrub or _keep
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._committer: GroupCommitter[_PendingTurn] = GroupCommitter(engine, self._write_turns)

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def find_turn(self, conversation_id: str, message_id: str) -> StoredTurn | None:
        async with self.engine.connect() as connection:
            return await _stored_turn(connection, conversation_id, message_id)

    async def open_turn(
        self, conversation_id: str, message_id: str
    ) -> tuple[StoredTurn | None, ConversationSnapshot | None]:
        """What a new turn needs, in one round trip: an earlier answer to this message, and the conversation."""
        async with self.engine.connect() as connection:
            stored = await _stored_turn(connection, conversation_id, message_id)
            if stored is not None:
                return stored, None
            row = (
                await connection.execute(select(ConversationRow).where(ConversationRow.id == conversation_id))
            ).first()
        return None, None if row is None else _snapshot(row)

    async def load(self, conversation_id: str) -> ConversationSnapshot | None:
        async with self._sessions() as session:
            row = await session.get(ConversationRow, conversation_id)
            return None if row is None else _snapshot(row)

    async def commit_turn(
        self,
        message: InboundMessage,
        snapshot: ConversationSnapshot,
        events: Sequence[Event],
        result: TurnResult,
    ) -> None:
        now = datetime.now(UTC)
        first_seq = snapshot.last_seq + 1
        state = {
            "owner": snapshot.owner,
            "dialogue": snapshot.dialogue.to_dict(),
            "locale": snapshot.locale,
            "last_seq": snapshot.last_seq + len(events),
            "updated_at": now,
        }
        pending = _PendingTurn(
            conversation_id=message.conversation_id,
            expected_seq=snapshot.last_seq,
            new_conversation=(
                {
                    "id": message.conversation_id,
                    "user_id": message.user_id,
                    "channel": message.channel,
                    "created_at": now,
                    **state,
                }
                if snapshot.last_seq == 0
                else None
            ),
            state=state,
            events=[
                {
                    "conversation_id": message.conversation_id,
                    "seq": first_seq + i,
                    "type": e.type,
                    "message_id": e.message_id,
                    "payload": self.scrub(e.type, e.payload),
                    "created_at": now,
                }
                for i, e in enumerate(events)
            ],
            turn={
                "conversation_id": message.conversation_id,
                "message_id": message.message_id,
                "first_seq": first_seq,
                "last_seq": state["last_seq"],
                "request_sha256": message.request_sha256,
                "result": self.scrub("turn_result", result.to_dict()),
                "created_at": now,
            },
        )
        try:
            await self._committer.submit(pending)
        except IntegrityError as exc:
            # Either this message was stored by another writer (a duplicate), or the conversation itself
            # was created or extended by one (two first turns at once, a clashing sequence number).
            if await self.find_turn(message.conversation_id, message.message_id) is not None:
                raise DuplicateMessage(f"{message.conversation_id}/{message.message_id}") from exc
            raise StaleConversation(f"{message.conversation_id}: written concurrently ({exc.orig})") from exc

    @staticmethod
    async def _write_turns(connection: AsyncConnection, turns: Sequence[_PendingTurn]) -> None:
        """One transaction for several turns (of different conversations: each holds its lock)."""
        created = [t.new_conversation for t in turns if t.new_conversation is not None]
        if created:
            await connection.execute(insert(ConversationRow), created)
        for turn in turns:
            if turn.new_conversation is not None:
                continue
            # Optimistic check on last_seq: a writer that lost a race fails instead of forking the log.
            updated = await connection.execute(
                update(ConversationRow)
                .where(ConversationRow.id == turn.conversation_id, ConversationRow.last_seq == turn.expected_seq)
                .values(**turn.state)
            )
            if updated.rowcount != 1:
                raise StaleConversation(f"{turn.conversation_id} changed by another writer")
        await connection.execute(insert(EventRow), [row for t in turns for row in t.events])
        await connection.execute(insert(TurnRow), [t.turn for t in turns])

    async def append_events(
        self, conversation_id: str, events: Sequence[Event], *, rows: Sequence[Any] = (), **changes: Any
    ) -> bool:
        """Append events (and extra rows) outside a customer turn, atomically; False if no such conversation."""
        now = datetime.now(UTC)
        async with self._sessions.begin() as session:
            row = await session.get(ConversationRow, conversation_id, with_for_update=True)
            if row is None:
                return False
            session.add_all(rows)
            for i, e in enumerate(events, start=1):
                session.add(
                    EventRow(
                        conversation_id=conversation_id,
                        seq=row.last_seq + i,
                        type=e.type,
                        message_id=e.message_id,
                        payload=self.scrub(e.type, e.payload),
                        created_at=now,
                    )
                )
            row.last_seq += len(events)
            row.updated_at = now
            for key, value in changes.items():
                setattr(row, key, value)
        return True

    async def add_feedback(self, conversation_id: str, rating: int, comment: str | None) -> bool:
        stored = self.scrub("feedback", {"comment": comment})["comment"] if comment else comment
        feedback = FeedbackRow(
            conversation_id=conversation_id, rating=rating, comment=stored, created_at=datetime.now(UTC)
        )
        event = Event("feedback", {"rating": rating, "comment": comment})
        return await self.append_events(conversation_id, [event], rows=[feedback])

    async def set_owner(self, conversation_id: str, owner: Owner, reason: str) -> bool:
        snapshot = await self.load(conversation_id)
        if snapshot is None:
            return False
        event = Event("owner_changed", {"from": snapshot.owner, "to": owner, "reason": reason})
        dialogue = DialogueState().to_dict() if owner != "bot" else snapshot.dialogue.to_dict()
        return await self.append_events(conversation_id, [event], owner=owner, dialogue=dialogue)

    async def transcript(self, conversation_id: str) -> list[TranscriptMessage] | None:
        async with self._sessions() as session:
            if await session.get(ConversationRow, conversation_id) is None:
                return None
            rows = await session.execute(
                select(EventRow.type, EventRow.payload, EventRow.created_at)
                .where(EventRow.conversation_id == conversation_id, EventRow.type.in_(list(_TRANSCRIPT_ROLES)))
                .order_by(EventRow.seq)
            )
            messages = []
            for event_type, payload, created_at in rows:
                text_value = str(payload.get("text", ""))
                if event_type == "reply_sent" and not text_value:
                    continue
                messages.append(TranscriptMessage(_TRANSCRIPT_ROLES[event_type], text_value, _utc(created_at)))
            return messages

    async def events(self, conversation_id: str) -> list[tuple[int, str, str | None, dict[str, Any]]]:
        """The raw event log, in order: ``(seq, type, message_id, payload)``."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(EventRow.seq, EventRow.type, EventRow.message_id, EventRow.payload)
                .where(EventRow.conversation_id == conversation_id)
                .order_by(EventRow.seq)
            )
            return [(seq, kind, mid, payload) for seq, kind, mid, payload in rows]


def _snapshot(row: Any) -> ConversationSnapshot:
    return ConversationSnapshot(
        conversation_id=row.id,
        owner=cast(Owner, row.owner),
        dialogue=DialogueState.from_dict(row.dialogue),
        last_seq=row.last_seq,
        user_id=row.user_id,
        channel=row.channel,
        locale=cast(Locale | None, row.locale),
    )


async def _stored_turn(connection: AsyncConnection, conversation_id: str, message_id: str) -> StoredTurn | None:
    row = (
        await connection.execute(
            select(TurnRow.result, TurnRow.request_sha256).where(
                TurnRow.conversation_id == conversation_id, TurnRow.message_id == message_id
            )
        )
    ).first()
    return None if row is None else StoredTurn(TurnResult.from_dict(row.result, replayed=True), row.request_sha256)
