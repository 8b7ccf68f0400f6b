"""``AccessControl``: who a credential belongs to, sign-in, and the rate limits, for every channel.

Look-ups of keys and accounts are cached for ``cache_s`` (KEFU_AUTH_CACHE_S) so a turn does not pay a
query: a key revoked or an account disabled in another process stops working within that time."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from kefu.access.accounts import AccessStore, Account, KeyInfo
from kefu.access.cache import TtlCache
from kefu.access.keys import key_id, matches
from kefu.access.passwords import hash_password, needs_rehash, verify_password
from kefu.access.principals import Principal, Role, anonymous
from kefu.access.ratelimit import Buckets, MemoryBuckets, RateLimited, RedisBuckets, Rule
from kefu.access.tokens import InvalidToken, SessionTokens, derived_secret, load_secret, looks_like_jwt
from kefu.config import Settings

TOUCH_EVERY_S = 60.0  # a key's last_used_at is written at most this often
LOGIN_ADDRESS_FACTOR = 5  # one address may try this many times the per-account limit, over all accounts
Via = Literal["header", "query", "cookie"]


class Unauthenticated(Exception):
    """A credential was given and is not valid (unknown, revoked, expired, disabled, tampered with)."""


class InvalidCredentials(Exception):
    """Sign-in refused: the same answer for an unknown user, a wrong password and a disabled account."""


@dataclass(frozen=True)
class Session:
    token: str
    expires_at: datetime
    role: Role
    username: str


@dataclass(frozen=True)
class Limits:
    per_key: Rule | None  # requests per API key (callers without one: per address)
    per_user: Rule | None  # turns per user (user_id, else the conversation)
    login: Rule  # sign-in tries per username and address

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        key, user = settings.rate_key_per_s, settings.rate_user_per_min / 60.0
        return cls(
            Rule(key, settings.rate_key_burst) if key > 0 else None,
            Rule(user, settings.rate_user_burst) if user > 0 else None,
            Rule(settings.login_attempts / settings.login_window_s, settings.login_attempts),
        )


def _opaque(text: str, key: bytes = b"") -> str:
    # Bucket names hold user ids and addresses; the store (Redis) only needs them told apart, and with a
    # keyed hash a name in Redis cannot be checked against a guessed phone number or address.
    return hmac.new(key, text.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:32]


class AccessControl:
    def __init__(
        self,
        store: AccessStore,
        tokens: SessionTokens,
        buckets: Buckets,
        limits: Limits,
        env_keys: Sequence[str] = (),
        cache_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        bucket_key: bytes = b"",
    ) -> None:
        self.bucket_key = bucket_key
        self.store = store
        self.tokens = tokens
        self.buckets = buckets
        self.limits = limits
        self._env_keys = tuple(k.encode("utf-8") for k in env_keys)
        self._keys: TtlCache[KeyInfo] = TtlCache(cache_s, clock=clock)
        self._accounts: TtlCache[Account] = TtlCache(cache_s, clock=clock)
        self._any_key: TtlCache[bool] = TtlCache(cache_s, clock=clock)
        self._touched: dict[str, float] = {}
        self._clock = clock
        self._decoy_hash: str | None = None

    # --- who is calling
    async def keys_required(self) -> bool:
        """Channels must present a key once any exists (KEFU_API_KEYS or an unrevoked stored key)."""
        if self._env_keys:
            return True
        return bool(await self._any_key.get("any", self.store.any_active_key))

    async def authenticate(self, credential: str | None, via: Via, address: str) -> Principal:
        """The caller behind ``credential`` (an API key or a session token); anonymous without one."""
        if not credential:
            return anonymous(address)
        raw = credential.encode("utf-8", "surrogatepass")
        # Every configured key is compared, in constant time, so timing tells nothing about which matched.
        if sum(hmac.compare_digest(raw, key) for key in self._env_keys):
            return Principal("key", "env", "channel", f"env:{_opaque(credential)}", via)
        if looks_like_jwt(credential):
            return await self._session(credential, via)
        return await self._api_key(credential, via)

    async def _api_key(self, presented: str, via: Via) -> Principal:
        ident = key_id(presented)
        if ident is None:
            raise Unauthenticated("invalid API key")
        info = await self._keys.get(ident, lambda: self.store.key(ident))
        if info is None or info.revoked_at is not None or not matches(presented, info.secret_sha256):
            raise Unauthenticated("invalid API key")
        await self._touch(info.id)
        return Principal("key", info.id, info.role, f"key:{info.id}", via)

    async def _touch(self, ident: str) -> None:
        now = self._clock()
        if now - self._touched.get(ident, -TOUCH_EVERY_S) >= TOUCH_EVERY_S:
            self._touched[ident] = now
            await self.store.touch_key(ident, datetime.now(UTC))

    async def _session(self, token: str, via: Via) -> Principal:
        try:
            claims = self.tokens.read(token)
        except InvalidToken as exc:
            raise Unauthenticated("invalid or expired session") from exc
        account = await self._accounts.get(claims.username, lambda: self.store.account(claims.username))
        if account is None or account.disabled_at is not None or account.session_gen != claims.gen:
            raise Unauthenticated("invalid or expired session")
        return Principal("user", account.username, account.role, f"user:{account.username}", via, claims.expires_at)

    # --- signing in
    async def login(self, username: str, password: str, address: str) -> Session:
        """A session for a valid, enabled account; InvalidCredentials or RateLimited otherwise."""
        name = username.strip().casefold()
        await self._take("login", f"{address}\x1f{name}", self.limits.login)
        wide = Rule(self.limits.login.per_s * LOGIN_ADDRESS_FACTOR, self.limits.login.burst * LOGIN_ADDRESS_FACTOR)
        await self._take("login-address", address, wide)
        if self._decoy_hash is None:
            self._decoy_hash = await asyncio.to_thread(hash_password, secrets.token_urlsafe(16))
        account = await self.store.account(username)
        # An unknown user costs the same scrypt as a known one, so timing does not tell which names exist.
        stored = account.password_hash if account is not None else self._decoy_hash
        valid = await asyncio.to_thread(verify_password, password, stored)
        if not valid or account is None or account.disabled_at is not None:
            raise InvalidCredentials("wrong username or password")
        rehashed = await asyncio.to_thread(hash_password, password) if needs_rehash(stored) else None
        await self.store.record_login(account.username, rehashed)
        token, expires_at = self.tokens.issue(account.username, account.role, account.session_gen)
        return Session(token, expires_at, account.role, account.username)

    # --- rate limits
    async def limit_request(self, principal: Principal) -> None:
        if self.limits.per_key is not None:
            await self._take("key", principal.bucket, self.limits.per_key)

    async def limit_turn(self, principal: Principal, user: str) -> None:
        """One turn of ``user`` (a user_id, else the conversation id), within the caller's namespace: the
        same user_id sent through two keys is two users."""
        if self.limits.per_user is not None:
            scope = "" if principal.kind == "anonymous" else principal.bucket
            await self._take("user", f"{scope}\x1f{user}", self.limits.per_user)

    @property
    def limits_turns(self) -> bool:
        return self.limits.per_user is not None

    async def _take(self, kind: Literal["key", "user", "login", "login-address"], identity: str, rule: Rule) -> None:
        verdict = await self.buckets.take(f"{kind}:{_opaque(identity, self.bucket_key)}", rule)
        if not verdict.allowed:
            raise RateLimited(verdict.retry_after_s, "login" if kind.startswith("login") else kind)

    async def close(self) -> None:
        await self.buckets.close()


def build_access(settings: Settings, engine: AsyncEngine) -> AccessControl:
    buckets: Buckets = RedisBuckets(Redis.from_url(settings.redis_url)) if settings.redis_url else MemoryBuckets()
    secret = load_secret(settings.secret_key, settings.data_dir)
    return AccessControl(
        AccessStore(engine),
        SessionTokens(secret, settings.session_ttl_s),
        buckets,
        Limits.from_settings(settings),
        settings.api_keys,
        settings.auth_cache_s,
        bucket_key=derived_secret(secret, "rate-buckets"),
    )
