"""The event store, against SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from kefu.core.types import (
    ConversationSnapshot,
    DialogueState,
    DuplicateMessage,
    Event,
    IntentScore,
    Reply,
    StaleConversation,
    TurnResult,
)
from kefu.store.conversations import SqlConversationStore
from kefu.store.database import create_engine, migrate
from tests.conftest import message

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlConversationStore]:
    engine = create_engine(database_url)
    await migrate(engine)
    await migrate(engine)  # idempotent
    async with engine.begin() as connection:  # each test starts from empty tables
        for table in ("feedback", "turns", "events", "conversations"):
            await connection.execute(text(f"DELETE FROM {table}"))
    yield SqlConversationStore(engine)
    await engine.dispose()


def _result(cid: str, mid: str, text: str = "hello") -> TurnResult:
    return TurnResult(cid, mid, Reply(text), IntentScore("greeting", 0.9), (), "idle", False, "bot")


async def _turn(store: SqlConversationStore, cid: str, mid: str, n_events: int = 3) -> None:
    msg = message(cid, f"text {mid}", mid)
    snapshot = await store.load(cid) or ConversationSnapshot(cid, "bot", DialogueState(), 0)
    events = [Event("message_received", {"text": msg.text}, mid)]
    events += [Event("step", {"i": i}, mid) for i in range(n_events - 2)]
    events.append(Event("reply_sent", {"text": f"reply {mid}"}, mid))
    await store.commit_turn(msg, snapshot, events, _result(cid, mid, f"reply {mid}"))


async def test_sequence_numbers_are_per_conversation_and_gapless(store: SqlConversationStore) -> None:
    await _turn(store, "a", "m1", 4)
    await _turn(store, "b", "m1", 3)
    await _turn(store, "a", "m2", 5)
    seqs = [seq for seq, *_ in await store.events("a")]
    assert seqs == list(range(1, 10))
    assert [seq for seq, *_ in await store.events("b")] == [1, 2, 3]
    snapshot = await store.load("a")
    assert snapshot is not None and snapshot.last_seq == 9


async def test_stored_turn_is_found_with_its_request_fingerprint(store: SqlConversationStore) -> None:
    await _turn(store, "c", "m1")
    stored = await store.find_turn("c", "m1")
    assert stored is not None
    assert stored.result.reply.text == "reply m1" and stored.result.replayed
    assert stored.request_sha256 == message("c", "text m1", "m1").request_sha256
    assert await store.find_turn("c", "nope") is None


async def test_same_message_id_twice_is_refused_and_nothing_is_appended(store: SqlConversationStore) -> None:
    await _turn(store, "d", "m1")
    before = await store.events("d")
    msg = message("d", "text m1", "m1")
    snapshot = await store.load("d")
    assert snapshot is not None
    with pytest.raises(DuplicateMessage):
        await store.commit_turn(msg, snapshot, [Event("message_received", {}, "m1")], _result("d", "m1"))
    assert await store.events("d") == before


async def test_stale_snapshot_cannot_fork_the_log(store: SqlConversationStore) -> None:
    await _turn(store, "e", "m1")
    stale = await store.load("e")
    assert stale is not None
    await _turn(store, "e", "m2")
    with pytest.raises(StaleConversation):
        await store.commit_turn(
            message("e", "x", "m3"), stale, [Event("message_received", {}, "m3")], _result("e", "m3")
        )
    assert [mid for _, _, mid, _ in await store.events("e")].count("m3") == 0


async def test_transcript_roles_and_order(store: SqlConversationStore) -> None:
    await _turn(store, "f", "m1")
    await _turn(store, "f", "m2")
    lines = await store.transcript("f")
    assert lines is not None
    assert [(m.role, m.text) for m in lines] == [
        ("user", "text m1"),
        ("bot", "reply m1"),
        ("user", "text m2"),
        ("bot", "reply m2"),
    ]
    assert all(m.ts.tzinfo is not None for m in lines)
    assert await store.transcript("missing") is None


async def test_feedback_and_owner_changes_are_events(store: SqlConversationStore) -> None:
    await _turn(store, "g", "m1")
    assert await store.add_feedback("g", 5, "great")
    assert not await store.add_feedback("nobody", 3, None)
    assert await store.set_owner("g", "agent", "test")
    snapshot = await store.load("g")
    assert snapshot is not None and snapshot.owner == "agent"
    kinds = [kind for _, kind, _, _ in await store.events("g")]
    assert kinds[-2:] == ["feedback", "owner_changed"]


async def test_ping(store: SqlConversationStore) -> None:
    await store.ping()


async def test_concurrent_turns_share_transactions_and_a_bad_one_fails_alone(store: SqlConversationStore) -> None:
    await _turn(store, "stale", "m1")
    stale = await store.load("stale")
    await _turn(store, "stale", "m2")
    assert stale is not None
    before = (store._committer.batches, store._committer.items)

    async def good(i: int) -> None:
        await _turn(store, f"g{i}", "m1")

    async def bad() -> None:
        await store.commit_turn(
            message("stale", "x", "m3"), stale, [Event("message_received", {}, "m3")], _result("stale", "m3")
        )

    outcomes = await asyncio.gather(*(good(i) for i in range(30)), bad(), return_exceptions=True)
    assert all(o is None for o in outcomes[:30])
    assert isinstance(outcomes[30], StaleConversation)
    for i in range(30):
        assert [seq for seq, *_ in await store.events(f"g{i}")] == [1, 2, 3]
    batches = store._committer.batches - before[0]
    items = store._committer.items - before[1]
    assert items >= 30 and batches < items  # turns were grouped into fewer transactions
