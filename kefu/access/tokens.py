"""Signed session tokens (JWT, HS256) for agents and admins, and the key that signs them."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import jwt

from kefu.access.principals import Role, as_role

ALGORITHM = "HS256"
MIN_SECRET_CHARS = 32
SECRET_FILE = "secret.key"
_CLAIMS = ("sub", "role", "gen", "iat", "exp", "jti")


class InvalidToken(Exception):
    """The token is malformed, tampered with, signed with another key, or expired."""


@dataclass(frozen=True)
class SessionClaims:
    username: str
    role: Role
    gen: int  # the account's session generation when it was issued
    issued_at: datetime
    expires_at: datetime
    jti: str


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


class SessionTokens:
    """Issues and reads tokens with ``sub`` (username), ``role``, ``gen``, ``iat``, ``exp`` and ``jti``.
    Expiry is checked against ``clock`` (seconds since the epoch), so tests can move time."""

    def __init__(self, secret: bytes, ttl_s: int, clock: Callable[[], float] = time.time) -> None:
        if len(secret) < MIN_SECRET_CHARS:
            raise ValueError(f"the session signing key must have at least {MIN_SECRET_CHARS} bytes")
        self._secret = secret
        self.ttl_s = ttl_s
        self._clock = clock

    def issue(self, username: str, role: Role, gen: int) -> tuple[str, datetime]:
        now = int(self._clock())
        expires = now + self.ttl_s
        claims = {"sub": username, "role": role, "gen": gen, "iat": now, "exp": expires, "jti": uuid.uuid4().hex}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM), datetime.fromtimestamp(expires, UTC)

    def read(self, token: str) -> SessionClaims:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                # Expiry is checked below against this object's clock.
                options={"require": [*_CLAIMS], "verify_exp": False, "verify_iat": False},
            )
            expires, issued, gen = int(claims["exp"]), int(claims["iat"]), int(claims["gen"])
            role = as_role(str(claims["role"]))
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise InvalidToken(str(exc)) from exc
        if expires <= self._clock():
            raise InvalidToken("the session has expired")
        return SessionClaims(
            str(claims["sub"]),
            role,
            gen,
            datetime.fromtimestamp(issued, UTC),
            datetime.fromtimestamp(expires, UTC),
            str(claims["jti"]),
        )


def derived_secret(secret: bytes, purpose: str) -> bytes:
    """One key per purpose from the server's secret (pseudonyms, the prompt canary, rate-limit bucket names),
    so none of them reveals the session signing key or another purpose's key."""
    return hmac.new(secret, f"kefu:{purpose}".encode(), hashlib.sha256).digest()


def load_secret(configured: str, data_dir: Path) -> bytes:
    """KEFU_SECRET_KEY when set; otherwise the key in ``data_dir/secret.key``, made once (mode 0600).
    Replicas must share one key (set KEFU_SECRET_KEY), or each refuses the others' sessions."""
    if configured:
        if len(configured) < MIN_SECRET_CHARS:
            raise ValueError(f"KEFU_SECRET_KEY must have at least {MIN_SECRET_CHARS} characters")
        return configured.encode("utf-8")
    path = data_dir / SECRET_FILE
    if not path.exists():
        _create_secret(path)
    text = path.read_text(encoding="ascii").strip()
    if len(text) < MIN_SECRET_CHARS:
        raise ValueError(f"{path}: the key is shorter than {MIN_SECRET_CHARS} characters; delete it to make a new one")
    return text.encode("ascii")


def _create_secret(path: Path) -> None:
    # Written to a private temporary file and linked into place: a process starting at the same moment
    # either links first or reads the winner's whole key, never half of one.
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(secrets.token_hex(32) + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
