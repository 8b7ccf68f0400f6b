"""The Kafka values, as issue 6 fixes them, and their strict validation. Pure: no I/O.

Inbound (``kefu.inbound``, key = the conversation id in UTF-8)::

    {"conversation_id", "message_id", "user_id", "channel", "text", "ts"}   (+ optional "locale": "zh" | "en")

Outbound (``kefu.outbound``, same key): ``OutboundMessage.to_dict()``. Dead letters (``kefu.deadletter``):
the original value's fields plus ``reason``, ``error``, ``attempts`` and ``source`` (topic, partition,
offset); a value that is not a JSON object is kept whole as the string ``value``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kefu.channels.base import OutboundMessage
from kefu.core.types import InboundMessage

# The same rules as the HTTP contract (kefu.api.schemas): ids a URL and the store can hold, short channels.
_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_CHANNEL = re.compile(r"[a-z0-9_.-]{1,32}")
MAX_USER_ID_CHARS = 256
REQUIRED_FIELDS = ("conversation_id", "message_id", "user_id", "channel", "text", "ts")


class PoisonMessage(ValueError):
    """A value no number of retries can process. ``reason`` is a short code for the dead letter."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Source:
    """Where a record was read (kept in its dead letter so an operator can find it)."""

    topic: str
    partition: int
    offset: int

    def to_dict(self) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset}


def max_value_bytes(max_text_chars: int) -> int:
    """The largest inbound value worth parsing: the longest text JSON-escaped (6 bytes a character at
    worst, ``\\uXXXX``) plus room for the other fields."""
    return 6 * max_text_chars + 4096


def encode_inbound(message: InboundMessage) -> tuple[bytes, bytes]:
    """(key, value) of ``message`` for ``kefu.inbound``."""
    value: dict[str, Any] = {
        "conversation_id": message.conversation_id,
        "message_id": message.message_id,
        "user_id": message.user_id,
        "channel": message.channel,
        "text": message.text,
        "ts": message.received_at.isoformat(),
    }
    if message.locale is not None:
        value["locale"] = message.locale
    return message.conversation_id.encode(), _dumps(value)


def decode_inbound(key: bytes | None, value: bytes | None, *, max_text_chars: int) -> InboundMessage:
    """The message in a ``kefu.inbound`` record; ``PoisonMessage`` names what is wrong with it. Fields
    other than the six (and ``locale``) are ignored, so gateways can add some before workers know them."""
    data = _object(value, max_value_bytes(max_text_chars))
    missing = [name for name in REQUIRED_FIELDS if name not in data]
    if missing:
        raise PoisonMessage("missing_field", "missing field(s): " + ", ".join(missing))
    conversation_id = _id(data, "conversation_id")
    message_id = _id(data, "message_id")
    user_id = data["user_id"]
    if user_id is not None and (not isinstance(user_id, str) or not 1 <= len(user_id) <= MAX_USER_ID_CHARS):
        raise PoisonMessage("invalid_field", f"user_id must be null or a string of 1-{MAX_USER_ID_CHARS} characters")
    channel = data["channel"]
    if not isinstance(channel, str) or not _CHANNEL.fullmatch(channel):
        raise PoisonMessage("invalid_field", "channel must be 1-32 characters of [a-z0-9_.-]")
    text = _text(data["text"], max_text_chars)
    locale = data.get("locale")
    if locale not in (None, "zh", "en"):
        raise PoisonMessage("invalid_field", "locale must be zh, en or absent")
    if key is None or key != conversation_id.encode():
        # The key decides the partition, and the partition is what keeps a conversation's messages in order.
        raise PoisonMessage("key_mismatch", "the record key must be the conversation id (UTF-8)")
    return InboundMessage(
        conversation_id=conversation_id,
        message_id=message_id,
        text=text,
        received_at=_timestamp(data["ts"]),
        user_id=user_id,
        channel=channel,
        locale=locale,
    )


def encode_outbound(message: OutboundMessage) -> tuple[bytes, bytes]:
    """(key, value) of ``message`` for ``kefu.outbound``."""
    return message.conversation_id.encode(), _dumps(message.to_dict())


def decode_outbound(value: bytes | None) -> OutboundMessage:
    data = _object(value, None)
    try:
        message = OutboundMessage.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise PoisonMessage("invalid_field", f"not an outbound message: {type(exc).__name__}: {exc}") from exc
    if message.owner not in ("bot", "agent", "closed") or message.role not in ("bot", "agent", "system"):
        raise PoisonMessage("invalid_field", "owner or role has an unknown value")
    return message


def dead_letter(value: bytes | None, *, reason: str, error: str, attempts: int, source: Source) -> bytes:
    """The dead-letter value of a record: its fields (or its raw text) plus why it is here."""
    try:
        original = json.loads(value) if value is not None else None
    except (ValueError, UnicodeDecodeError):
        original = None
    base: dict[str, Any]
    if isinstance(original, dict):
        base = dict(original)
    else:
        base = {"value": value.decode("utf-8", "replace") if value is not None else None}
    base.update(reason=reason, error=error, attempts=attempts, source=source.to_dict())
    return _dumps(base)


def _dumps(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _object(value: bytes | None, limit: int | None) -> dict[str, Any]:
    if value is None:
        raise PoisonMessage("invalid_json", "the record has no value")
    if limit is not None and len(value) > limit:
        raise PoisonMessage("value_too_large", f"the value has {len(value)} bytes; the limit is {limit}")
    try:
        data = json.loads(value.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise PoisonMessage("invalid_json", f"the value is not UTF-8: {exc}") from exc
    except ValueError as exc:
        raise PoisonMessage("invalid_json", f"the value is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PoisonMessage("not_an_object", f"the value is a JSON {type(data).__name__}, not an object")
    return data


def _id(data: dict[str, Any], name: str) -> str:
    value = data[name]
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise PoisonMessage("invalid_field", f"{name} must be 1-128 characters of [A-Za-z0-9._:-]")
    return value


def _text(value: Any, max_text_chars: int) -> str:
    if not isinstance(value, str):
        raise PoisonMessage("invalid_field", "text must be a string")
    if not value.strip():
        raise PoisonMessage("empty_text", "text must not be empty")
    if len(value) > max_text_chars:
        raise PoisonMessage("text_too_long", f"text has {len(value)} characters; the limit is {max_text_chars}")
    if "\x00" in value:
        raise PoisonMessage("invalid_field", "text must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # JSON can carry a lone surrogate ("\ud800"); no store can
        raise PoisonMessage("invalid_field", "text is not valid Unicode (unpaired surrogate)") from exc
    return value


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise PoisonMessage("invalid_field", "ts must be an ISO-8601 string with a time zone")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise PoisonMessage("invalid_field", f"ts is not an ISO-8601 time: {value[:40]!r}") from exc
    if parsed.tzinfo is None:
        raise PoisonMessage("invalid_field", "ts must carry a time zone (e.g. +00:00 or Z)")
    return parsed.astimezone(UTC)
