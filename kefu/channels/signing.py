"""HMAC-SHA256 signatures of the generic webhook, both ways (requests in, callbacks out).

A request carries ``X-Kefu-Timestamp`` (unix seconds) and ``X-Kefu-Signature: sha256=<hex>``, the
HMAC-SHA256 of ``f"{timestamp}.{raw body}"`` keyed with the shared secret. A signature is checked in
constant time, its timestamp must lie within the tolerance of this server's clock, and each
(timestamp, signature) pair is accepted once (see ``SignedRequests``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from kefu.channels.once import OnceStore

TIMESTAMP_HEADER = "X-Kefu-Timestamp"
SIGNATURE_HEADER = "X-Kefu-Signature"
PREFIX = "sha256="
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_HEX_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class SignatureRefused(Exception):
    """A request whose signature, timestamp or uniqueness does not hold; ``status`` is the HTTP answer."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of ``f"{timestamp}.{body}"``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return PREFIX + digest


def signed_headers(secret: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """The two headers that sign ``body`` now (what kefu sends with a callback)."""
    timestamp = str(int(time.time() if now is None else now))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature(secret, timestamp, body)}


def check_signature(
    secret: str, timestamp: str | None, sent: str | None, body: bytes, now: float, tolerance_s: float
) -> int:
    """The request's timestamp when its signature is right and recent; ``SignatureRefused`` otherwise.
    The signature is checked before the clock, so a forger learns nothing about the timestamp rule."""
    if not timestamp or not sent:
        raise SignatureRefused(
            401,
            "signature_missing",
            f"send the {TIMESTAMP_HEADER} and {SIGNATURE_HEADER} headers / 请求缺少签名头",
        )
    if not _TIMESTAMP.fullmatch(timestamp):
        raise SignatureRefused(
            401, "invalid_timestamp", f"{TIMESTAMP_HEADER} must be unix seconds / 时间戳必须是 Unix 秒数"
        )
    if not sent.startswith(PREFIX) or not _HEX_DIGEST.fullmatch(sent[len(PREFIX) :].lower()):
        raise SignatureRefused(
            401, "invalid_signature", f"{SIGNATURE_HEADER} must be 'sha256=<64 hex digits>' / 签名格式错误"
        )
    expected = signature(secret, timestamp, body)
    if not hmac.compare_digest(expected, PREFIX + sent[len(PREFIX) :].lower()):
        raise SignatureRefused(401, "invalid_signature", "the signature does not match the body / 签名校验失败")
    stamp = int(timestamp)
    if abs(now - stamp) > tolerance_s:
        raise SignatureRefused(
            401,
            "stale_timestamp",
            f"the timestamp is more than {tolerance_s:g} s away from the server's clock; sign the request again"
            " / 时间戳已过期，请重新签名",
        )
    return stamp


@dataclass
class SignedRequests:
    """Checks signed requests and refuses a (timestamp, signature) pair seen before."""

    secret: str
    tolerance_s: float
    seen: OnceStore
    clock: Callable[[], float] = time.time

    async def admit(self, timestamp: str | None, sent: str | None, body: bytes) -> str:
        """The replay key of a good, fresh, first-time request (``forget`` it when the request failed
        inside kefu, so the sender may send the same signed request again)."""
        check_signature(self.secret, timestamp, sent, body, self.clock(), self.tolerance_s)
        key = f"webhook:{timestamp}:{(sent or '').lower()}"
        # A pair is only valid within the tolerance either side of its timestamp: remember it that long.
        if not await self.seen.claim(key, 2 * self.tolerance_s + 1):
            raise SignatureRefused(
                409,
                "replayed_request",
                "this signed request was already received; sign each request afresh / 该签名请求已处理，请勿重放",
            )
        return key

    async def forget(self, key: str) -> None:
        await self.seen.release(key)
