"""The Kafka values: what a gateway writes is what a worker reads, and every malformed value is refused
with a reason (it becomes a dead letter, never a crash or a silent drop)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from kefu.channels.base import OutboundMessage
from kefu.channels.kafka.codec import (
    PoisonMessage,
    Source,
    dead_letter,
    decode_inbound,
    decode_outbound,
    encode_inbound,
    encode_outbound,
    max_value_bytes,
)
from kefu.channels.kafka.connect import parse_bootstrap
from kefu.core.types import InboundMessage

LIMIT = 4000


def value(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "conversation_id": "c-1",
        "message_id": "m-1",
        "user_id": "u-1",
        "channel": "wechat",
        "text": "订单 100001 到哪了",
        "ts": "2026-01-02T03:04:05+08:00",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


def decode(data: dict[str, Any] | bytes, key: bytes | None = b"c-1") -> InboundMessage:
    raw = data if isinstance(data, bytes) else json.dumps(data, ensure_ascii=False).encode()
    return decode_inbound(key, raw, max_text_chars=LIMIT)


def test_inbound_round_trip_keeps_every_field() -> None:
    sent = InboundMessage(
        conversation_id="conv.42",
        message_id="m:7",
        text="退货 ✓ emoji 🙂",
        received_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        user_id="alice",
        channel="app",
        locale="zh",
    )
    key, raw = encode_inbound(sent)
    assert key == b"conv.42"
    assert set(json.loads(raw)) == {"conversation_id", "message_id", "user_id", "channel", "text", "ts", "locale"}
    assert decode_inbound(key, raw, max_text_chars=LIMIT) == sent


def test_the_issue_value_is_accepted_and_ts_normalised_to_utc() -> None:
    message = decode(value(user_id=None))
    assert message.user_id is None
    assert message.channel == "wechat"
    assert message.received_at == datetime(2026, 1, 1, 19, 4, 5, tzinfo=UTC)
    assert decode(value(ts="2026-01-02T03:04:05Z")).received_at.tzinfo is not None
    # Fields a newer gateway adds are ignored, not refused.
    assert decode(value(priority="high")).text == "订单 100001 到哪了"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (b'"text"', "not_an_object"),
        (value(text=...), "missing_field"),
        (value(ts=..., user_id=...), "missing_field"),
        (value(conversation_id="has space"), "invalid_field"),
        (value(conversation_id=""), "invalid_field"),
        (value(message_id=7), "invalid_field"),
        (value(message_id="x" * 129), "invalid_field"),
        (value(user_id=""), "invalid_field"),
        (value(user_id=["a"]), "invalid_field"),
        (value(channel="WeChat"), "invalid_field"),
        (value(channel="x" * 33), "invalid_field"),
        (value(text=""), "empty_text"),
        (value(text="  \n "), "empty_text"),
        (value(text=42), "invalid_field"),
        (value(text="a\x00b"), "invalid_field"),
        (value(text="x" * (LIMIT + 1)), "text_too_long"),
        (value(ts="yesterday"), "invalid_field"),
        (value(ts="2026-01-02T03:04:05"), "invalid_field"),  # no time zone
        (value(ts=1767300000), "invalid_field"),
        (value(locale="fr"), "invalid_field"),
    ],
)
def test_malformed_inbound_values_are_poison(raw: dict[str, Any] | bytes, reason: str) -> None:
    with pytest.raises(PoisonMessage) as caught:
        decode(raw)
    assert caught.value.reason == reason
    assert str(caught.value)


def test_lone_surrogate_is_refused() -> None:
    raw = value(text="x").copy()
    encoded = json.dumps(raw).replace('"x"', '"\\ud800"').encode()
    with pytest.raises(PoisonMessage, match="surrogate"):
        decode(encoded)


def test_text_at_the_limit_passes_and_oversized_values_are_refused_before_parsing() -> None:
    assert len(decode(value(text="好" * LIMIT)).text) == LIMIT
    huge = b'{"pad": "' + b"x" * max_value_bytes(LIMIT) + b'"}'
    with pytest.raises(PoisonMessage) as caught:
        decode(huge)
    assert caught.value.reason == "value_too_large"


@pytest.mark.parametrize("key", [None, b"c-2", b""])
def test_the_key_must_be_the_conversation_id(key: bytes | None) -> None:
    with pytest.raises(PoisonMessage) as caught:
        decode(value(), key=key)
    assert caught.value.reason == "key_mismatch"


def test_no_value_is_poison() -> None:
    with pytest.raises(PoisonMessage):
        decode_inbound(b"c-1", None, max_text_chars=LIMIT)


def test_outbound_round_trip() -> None:
    sent = OutboundMessage(
        "c-1",
        "m-1:reply",
        "m-1",
        "您好",
        False,
        "bot",
        channel="wechat",
        user_id="u",
        ts=datetime(2026, 1, 2, tzinfo=timezone(timedelta(hours=8))),
    )
    key, raw = encode_outbound(sent)
    assert key == b"c-1"
    data = json.loads(raw)
    assert {"conversation_id", "message_id", "in_reply_to", "text", "handoff", "owner", "ts"} <= set(data)
    assert decode_outbound(raw) == sent
    with pytest.raises(PoisonMessage):
        decode_outbound(b'{"conversation_id": "c"}')
    with pytest.raises(PoisonMessage):
        decode_outbound(json.dumps({**data, "owner": "nobody"}).encode())


def test_dead_letter_keeps_the_original_and_says_why() -> None:
    source = Source("kefu.inbound", 3, 77)
    original = json.dumps(value()).encode()
    letter = json.loads(dead_letter(original, reason="turn_failed", error="boom", attempts=3, source=source))
    assert {k: letter[k] for k in value()} == value()
    assert letter["error"] == "boom"
    assert letter["attempts"] == 3
    assert letter["reason"] == "turn_failed"
    assert letter["source"] == {"topic": "kefu.inbound", "partition": 3, "offset": 77}
    raw = json.loads(dead_letter(b"\xffnot json", reason="invalid_json", error="e", attempts=0, source=source))
    assert raw["value"] == "\ufffdnot json"
    assert json.loads(dead_letter(None, reason="invalid_json", error="e", attempts=0, source=source))["value"] is None


@pytest.mark.parametrize(
    ("given", "expected"),
    [("127.0.0.1:9092", "127.0.0.1:9092"), (" a:1 , b.c:65535 ", "a:1,b.c:65535"), ("[::1]:9092", "[::1]:9092")],
)
def test_bootstrap_lists(given: str, expected: str) -> None:
    assert parse_bootstrap(given) == expected


@pytest.mark.parametrize("given", ["", "host", "host:", ":9092", "host:0", "host:70000", "a:1,b", "http://h:1"])
def test_bad_bootstrap_lists_are_refused(given: str) -> None:
    with pytest.raises(ValueError):
        parse_bootstrap(given)
