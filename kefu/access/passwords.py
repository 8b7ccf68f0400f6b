"""Password hashing with scrypt. The stored string names its parameters, so they can be raised later and
old hashes still verify (``needs_rehash`` tells the caller to store a new one at the next sign-in)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import unicodedata
from dataclasses import dataclass

MIN_LENGTH = 10
MAX_LENGTH = 1024  # longer inputs are refused, not silently cut
_SCHEME = "scrypt"


@dataclass(frozen=True)
class ScryptParams:
    n: int = 2**14
    r: int = 8
    p: int = 1
    salt_bytes: int = 16
    key_bytes: int = 32


DEFAULT_PARAMS = ScryptParams()


def _normalise(password: str) -> bytes:
    # NFKC: a full-width "ｐａｓｓ" typed with a Chinese input method is the same password as "pass".
    return unicodedata.normalize("NFKC", password).encode("utf-8")


def _derive(password: str, salt: bytes, params: ScryptParams, length: int) -> bytes:
    memory = 128 * params.r * (params.n + params.p + 2) + (1 << 20)
    return hashlib.scrypt(
        _normalise(password), salt=salt, n=params.n, r=params.r, p=params.p, maxmem=memory, dklen=length
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def password_problem(password: str) -> str | None:
    """Why a new password is refused (English / Chinese), or None."""
    length = len(unicodedata.normalize("NFKC", password))
    if length < MIN_LENGTH:
        return f"the password needs at least {MIN_LENGTH} characters / 密码至少需要 {MIN_LENGTH} 个字符"
    if length > MAX_LENGTH:
        return f"the password may have at most {MAX_LENGTH} characters / 密码最多 {MAX_LENGTH} 个字符"
    return None


def hash_password(password: str, params: ScryptParams = DEFAULT_PARAMS) -> str:
    """``scrypt$n$r$p$salt$hash`` with base64 salt and hash."""
    salt = os.urandom(params.salt_bytes)
    digest = _derive(password, salt, params, params.key_bytes)
    return f"{_SCHEME}${params.n}${params.r}${params.p}${_b64(salt)}${_b64(digest)}"


def _parse(encoded: str) -> tuple[ScryptParams, bytes, bytes] | None:
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != _SCHEME:
        return None
    try:
        n, r, p = (int(x) for x in parts[1:4])
        salt, digest = _unb64(parts[4]), _unb64(parts[5])
    except ValueError:
        return None
    if n < 2 or n & (n - 1) or not 1 <= r <= 64 or not 1 <= p <= 16 or not salt or not digest:
        return None
    return ScryptParams(n, r, p, len(salt), len(digest)), salt, digest


def verify_password(password: str, encoded: str) -> bool:
    """Constant-time comparison; a malformed stored hash never verifies."""
    parsed = _parse(encoded)
    if parsed is None or len(password) > MAX_LENGTH * 4:
        return False
    params, salt, expected = parsed
    return hmac.compare_digest(_derive(password, salt, params, len(expected)), expected)


def needs_rehash(encoded: str, params: ScryptParams = DEFAULT_PARAMS) -> bool:
    parsed = _parse(encoded)
    if parsed is None:
        return True
    stored = parsed[0]
    return (stored.n, stored.r, stored.p, stored.key_bytes) != (params.n, params.r, params.p, params.key_bytes)
