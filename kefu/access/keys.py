"""API keys: ``kefu_<8-character id>_<32 random URL-safe characters>``. The id is public (it finds the stored
row); the whole key is stored only as its SHA-256. Keys are long random strings, so a fast hash is enough:
there is no dictionary to try, and every request can afford the check."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass

PREFIX = "kefu_"
ID_CHARS = 8
SECRET_CHARS = 32
_ID_ALPHABET = string.ascii_lowercase + string.digits
KEY_LENGTH = len(PREFIX) + ID_CHARS + 1 + SECRET_CHARS


@dataclass(frozen=True)
class NewKey:
    id: str
    key: str  # shown once, never stored
    sha256: str


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> NewKey:
    key_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(ID_CHARS))
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(24)}"  # 24 bytes: exactly 32 characters
    return NewKey(key_id, key, digest(key))


def key_id(presented: str) -> str | None:
    """The id of a well-formed kefu key, or None (then it is not one of ours)."""
    if len(presented) != KEY_LENGTH or not presented.startswith(PREFIX):
        return None
    ident, sep = presented[len(PREFIX) : len(PREFIX) + ID_CHARS], presented[len(PREFIX) + ID_CHARS]
    if sep != "_" or any(c not in _ID_ALPHABET for c in ident):
        return None
    return ident


def matches(presented: str, stored_sha256: str) -> bool:
    return hmac.compare_digest(digest(presented), stored_sha256)
