"""Phone / voice: the spoken style (pure text work) and ``POST /channels/voice`` with real turns."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from kefu.channels.voice import NO_INPUT, REPEAT, TRANSFER, cut, language_of, options, readable, spoken
from kefu.runtime import Runtime
from tests.channels.wiring import app_client, channel_runtime

# --- the spoken style -------------------------------------------------------------------------------------


def test_what_cannot_be_heard_is_removed() -> None:
    chat = (
        "**Returns**: see [the policy](https://shop.example.com/returns) [1] or www.example.com/help.\n"
        "- 7 days, no reason 😀\n- quality problems: 15 days【2】\n(Sources: [1] Returns, [2] Warranty)"
    )
    said = readable(chat, "en")
    assert said == "Returns: see the policy or. 7 days, no reason. quality problems: 15 days."
    zh = readable("退货政策【1】：7天无理由退货。\n（来源：退货政策）", "zh")
    assert zh == "退货政策：7天无理由退货。"


def test_numbers_are_made_readable() -> None:
    en = readable("Order 100001 (Wireless Earbuds Pro, ¥1,299.00) ships with tracking SF1234567890 in 1–3 days.", "en")
    assert en == (
        "Order 1 0 0 0 0 1, Wireless Earbuds Pro, 1299 yuan, ships with tracking S F 1 2 3 4 5 6 7 8 9 0"
        " in 1 to 3 days."
    )
    zh = readable("订单100002于2024-05-03签收，客服热线400-123-4567，工作时间9:00–21:00。", "zh")
    assert zh == "订单1 0 0 0 0 2于2024年5月3日签收，客服热线4 0 0，1 2 3，4 5 6 7，工作时间9:00到21:00。"
    assert readable("Delivered on 2024-05-03, e.g. today.", "en") == "Delivered on May 3, 2024, for example today."


def test_the_language_is_the_script_that_carries_the_text() -> None:
    assert language_of("We ship with SF Express (顺丰速运) by default.", "zh") == "en"
    assert language_of("订单 100003（蓝牙音箱 Mini）", "en") == "zh"
    assert language_of("100001", "en") == "en" and language_of("100001", "zh") == "zh"


def test_quick_replies_become_spoken_options() -> None:
    assert options(["是", "否"], "zh") == "您可以说：是 / 否。"
    assert options(["yes", "no"], "en") == "You can say: yes or no."
    assert options(["Track my order", "Return an item", "Talk to a human"], "en") == (
        "You can say: Track my order, Return an item or Talk to a human."
    )
    assert options([], "en") == ""


def test_cut_at_a_sentence_boundary_keeping_the_closing_question() -> None:
    text = "First sentence is here. Second one is a bit longer than that. Third sentence. Shall I go on?"
    assert cut(text, 40) == "First sentence is here."
    assert cut(text, 70) == "First sentence is here. Second one is a bit longer than that."
    assert spoken(text, ["Yes", "No"], "en", 60) == ("First sentence is here. Shall I go on? You can say: Yes or No.")
    zh = "您好！我是商城智能客服，可以帮您查询物流、取消订单、办理退货退款、解答商品和政策问题。请问有什么可以帮您？"
    assert spoken(zh, [], "zh", 40) == "您好！我是商城智能客服，可以帮您查询物流、取消订单。请问有什么可以帮您？"
    # One endless sentence: cut after a clause, never in the middle of a word.
    long = "We ship with SF Express by default, delivery takes two to three days in most cities " + "and more " * 20
    cut_long = cut(long, 60)
    assert cut_long == "We ship with SF Express by default." and len(cut_long) <= 60


# --- POST /channels/voice ---------------------------------------------------------------------------------


def _call() -> str:
    return f"c-{uuid.uuid4().hex[:12]}"


def _utterance(call_id: str, transcript: str, **extra: Any) -> dict[str, Any]:
    return {"call_id": call_id, "utterance_id": uuid.uuid4().hex[:12], "transcript": transcript, **extra}


@pytest.fixture
async def voice(runtime: Runtime) -> Any:
    async with channel_runtime(runtime) as rt, app_client(rt) as client:
        yield client


async def _messages(client: httpx.AsyncClient, call_id: str) -> list[str]:
    answer = await client.get(f"/v1/conversations/call:{call_id}")
    return [] if answer.status_code == 404 else [m["role"] for m in answer.json()["messages"]]


async def test_an_order_question_is_answered_for_speech_zh_and_en(voice: httpx.AsyncClient, runtime: Runtime) -> None:
    call = _call()
    answer = await voice.post(
        "/channels/voice", json=_utterance(call, "我的订单100001到哪了", confidence=0.93, caller="13800138000")
    )
    assert answer.status_code == 200, answer.text
    turn = answer.json()
    assert turn["reason"] == "reply" and turn["conversation_id"] == f"call:{call}"
    assert not turn["transfer"] and not turn["end_call"] and turn["intent"]["name"] == "order_status"
    assert "S F 1 2 3 4 5 6 7 8 9 0" in turn["text"] and "顺丰" in turn["text"]
    assert "SF1234567890" in turn["reply_text"]  # the chat form is kept beside it
    assert not re.search(r"https?://|\*\*|\[\d\]|[（(]来源", turn["text"])
    assert len(turn["text"]) <= runtime.settings.voice_max_chars + 40

    en = await voice.post("/channels/voice", json=_utterance(_call(), "cancel order 100003", locale="en-US"))
    said = en.json()["text"]
    assert en.status_code == 200 and said.endswith("You can say: Yes, cancel it or No, keep it.")
    assert "1 0 0 0 0 3" in said and "?" in said and "¥" not in said
    assert await _messages(voice, call) == ["user", "bot"]


async def test_quick_replies_are_spoken_options_in_chinese(voice: httpx.AsyncClient) -> None:
    answer = await voice.post("/channels/voice", json=_utterance(_call(), "取消订单100003"))
    text = answer.json()["text"]
    assert answer.status_code == 200 and "您可以说：确认取消 / 不取消了。" in text and "吗？" in text


async def test_low_confidence_and_silence_ask_again_without_a_turn(voice: httpx.AsyncClient) -> None:
    call = _call()
    low = await voice.post("/channels/voice", json=_utterance(call, "我的订单100001到哪了", confidence=0.2))
    assert low.status_code == 200 and low.json()["text"] == REPEAT["zh"] and low.json()["reason"] == "low_confidence"
    low_en = await voice.post("/channels/voice", json=_utterance(call, "where is my order", confidence=0.3))
    assert low_en.json()["text"] == REPEAT["en"]
    silent = await voice.post("/channels/voice", json=_utterance(call, "  ", locale="en"))
    assert silent.json()["text"] == NO_INPUT["en"] and silent.json()["reason"] == "no_input"
    assert (await voice.post("/channels/voice", json=_utterance(call, ""))).json()["text"] == NO_INPUT["zh"]
    assert await _messages(voice, call) == []  # nothing ran, nothing stored


async def test_handoff_transfers_the_call_and_hangup_ends_it(voice: httpx.AsyncClient) -> None:
    call = _call()
    handed = (await voice.post("/channels/voice", json=_utterance(call, "转人工"))).json()
    assert handed["handoff"] and handed["transfer"] and handed["owner"] == "agent" and handed["text"]
    later = (await voice.post("/channels/voice", json=_utterance(call, "喂？有人吗"))).json()
    assert later["reason"] == "agent" and later["text"] == TRANSFER["zh"] and later["transfer"]
    hangup = (await voice.post("/channels/voice", json=_utterance(call, "", event="hangup"))).json()
    assert hangup["end_call"] and hangup["text"] == "" and hangup["reason"] == "hangup"
    assert await _messages(voice, call) == ["user", "bot", "user"]  # the silent bot stored the message


async def test_a_retried_utterance_replays_its_answer(voice: httpx.AsyncClient) -> None:
    call = _call()
    utterance = _utterance(call, "how long does shipping take?")
    first = await voice.post("/channels/voice", json=utterance)
    again = await voice.post("/channels/voice", json=utterance)
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    assert first.json()["text"].endswith("You can say: Yes, thanks or No.")
    assert await _messages(voice, call) == ["user", "bot"]


async def test_bad_requests_are_refused(voice: httpx.AsyncClient, runtime: Runtime) -> None:
    call = _call()
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"call_id": "bad id", "utterance_id": "u1", "transcript": "hi"}, 422, "invalid_request"),
        ({"call_id": call, "transcript": "hi"}, 422, "invalid_request"),
        (_utterance(call, "hi", confidence=1.5), 422, "invalid_request"),
        (_utterance(call, "hi", locale="fr"), 422, "invalid_request"),
        (_utterance(call, "hi", event="dial"), 422, "invalid_request"),
        (_utterance(call, "x" * (runtime.settings.max_text_chars + 1)), 422, "text_too_long"),
        (_utterance(call, "hi\x00"), 422, "invalid_text"),
    ]
    for body, status, code in cases:
        answer = await voice.post("/channels/voice", json=body)
        assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), body
    broken = await voice.post("/channels/voice", content=b"{", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "invalid_json"
    assert await _messages(voice, call) == []


async def test_api_keys_protect_the_voice_webhook(runtime: Runtime) -> None:
    async with channel_runtime(runtime, api_keys=["voice-key-1"]) as rt, app_client(rt) as client:
        body = _utterance(_call(), "你好")
        refused = await client.post("/channels/voice", json=body)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
        wrong = await client.post("/channels/voice", json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        allowed = await client.post("/channels/voice", json=body, headers={"Authorization": "Bearer voice-key-1"})
        assert allowed.status_code == 200 and allowed.json()["reason"] == "reply"
