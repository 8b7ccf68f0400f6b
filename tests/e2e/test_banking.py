"""The banking pack end to end: a real server with KEFU_PACK=banking, over HTTP, in English and Chinese.

The lost-card flow freezes a card only after the customer says yes (checked in the demo bank's table), then
hands over; "no" changes nothing. Common questions get the right intent and the pack's answer."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import MODEL_CACHE, ROOT
from tests.e2e.conftest import start_server, stop_server

SHARED_DATA = (ROOT / ".." / "shared" / "data").resolve()
BANKING77 = SHARED_DATA / "banking77" / "train.jsonl"

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not BANKING77.is_file(),
        reason=f"the banking pack trains on Banking77, which is not at {BANKING77} (set KEFU_TRAINING_DATA_DIR)",
    ),
]


@dataclass
class Bank:
    base: str
    database: Path


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bank]:
    env = {"KEFU_PACK": "banking", "KEFU_TRAINING_DATA_DIR": str(SHARED_DATA)}
    # Train (or find cached) models first: the server's start-up wait is shorter than a first training.
    prepared = subprocess.run(
        [sys.executable, "-m", "kefu.cli.main", "pack", "prepare", "--pack", "banking"],
        cwd=ROOT,
        env={**os.environ, **env, "KEFU_MODEL_CACHE_DIR": str(MODEL_CACHE), "OPENBLAS_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    data_dir = tmp_path_factory.mktemp("bank")
    process, base = start_server(data_dir, **env)
    try:
        yield Bank(base, data_dir / "kefu.db")
    finally:
        stop_server(process)


def say(bank: Bank, conversation: str, text: str, user_id: str) -> dict[str, Any]:
    response = httpx.post(
        f"{bank.base}/v1/conversations/{conversation}/messages",
        json={"text": text, "user_id": user_id},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def freezes(bank: Bank, customer: str) -> list[str]:
    """The cards frozen for this customer, read straight from the demo bank's table."""
    with sqlite3.connect(bank.database) as connection:
        rows = connection.execute(
            "SELECT last4 FROM demo_card_changes WHERE customer_key = ? AND kind = 'freeze' ORDER BY id", (customer,)
        ).fetchall()
    return [str(r[0]) for r in rows]


def new_ids() -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:10]
    return f"bank-{suffix}", f"user-{suffix}"


@pytest.mark.parametrize(
    ("lost", "card", "yes", "asks", "confirms", "frozen", "handover"),
    [
        (
            "I lost my card",
            "1234",
            "yes",
            "last four digits",
            "Freeze the card ending 1234?",
            "is frozen",
            "replacement",
        ),
        ("我的卡丢了，怎么办", "尾号5678", "是的", "后四位", "确认冻结尾号 5678 的卡吗", "已冻结", "补办新卡"),
    ],
)
def test_lost_card_is_frozen_after_yes_then_handed_over(
    bank: Bank, lost: str, card: str, yes: str, asks: str, confirms: str, frozen: str, handover: str
) -> None:
    conversation, user = new_ids()
    first = say(bank, conversation, lost, user)
    assert first["intent"]["name"] == "lost_or_stolen_card"
    assert asks in first["reply"]["text"] and "1234" in first["reply"]["text"] and "5678" in first["reply"]["text"]
    assert first["handoff"] is False and first["owner"] == "bot"

    second = say(bank, conversation, card, user)
    last4 = card[-4:]
    assert {"type": "card_last4", "value": last4} in second["entities"]
    assert confirms in second["reply"]["text"]
    assert len(second["reply"]["quick_replies"]) == 2
    assert freezes(bank, user) == []  # asked, not done

    third = say(bank, conversation, yes, user)
    assert freezes(bank, user) == [last4]
    assert frozen in third["reply"]["text"] and last4 in third["reply"]["text"]
    assert handover in third["reply"]["text"]
    assert third["handoff"] is True and third["owner"] == "agent" and third["state"] == "handoff"

    transcript = httpx.get(f"{bank.base}/v1/conversations/{conversation}", timeout=30).json()
    assert transcript["owner"] == "agent" and len(transcript["messages"]) == 6


@pytest.mark.parametrize(
    ("lost", "no", "confirms", "unchanged"),
    [
        ("someone stole my wallet with my card", "no", "Freeze the card ending 4321?", "haven't changed anything"),
        ("钱包被偷了，卡也在里面", "不用冻结", "确认冻结尾号 4321 的卡吗", "没有做任何改动"),
    ],
)
def test_no_changes_nothing(bank: Bank, lost: str, no: str, confirms: str, unchanged: str) -> None:
    conversation, _ = new_ids()
    user = "demo-one-card"  # one card only: the flow does not ask which one
    before = freezes(bank, user)
    first = say(bank, conversation, lost, user)
    assert first["intent"]["name"] == "lost_or_stolen_card"
    assert confirms in first["reply"]["text"]
    second = say(bank, conversation, no, user)
    assert unchanged in second["reply"]["text"] and "4321" in second["reply"]["text"]
    assert second["handoff"] is False and second["owner"] == "bot"
    assert freezes(bank, user) == before == []


def test_unknown_card_is_asked_again(bank: Bank) -> None:
    conversation, user = new_ids()
    say(bank, conversation, "the ATM swallowed my card", user)
    again = say(bank, conversation, "9999", user)
    assert "couldn't find a card ending 9999" in again["reply"]["text"]
    assert "last four digits" in again["reply"]["text"]
    assert freezes(bank, user) == []


@pytest.mark.parametrize(
    ("text", "intent", "fragment"),
    [
        ("It's been a week and my new card still hasn't come, where is it?", "card_arrival", "5–7 working days"),
        ("How can I activate the card I just received?", "activate_my_card", "Activate"),
        ("What exchange rate will I get if I change euros to dollars?", "exchange_rate", "interbank exchange rate"),
        ("My transfer has been pending since Monday", "pending_transfer", "Transfers within the country"),
        ("Why was I charged a fee when I paid by card?", "card_payment_fee_charged", "Card payments in your"),
        ("卡申请了好久了，怎么还没收到", "card_arrival", "5–7 个工作日"),
        ("收到新卡了，请问怎么激活呀", "activate_my_card", "激活"),
        ("今天美元的汇率是多少", "exchange_rate", "银行间汇率"),
        ("转账显示处理中好几天了", "pending_transfer", "境内转账"),
        ("我想改一下卡的PIN码", "change_pin", "4 位密码"),
    ],
)
def test_common_questions(bank: Bank, text: str, intent: str, fragment: str) -> None:
    conversation, user = new_ids()
    turn = say(bank, conversation, text, user)
    assert turn["intent"]["name"] == intent, turn["intent"]
    assert fragment in turn["reply"]["text"]
    assert turn["reply"]["quick_replies"]  # "did that answer your question?"
    assert turn["handoff"] is False and turn["model"] is None


@pytest.mark.parametrize(
    ("text", "intent", "citation"),
    [
        ("How do I set up automatic top-ups?", "automatic_top_up", "top-ups"),
        ("有一笔自动扣款我不认识", "direct_debit_payment_not_recognised", "direct-debits"),
    ],
)
def test_other_questions_are_answered_from_the_knowledge_base(
    bank: Bank, text: str, intent: str, citation: str
) -> None:
    conversation, user = new_ids()
    turn = say(bank, conversation, text, user)
    assert turn["intent"]["name"] == intent
    assert citation in [c["id"] for c in turn["reply"]["citations"]]


def test_human_agent_in_both_languages(bank: Bank) -> None:
    for text in ("I want to talk to a real person", "转人工"):
        conversation, user = new_ids()
        turn = say(bank, conversation, text, user)
        assert turn["intent"]["name"] == "human_agent" and turn["handoff"] is True
