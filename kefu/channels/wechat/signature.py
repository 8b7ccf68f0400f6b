"""WeChat's request signature: the SHA-1 of the token, timestamp and nonce, sorted and joined.

WeChat signs the server-URL check (``GET`` with ``echostr``) and every message it pushes (``POST``) this way,
in the query string (``signature``, ``timestamp``, ``nonce``).
"""

from __future__ import annotations

import hashlib
import hmac


def signature(token: str, timestamp: str, nonce: str) -> str:
    return hashlib.sha1("".join(sorted((token, timestamp, nonce))).encode()).hexdigest()


def signature_ok(token: str, timestamp: str | None, nonce: str | None, sent: str | None) -> bool:
    if not token or not timestamp or not nonce or not sent:
        return False
    return hmac.compare_digest(signature(token, timestamp, nonce), sent.lower())
