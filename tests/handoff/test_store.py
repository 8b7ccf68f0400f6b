"""The handover tables on SQLite and PostgreSQL: the queue, claims (two agents on two "replicas" claiming at
once: exactly one wins), agents' messages (idempotent), notes, return and close, tickets and presence."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from kefu.core.types import ConversationSnapshot, DialogueState, Event, IntentScore, Reply, TurnResult
from kefu.guard.storage import PayloadScrubber
from kefu.handoff.domain import (
    Agent,
    AlreadyClaimed,
    Contact,
    ConversationClosed,
    ConversationNotFound,
    MessageIdReused,
    NotOwner,
    NotWaiting,
    Summary,
)
from kefu.handoff.presence import PresenceStore
from kefu.handoff.store import HandoffStore, Opened
from kefu.store.conversations import SqlConversationStore
from kefu.store.database import create_engine, migrate
from kefu.store.models import AgentPresenceRow, ConversationRow, EventRow
from tests.conftest import message

pytestmark = pytest.mark.asyncio
ALICE, BOB = Agent("alice", "Alice"), Agent("key:bob01", "bob01")
SUMMARY = Summary("诉求：退货", "extractive", "return_refund", ("100002",))


@pytest.fixture
async def engines(database_url: str) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """Two engines on one database: two replicas."""
    first, second = create_engine(database_url), create_engine(database_url)
    await migrate(first)
    async with first.begin() as connection:
        await connection.execute(delete(AgentPresenceRow))  # the PostgreSQL database is the session's
    yield first, second
    await first.dispose()
    await second.dispose()


def _cid() -> str:
    return f"hs-{uuid.uuid4().hex[:12]}"


async def _conversation(engine: AsyncEngine, cid: str, owner: str = "agent") -> SqlConversationStore:
    """A conversation with one handing-over turn, stored by the real conversation store."""
    store = SqlConversationStore(engine, PayloadScrubber())
    msg = message(cid, "转人工", "m1")
    events = [Event("message_received", {"text": "转人工"}, "m1"), Event("reply_sent", {"text": "好的"}, "m1")]
    result = TurnResult(cid, "m1", Reply("好的"), IntentScore("human_agent", 0.9), (), "handoff", True, "agent")
    snapshot = ConversationSnapshot(cid, owner, DialogueState(), 0)  # type: ignore[arg-type]
    await store.commit_turn(msg, snapshot, events, result)
    return store


async def _open(store: HandoffStore, cid: str, *, online: bool = True, contact: Contact | None = None) -> Opened:
    return await store.open(
        conversation_id=cid,
        message_id="m1",
        reason="customer_request",
        language="zh",
        channel="web",
        agents_online=online,
        summary=SUMMARY,
        contact=contact or Contact(),
        now=datetime.now(UTC),
    )


async def _seqs(engine: AsyncEngine, cid: str) -> tuple[list[int], int]:
    async with engine.connect() as connection:
        seqs = list(
            (
                await connection.execute(
                    select(EventRow.seq).where(EventRow.conversation_id == cid).order_by(EventRow.seq)
                )
            ).scalars()
        )
        last = (
            await connection.execute(select(ConversationRow.last_seq).where(ConversationRow.id == cid))
        ).scalar_one()
    return seqs, last


async def _count(engine: AsyncEngine, cid: str, kind: str) -> int:
    query = select(func.count()).select_from(EventRow).where(EventRow.conversation_id == cid, EventRow.type == kind)
    async with engine.connect() as connection:
        return int((await connection.execute(query)).scalar_one())


async def test_queue_entry_is_opened_once(engines: tuple[AsyncEngine, AsyncEngine]) -> None:
    engine, _ = engines
    cid = _cid()
    conversations = await _conversation(engine, cid)
    store = HandoffStore(engine, conversations.scrub)
    first = await _open(store, cid)
    assert first.created and first.ticket is None and first.entry.status == "waiting"
    again = await _open(store, cid)  # the same turn announced twice, or another replica queueing it
    assert not again.created and again.entry.id == first.entry.id
    waiting = [e for e in await store.entries(["waiting"]) if e.conversation_id == cid]
    assert len(waiting) == 1 and waiting[0].summary == SUMMARY and waiting[0].reason == "customer_request"
    assert (await store.latest(cid)) == waiting[0]
    with pytest.raises(ConversationNotFound):
        await store.claim("no-such-conversation", ALICE, datetime.now(UTC))


async def test_two_agents_on_two_replicas_claim_at_once_exactly_one_wins(
    engines: tuple[AsyncEngine, AsyncEngine],
) -> None:
    first, second = engines
    cids = [_cid() for _ in range(8)]
    for cid in cids:
        conversations = await _conversation(first, cid)
        await _open(HandoffStore(first, conversations.scrub), cid)
    replica_a, replica_b = HandoffStore(first, PayloadScrubber()), HandoffStore(second, PayloadScrubber())
    now = datetime.now(UTC)
    outcomes = await asyncio.gather(
        *(store.claim(cid, agent, now) for cid in cids for store, agent in ((replica_a, ALICE), (replica_b, BOB))),
        return_exceptions=True,
    )
    for i, cid in enumerate(cids):
        pair = outcomes[2 * i : 2 * i + 2]
        won = [o for o in pair if not isinstance(o, BaseException)]
        lost = [o for o in pair if isinstance(o, BaseException)]
        assert len(won) == 1 and len(lost) == 1, pair
        assert isinstance(lost[0], AlreadyClaimed)
        entry, claimed_now = won[0]
        assert claimed_now and entry.status == "claimed" and entry.assignee in (ALICE.id, BOB.id)
        assert await _count(first, cid, "agent_claimed") == 1
        seqs, last = await _seqs(first, cid)
        assert seqs == list(range(1, last + 1))  # the log never forks
    # The winner claiming again is a no-op; the loser stays refused.
    entry, _ = won[0]
    winner = ALICE if entry.assignee == ALICE.id else BOB
    loser = BOB if winner is ALICE else ALICE
    assert (await replica_a.claim(cids[-1], winner, now))[1] is False
    with pytest.raises(AlreadyClaimed, match=winner.name):
        await replica_b.claim(cids[-1], loser, now)


async def test_messages_notes_return_and_close(engines: tuple[AsyncEngine, AsyncEngine]) -> None:
    engine, _ = engines
    cid = _cid()
    conversations = await _conversation(engine, cid)
    store = HandoffStore(engine, conversations.scrub)
    await _open(store, cid, online=False, contact=Contact("13812345678"))
    now = datetime.now(UTC)
    with pytest.raises(NotOwner):  # nobody has claimed it yet
        await store.send(cid, ALICE, "a1", "您好", now)
    await store.claim(cid, ALICE, now)
    with pytest.raises(NotOwner, match="Alice"):
        await store.send(cid, BOB, "b1", "hi", now)

    sent = await store.send(cid, ALICE, "a1", "您好，我是客服小王，电话 13900001111", now)
    assert not sent.reply.replayed and sent.channel == "web"
    again = await store.send(cid, ALICE, "a1", "您好，我是客服小王，电话 13900001111", now)
    assert again.reply.replayed and again.reply.text == "您好，我是客服小王，电话 [PHONE]"  # stored redacted
    with pytest.raises(MessageIdReused):
        await store.send(cid, ALICE, "a1", "another text", now)
    assert await _count(engine, cid, "agent_message") == 1
    transcript = await conversations.transcript(cid)
    assert transcript is not None and transcript[-1].role == "agent"

    note = await store.note(cid, BOB, "客户情绪激动 angry customer", now)  # any agent may add a note
    assert note.agent_name == "bob01" and note.note_id
    assert all(m.text != note.text for m in (await conversations.transcript(cid) or []))  # never shown

    returned = await store.release(cid, ALICE, now)
    assert returned.status == "returned" and (await conversations.load(cid)).owner == "bot"  # type: ignore[union-attr]
    with pytest.raises(NotWaiting):
        await store.claim(cid, BOB, now)
    with pytest.raises(NotOwner):
        await store.send(cid, ALICE, "a2", "still there?", now)
    assert [t.status for t in await store.tickets(None, conversation_id=cid)] == ["open"]  # a return keeps it

    # Handed over again, claimed, closed with a resolution: the ticket of that handover closes with it.
    await conversations.set_owner(cid, "agent", "customer_request")
    second = await store.open(
        conversation_id=cid,
        message_id="m9",
        reason="complaint",
        language="zh",
        channel="web",
        agents_online=False,
        summary=SUMMARY,
        contact=Contact(email="li@example.com"),
        now=now,
    )
    assert second.created and second.ticket is not None and second.ticket.contact.email == "li@example.com"
    await store.claim(cid, BOB, now)
    closed = await store.release(cid, BOB, now, resolution="resolved")
    assert (closed.status, closed.resolution) == ("closed", "resolved")
    snapshot = await conversations.load(cid)
    assert snapshot is not None and snapshot.owner == "closed"
    statuses = {t.handoff_id: t.status for t in await store.tickets(None, conversation_id=cid)}
    assert statuses == {returned.id: "open", second.entry.id: "closed"}
    with pytest.raises(ConversationClosed):
        await store.send(cid, BOB, "b2", "bye", now)
    assert (await store.send(cid, ALICE, "a1", "您好，我是客服小王，电话 13900001111", now)).reply.replayed
    seqs, last = await _seqs(engine, cid)
    assert seqs == list(range(1, last + 1))


async def test_ticket_contact_added_once(engines: tuple[AsyncEngine, AsyncEngine]) -> None:
    engine, _ = engines
    cid = _cid()
    conversations = await _conversation(engine, cid)
    store = HandoffStore(engine, conversations.scrub)
    opened = await _open(store, cid, online=False)
    assert opened.ticket is not None and not opened.ticket.contact.known
    assert await store.wants_contact(cid)
    now = datetime.now(UTC)
    added = await store.add_contact(cid, Contact("13812345678"), now)
    assert added is not None and added.contact.phone == "13812345678"
    assert not await store.wants_contact(cid)
    assert await store.add_contact(cid, Contact("13999999999"), now) is None  # the first one stays
    listed = [t for t in await store.tickets("open") if t.conversation_id == cid]
    assert len(listed) == 1 and listed[0].to_dict()["phone"] == "13812345678"
    # Once claimed, contact details are the agent's business: the bot does not take them any more.
    other = _cid()
    await _open(HandoffStore(engine, (await _conversation(engine, other)).scrub), other, online=False)
    await store.claim(other, ALICE, now)
    assert await store.add_contact(other, Contact("13700000000"), now) is None


async def test_presence(engines: tuple[AsyncEngine, AsyncEngine]) -> None:
    first, second = engines
    presence, elsewhere = PresenceStore(first), PresenceStore(second)
    now = datetime.now(UTC)
    assert await presence.online(now, 60) == []
    await presence.seen(ALICE, now - timedelta(seconds=90))
    assert await elsewhere.online(now, 60) == []  # seen too long ago
    await presence.seen(ALICE, now - timedelta(seconds=10))  # the upsert moves it on
    await elsewhere.seen(BOB, now)
    assert await elsewhere.online(now, 60) == [("alice", "Alice"), ("key:bob01", "bob01")]
    await presence.gone(ALICE)
    assert await presence.online(now, 60) == [("key:bob01", "bob01")]


async def test_orphans_are_found(engines: tuple[AsyncEngine, AsyncEngine]) -> None:
    engine, _ = engines
    orphan, queued, with_bot = _cid(), _cid(), _cid()
    await _conversation(engine, orphan)
    conversations = await _conversation(engine, queued)
    await _conversation(engine, with_bot, owner="bot")
    store = HandoffStore(engine, conversations.scrub)
    await _open(store, queued)
    now = datetime.now(UTC)
    assert orphan not in await store.orphans(quiet_since=now - timedelta(seconds=60), limit=10_000)  # too fresh
    found = set(await store.orphans(quiet_since=now + timedelta(seconds=1), limit=10_000))
    assert orphan in found and queued not in found and with_bot not in found
