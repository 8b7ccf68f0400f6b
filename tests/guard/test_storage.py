"""What reaches the database: redacted payloads, sealed originals only with a key, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from kefu.core.types import ConversationSnapshot, DialogueState, Entity, Event, IntentScore, Reply, TurnResult
from kefu.guard.storage import PayloadScrubber, Sealer, SealError, scrub_value
from kefu.store.conversations import SqlConversationStore
from kefu.store.database import create_engine, migrate
from kefu.store.models import EventRow, FeedbackRow, TurnRow
from tests.conftest import message

PHONE = "13812345678"
TEXT = f"订单100003的收货电话改成{PHONE}，地址北京市朝阳区建国路88号5号楼2单元1003室"


def test_scrub_value_redacts_free_text_and_keeps_ids() -> None:
    payload = {
        "text": TEXT,
        "conversation_id": PHONE,  # an id stays an id, whatever it looks like
        "entities": [{"type": "phone", "value": PHONE}, {"type": "order_id", "value": "100003"}],
        "args": {"address": "221B Baker Street, London NW1 6XE"},
        "n": 3,
    }
    scrubbed = scrub_value(payload)
    assert scrubbed["text"] == "订单100003的收货电话改成[PHONE]，地址[ADDRESS]"
    assert scrubbed["conversation_id"] == PHONE
    assert scrubbed["entities"] == [{"type": "phone", "value": "[PHONE]"}, {"type": "order_id", "value": "100003"}]
    assert scrubbed["args"] == {"address": "[ADDRESS]"} and scrubbed["n"] == 3


def test_sealer_round_trip_and_wrong_key() -> None:
    sealer = Sealer(Sealer.new_key())
    token = sealer.seal(TEXT)
    assert PHONE not in token and sealer.open(token) == TEXT
    with pytest.raises(SealError, match="wrong key"):
        Sealer(Sealer.new_key()).open(token)
    with pytest.raises(SealError, match="Fernet key"):
        Sealer("not-a-key")


def test_scrubber_seals_only_transcript_text_that_changed() -> None:
    sealer = Sealer(Sealer.new_key())
    scrub = PayloadScrubber(sealer)
    sealed = scrub("message_received", {"text": TEXT})
    assert sealed["text"].endswith("[ADDRESS]") and sealer.open(sealed["text_sealed"]) == TEXT
    assert "text_sealed" not in scrub("message_received", {"text": "where is order 100001?"})
    assert "text_sealed" not in scrub("tool_called", {"text": TEXT})
    assert "text_sealed" not in PayloadScrubber()("message_received", {"text": TEXT})


@pytest.mark.asyncio
async def test_store_never_writes_raw_pii(database_url: str) -> None:
    engine = create_engine(database_url)
    await migrate(engine)
    async with engine.begin() as connection:
        for table in ("feedback", "turns", "events", "conversations"):
            await connection.execute(text(f"DELETE FROM {table}"))
    sealer = Sealer(Sealer.new_key())
    store = SqlConversationStore(engine, PayloadScrubber(sealer))
    msg = message("pii-1", TEXT, "m1", user_id="u1")
    result = TurnResult(
        "pii-1", "m1", Reply(f"好的，已记录电话 {PHONE}"), IntentScore("change_address", 0.9),
        (Entity("phone", PHONE, 14, 25, PHONE),), "idle", False, "bot",
    )  # fmt: skip
    events = [
        Event("message_received", {"text": TEXT, "user_id": "u1"}, "m1"),
        Event("reply_sent", {"text": result.reply.text}, "m1"),
    ]
    await store.commit_turn(msg, ConversationSnapshot("pii-1", "bot", DialogueState(), 0), events, result)
    await store.add_feedback("pii-1", 2, f"call me back on {PHONE}")
    async with engine.connect() as connection:
        payloads = [row[0] for row in await connection.execute(select(EventRow.payload))]
        stored_result = (await connection.execute(select(TurnRow.result))).scalar_one()
        comment = (await connection.execute(select(FeedbackRow.comment))).scalar_one()
    dump = repr(payloads) + repr(stored_result) + str(comment)
    assert PHONE not in dump and "建国路" not in dump
    assert comment == "call me back on [PHONE]"
    assert sealer.open(payloads[0]["text_sealed"]) == TEXT
    transcript = await store.transcript("pii-1")
    assert transcript is not None and transcript[0].text.endswith("[PHONE]，地址[ADDRESS]")
    replay = await store.find_turn("pii-1", "m1")
    assert replay is not None and replay.result.reply.text == "好的，已记录电话 [PHONE]"
    await engine.dispose()
