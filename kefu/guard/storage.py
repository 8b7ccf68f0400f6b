"""What reaches the database: every event payload and stored answer with its PII redacted, and, only when
the operator turns it on, the original message text sealed (Fernet: AES-128-CBC + HMAC-SHA256) with a key
from the settings so that it can be recovered by someone who holds the key."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from kefu.guard.pii import find_pii, redact

# Keys whose values are identifiers or names of things, never free text: they stay as they are (a
# conversation id must still find its conversation).
_ID_KEYS = frozenset(
    {
        "conversation_id",
        "message_id",
        "in_reply_to",
        "id",
        "doc_id",
        "intent",
        "type",
        "state",
        "owner",
        "from",
        "to",
        "template",
        "tool",
        "flow",
        "step",
        "locale",
        "language",
        "channel",
        "variant",
        "version",
        "model",
        "received_at",
        "action",
        "reason",
        "outcome",
        "act",
    }
)
# Transcript lines whose original text may be sealed.
_SEALED_EVENTS = frozenset({"message_received", "reply_sent", "agent_message", "feedback"})


class SealError(ValueError):
    """A sealed text cannot be opened: wrong key or damaged data."""


class Sealer:
    """Encrypts originals at rest. ``key`` is a Fernet key (``kefu privacy new-key`` prints one)."""

    def __init__(self, key: str) -> None:
        try:
            self._fernet = Fernet(key.encode())
        except (ValueError, TypeError) as exc:
            raise SealError("the key must be 32 url-safe base64-encoded bytes (a Fernet key)") from exc

    @staticmethod
    def new_key() -> str:
        return Fernet.generate_key().decode()

    def seal(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode()

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise SealError("cannot open the sealed text: wrong key or damaged data") from exc


def redact_text(text: str) -> str:
    spans = find_pii(text)
    return redact(text, spans) if spans else text


def scrub_value(value: Any, key: str | None = None, redact_str: Callable[[str], str] = redact_text) -> Any:
    """``value`` with PII redacted in every string inside it (identifier keys excepted)."""
    if isinstance(value, str):
        if key in _ID_KEYS or len(value) < 5:
            return value
        return redact_str(value)
    if isinstance(value, Mapping):
        return {k: scrub_value(v, str(k), redact_str) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_value(v, key, redact_str) for v in value]
    return value


# A turn writes the customer's text in several events (the message, the parse, the tool arguments) and
# template replies recur: remembering recent redactions saves most PII scans on the hot path.
SCRUB_CACHE_SIZE = 4096


class PayloadScrubber:
    """Applied by the conversation store to everything it writes."""

    def __init__(self, sealer: Sealer | None = None, cache_size: int = SCRUB_CACHE_SIZE) -> None:
        self.sealer = sealer
        self._redact = lru_cache(maxsize=cache_size)(redact_text)

    def __call__(self, event_type: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        scrubbed: dict[str, Any] = scrub_value(payload, None, self._redact)
        if self.sealer is not None and event_type in _SEALED_EVENTS:
            for field in ("text", "comment"):
                original = payload.get(field)
                if isinstance(original, str) and original != scrubbed.get(field):
                    scrubbed[f"{field}_sealed"] = self.sealer.seal(original)
        return scrubbed
