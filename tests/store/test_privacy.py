"""Erasure, retention purge and their audit, against SQLite and PostgreSQL alike."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kefu.actions.demo_bank import card_changes
from kefu.core.types import (
    ConversationSnapshot,
    DialogueState,
    Event,
    IntentScore,
    Reply,
    StaleConversation,
    TurnResult,
)
from kefu.guard.pseudonym import Pseudonymizer
from kefu.store import privacy
from kefu.store.conversations import SqlConversationStore
from kefu.store.database import create_engine, migrate
from kefu.store.models import ConversationRow, DemoOrderChangeRow, HandoffRow, LlmCallRow, TicketRow
from kefu.store.privacy import (
    ANONYMOUS_CUSTOMER,
    ERASE_STEPS,
    EraseStep,
    audit_log,
    erase_conversation,
    erase_user,
    purge,
    purge_expired,
)
from tests.conftest import message

pytestmark = pytest.mark.asyncio

SECRET = b"test-secret"
PSEUDONYMS = Pseudonymizer(SECRET)
ZHANG = "用户-张三"  # a user id in Chinese
BOB = "bob@example.com"
TABLES = [step.table for step in ERASE_STEPS] + ["privacy_audit"]


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    built = create_engine(database_url)
    await migrate(built)
    async with built.begin() as connection:  # each test starts from empty tables
        for name in TABLES:
            await connection.execute(text(f"DELETE FROM {name}"))
    yield built
    await built.dispose()


async def _turn(store: SqlConversationStore, cid: str, mid: str, user_id: str | None, words: str) -> None:
    msg = message(cid, words, mid, user_id=user_id)
    snapshot = await store.load(cid) or ConversationSnapshot(cid, "bot", DialogueState(), 0)
    events = [Event("message_received", {"text": words}, mid), Event("reply_sent", {"text": "好的 / ok"}, mid)]
    result = TurnResult(cid, mid, Reply("ok"), IntentScore("greeting", 0.9), (), "idle", False, "bot")
    await store.commit_turn(msg, snapshot, events, result)


async def add_customer(engine: AsyncEngine, store: SqlConversationStore, cid: str, user_id: str | None) -> None:
    """A conversation with two turns, feedback, a model call, an order change, a card change, a handover
    and its ticket."""
    await _turn(store, cid, "m1", user_id, "我的订单 100003 还没发货")
    await _turn(store, cid, "m2", user_id, "please cancel order 100003")
    assert await store.add_feedback(cid, 4, "谢谢 thanks")
    customer = user_id or ANONYMOUS_CUSTOMER.format(cid)
    last4 = f"{zlib.crc32(cid.encode()) % 10000:04d}"  # one card change per conversation, unique per customer
    now = datetime.now(UTC)
    async with engine.begin() as connection:
        await connection.execute(
            insert(LlmCallRow).values(
                at=now, conversation_id=cid, message_id="m2", name="local", model="m", variant="stable", outcome="ok"
            )
        )
        await connection.execute(
            insert(DemoOrderChangeRow).values(
                customer_key=customer, order_id=cid, kind="cancel", data={}, created_at=now
            )
        )
        await connection.execute(
            insert(card_changes).values(customer_key=customer, last4=last4, kind="freeze", data={}, created_at=now)
        )
        handoff = await connection.execute(
            insert(HandoffRow)
            .values(
                conversation_id=cid,
                message_id="m2",
                status="waiting",
                reason="human_agent",
                language="zh",
                channel="web",
                summary={},
                requested_at=now,
            )
            .returning(HandoffRow.id)
        )
        await connection.execute(
            insert(TicketRow).values(
                conversation_id=cid,
                handoff_id=handoff.scalar_one(),
                status="open",
                reason="human_agent",
                language="zh",
                phone="13812345678",
                summary={},
                created_at=now,
                updated_at=now,
            )
        )


async def _counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as connection:
        return {name: (await connection.execute(text(f"SELECT count(*) FROM {name}"))).scalar_one() for name in TABLES}


async def _populate(engine: AsyncEngine) -> SqlConversationStore:
    store = SqlConversationStore(engine)
    await add_customer(engine, store, "zh-1", ZHANG)
    await add_customer(engine, store, "zh-2", ZHANG)
    await add_customer(engine, store, "bob-1", BOB)
    await add_customer(engine, store, "anon-1", None)
    return store


PER_CONVERSATION = {
    "events": 5,  # two turns of two events, and the feedback event
    "turns": 2,
    "feedback": 1,
    "llm_calls": 1,
    "demo_order_changes": 1,
    "demo_card_changes": 1,
    "tickets": 1,
    "handoffs": 1,
    "conversations": 1,
}


async def test_erase_user_removes_every_record_and_nothing_else(engine: AsyncEngine) -> None:
    store = await _populate(engine)
    before = await _counts(engine)
    erasure = await erase_user(engine, ZHANG, PSEUDONYMS, actor="test")
    assert erasure.found and not erasure.dry_run
    expected = {name: 2 * n for name, n in PER_CONVERSATION.items()}  # two conversations, one customer
    assert erasure.counts == expected
    after = await _counts(engine)
    assert {name: before[name] - after[name] for name in expected} == expected
    assert await store.load("zh-1") is None and await store.transcript("zh-2") is None
    assert await store.transcript("bob-1") is not None and await store.load("anon-1") is not None

    entries = await audit_log(engine)
    assert len(entries) == 1
    entry = entries[0]
    assert (entry["action"], entry["actor"], entry["dry_run"]) == ("erase_user", "test", False)
    assert entry["subject"] == PSEUDONYMS(ZHANG) == erasure.subject
    assert entry["counts"] == expected
    async with engine.connect() as connection:
        dumped = str((await connection.execute(text("SELECT * FROM privacy_audit"))).all())
    assert ZHANG not in dumped and "张三" not in dumped


async def test_dry_run_counts_and_deletes_nothing(engine: AsyncEngine) -> None:
    await _populate(engine)
    before = await _counts(engine)
    erasure = await erase_user(engine, BOB, PSEUDONYMS, actor="test", dry_run=True)
    assert erasure.dry_run and erasure.counts == PER_CONVERSATION
    after = await _counts(engine)
    assert {k: v for k, v in after.items() if k != "privacy_audit"} == {
        k: v for k, v in before.items() if k != "privacy_audit"
    }
    assert [(e["action"], e["dry_run"]) for e in await audit_log(engine)] == [("erase_user", True)]


async def test_unknown_user_erases_nothing_but_is_audited(engine: AsyncEngine) -> None:
    await _populate(engine)
    erasure = await erase_user(engine, "无此用户", PSEUDONYMS, actor="test")
    assert not erasure.found and erasure.total == 0
    assert set(erasure.counts) == {step.table for step in ERASE_STEPS}
    assert (await audit_log(engine))[0]["subject"] == PSEUDONYMS("无此用户")


async def test_erase_anonymous_conversation(engine: AsyncEngine) -> None:
    store = await _populate(engine)
    erasure = await erase_conversation(engine, "anon-1", PSEUDONYMS, actor="test")
    assert erasure.counts == PER_CONVERSATION
    assert erasure.subject == PSEUDONYMS("anon-1", "conversation") and erasure.subject.startswith("c_")
    assert await store.load("anon-1") is None
    # One of a signed-in user's conversations: the user's own changes stay with the user.
    one = await erase_conversation(engine, "zh-1", PSEUDONYMS, actor="test")
    assert one.counts["conversations"] == 1 and one.counts["demo_order_changes"] == 0
    assert await store.load("zh-2") is not None
    missing = await erase_conversation(engine, "never-was", PSEUDONYMS, actor="test")
    assert not missing.found


async def test_anonymous_customer_key_is_the_pipelines() -> None:
    assert ANONYMOUS_CUSTOMER.format("c-9") == message("c-9", "hi").customer_key
    assert message("c-9", "hi", user_id=ZHANG).customer_key == ZHANG


async def test_a_turn_in_flight_on_an_erased_conversation_stores_nothing(engine: AsyncEngine) -> None:
    store = await _populate(engine)
    stale = await store.load("bob-1")
    assert stale is not None
    await erase_user(engine, BOB, PSEUDONYMS, actor="test")
    msg = message("bob-1", "late", "m3", user_id=BOB)
    result = TurnResult("bob-1", "m3", Reply("ok"), IntentScore("greeting", 0.9), (), "idle", False, "bot")
    with pytest.raises(StaleConversation):
        await store.commit_turn(msg, stale, [Event("message_received", {"text": "late"}, "m3")], result)
    assert await store.load("bob-1") is None
    await _turn(store, "bob-1", "m4", BOB, "hello again")  # the next message starts a fresh conversation
    snapshot = await store.load("bob-1")
    assert snapshot is not None and snapshot.last_seq == 2


async def test_erasure_is_one_transaction(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    await _populate(engine)
    before = await _counts(engine)
    broken = (*ERASE_STEPS[:-1], EraseStep("no_such_table", "conversation_id", "conversation"), ERASE_STEPS[-1])
    monkeypatch.setattr(privacy, "ERASE_STEPS", broken)
    with pytest.raises(Exception, match="no_such_table"):
        await erase_user(engine, ZHANG, PSEUDONYMS, actor="test")
    assert await _counts(engine) == before  # nothing deleted, nothing audited


async def age_conversations(engine: AsyncEngine, cids: list[str], days: float) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            update(ConversationRow)
            .where(ConversationRow.id.in_(cids))
            .values(updated_at=datetime.now(UTC) - timedelta(days=days))
        )


async def test_purge_in_batches_keeps_recent_conversations(engine: AsyncEngine) -> None:
    store = SqlConversationStore(engine)
    old = [f"old-{i}" for i in range(7)]
    for cid in old:
        await add_customer(engine, store, cid, None)
    await add_customer(engine, store, "recent", None)
    await add_customer(engine, store, "edge", ZHANG)
    await age_conversations(engine, old, 31)
    await age_conversations(engine, ["edge"], 29)
    seen: list[tuple[int, int]] = []

    dry = await purge(engine, 30, now=datetime.now(UTC), actor="test", dry_run=True, batch_size=3)
    assert dry.counts == {name: 7 * n for name, n in PER_CONVERSATION.items()}
    erased = await purge(
        engine, 30, now=datetime.now(UTC), actor="test", batch_size=3, progress=lambda d, t: seen.append((d, t))
    )
    assert erased.counts == dry.counts
    assert seen == [(0, 7), (3, 7), (6, 7), (7, 7)]
    assert [await store.load(cid) for cid in old] == [None] * len(old)
    assert await store.load("recent") is not None and await store.load("edge") is not None

    entries = await audit_log(engine)
    assert [(e["action"], e["dry_run"]) for e in entries] == [("purge", False), ("purge", True)]
    assert entries[0]["counts"] == erased.counts  # one row, brought up to date by every batch
    assert entries[0]["subject"].startswith("before:")


async def test_periodic_purge(engine: AsyncEngine) -> None:
    store = SqlConversationStore(engine)
    await add_customer(engine, store, "year-old", BOB)
    await age_conversations(engine, ["year-old"], 400)
    now = datetime.now(UTC)
    assert await purge_expired(engine, 0, now) is None  # retention off
    assert await store.load("year-old") is not None
    done = await purge_expired(engine, 365, now.replace(tzinfo=None))  # a naive time is UTC
    assert done is not None and done.counts["conversations"] == 1
    nothing = await purge_expired(engine, 365, now)
    assert nothing is not None and not nothing.found
    assert [e["actor"] for e in await audit_log(engine)] == ["retention"]  # an empty run leaves no row
    with pytest.raises(ValueError):
        await purge(engine, 0, now=now, actor="test")


async def test_sqlite_without_foreign_keys_leaves_no_orphans(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'nofk.db'}"
    await migrate(create_engine(url))
    plain = create_async_engine(url)  # SQLite's default: foreign keys not enforced, so no cascade
    try:
        async with plain.connect() as connection:
            assert (await connection.execute(text("PRAGMA foreign_keys"))).scalar_one() == 0
        await _populate(plain)
        await erase_user(plain, ZHANG, PSEUDONYMS, actor="test")
        async with plain.connect() as connection:
            orphans = await connection.execute(
                text(
                    "SELECT count(*) FROM events WHERE conversation_id NOT IN (SELECT id FROM conversations)"
                    " UNION ALL SELECT count(*) FROM turns WHERE conversation_id NOT IN (SELECT id FROM conversations)"
                    " UNION ALL SELECT count(*) FROM feedback"
                    " WHERE conversation_id NOT IN (SELECT id FROM conversations)"
                )
            )
            assert [n for (n,) in orphans] == [0, 0, 0]
    finally:
        await plain.dispose()
