"""Pseudonyms: a keyed hash (HMAC-SHA256) of a user id, an IP address or a conversation id.

The same secret always gives the same pseudonym, so logs, metrics and the privacy audit can be joined on it;
without the secret a pseudonym cannot be turned back into the id, nor checked against a guessed one.
"""

from __future__ import annotations

import hashlib
import hmac
import re

# Short prefixes say what was hashed; another kind is prefixed with its own name.
_PREFIXES = {"user": "u", "ip": "ip", "conversation": "c"}
_KIND = re.compile(r"[a-z][a-z0-9]{0,15}")
HEX_CHARS = 16  # 64 bits: collisions stay unlikely up to billions of ids


class Pseudonymizer:
    """``Pseudonymizer(secret)("alice") == "u_" + 16 hex digits``; pure, thread-safe, no state but the key."""

    def __init__(self, secret: bytes) -> None:
        if not secret:
            raise ValueError("the pseudonym secret must not be empty")
        self._secret = secret

    def __call__(self, value: str, kind: str = "user") -> str:
        if not _KIND.fullmatch(kind):
            raise ValueError(f"kind must be 1-16 lower-case letters or digits, got {kind!r}")
        # The kind is part of the hashed text, so a user id and an IP with the same spelling differ.
        text = f"{kind}:{value}".encode("utf-8", "surrogatepass")  # total: any str has a pseudonym
        digest = hmac.new(self._secret, text, hashlib.sha256).hexdigest()
        return f"{_PREFIXES.get(kind, kind)}_{digest[:HEX_CHARS]}"

    def __repr__(self) -> str:  # never print the key
        return "Pseudonymizer(secret=***)"
