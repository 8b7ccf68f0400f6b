"""AccessControl: which credential is whose, how long a look-up is trusted, signing in and its limits."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from kefu.access.accounts import AccessStore
from kefu.access.control import AccessControl, InvalidCredentials, Limits, Unauthenticated
from kefu.access.passwords import hash_password
from kefu.access.principals import anonymous, role_allows
from kefu.access.ratelimit import MemoryBuckets, RateLimited, Rule
from kefu.access.tokens import SessionTokens

PASSWORD = "a long enough password"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(engine: AsyncEngine, clock: Clock, env_keys: tuple[str, ...] = (), **limits: Rule | None) -> AccessControl:
    rules = Limits(limits.get("per_key"), limits.get("per_user"), limits.get("login") or Rule(10 / 600, 10))
    tokens = SessionTokens(b"t" * 32, ttl_s=3600)
    return AccessControl(AccessStore(engine), tokens, MemoryBuckets(clock=clock), rules, env_keys, 5.0, clock)


def test_role_order() -> None:
    assert role_allows("admin", "agent") and role_allows("agent", "channel") and role_allows("admin", "admin")
    assert not role_allows("channel", "agent") and not role_allows("agent", "admin")
    assert not role_allows(None, "channel")


async def test_env_keys_are_channel_keys_and_keys_become_required(engine: AsyncEngine) -> None:
    clock = Clock()
    access = make(engine, clock, env_keys=("env-secret-1", "env-secret-2"))
    assert await access.keys_required()
    who = await access.authenticate("env-secret-2", "header", "10.0.0.1")
    assert (who.kind, who.role, who.via) == ("key", "channel", "header")
    with pytest.raises(Unauthenticated, match="invalid API key"):
        await access.authenticate("env-secret-3", "header", "10.0.0.1")
    assert await access.authenticate(None, "cookie", "10.0.0.1") == anonymous("10.0.0.1")


async def test_a_stored_key_works_until_revoked_within_the_cache_time(engine: AsyncEngine) -> None:
    clock = Clock()
    access = make(engine, clock)
    store = AccessStore(engine)
    assert not await access.keys_required()
    info, key = await store.create_key("widget", "agent")
    assert not await access.keys_required()  # "no key" is cached for a few seconds too
    clock.now += 5.0
    assert await access.keys_required()
    who = await access.authenticate(key, "query", "10.0.0.1")
    assert (who.kind, who.name, who.role, who.bucket) == ("key", info.id, "agent", f"key:{info.id}")
    wrong = key[:-1] + ("a" if key[-1] != "a" else "b")
    with pytest.raises(Unauthenticated):
        await access.authenticate(wrong, "header", "10.0.0.1")  # right id, wrong secret

    await store.revoke_key(info.id)
    clock.now += 4.9
    assert (await access.authenticate(key, "header", "10.0.0.1")).name == info.id  # cached: still valid
    clock.now += 0.2
    with pytest.raises(Unauthenticated):
        await access.authenticate(key, "header", "10.0.0.1")


async def test_last_used_is_written_at_most_once_a_minute(engine: AsyncEngine) -> None:
    clock = Clock()
    access = make(engine, clock)
    store = AccessStore(engine)
    info, key = await store.create_key("widget", "channel")
    await access.authenticate(key, "header", "a")
    first = await store.key(info.id)
    assert first is not None and first.last_used_at is not None
    await asyncio.sleep(0.01)
    clock.now += 30
    await access.authenticate(key, "header", "a")
    assert (await store.key(info.id)).last_used_at == first.last_used_at  # type: ignore[union-attr]
    clock.now += 31
    await access.authenticate(key, "header", "a")
    later = await store.key(info.id)
    assert later is not None and later.last_used_at is not None and later.last_used_at > first.last_used_at


async def test_sign_in_gives_a_session_and_the_same_refusal_for_every_failure(engine: AsyncEngine) -> None:
    clock = Clock()
    access = make(engine, clock)
    store = AccessStore(engine)
    await store.create_account("Admin", "admin", hash_password(PASSWORD))
    await store.create_account("off", "agent", hash_password(PASSWORD))
    await store.disable("off")

    session = await access.login("ADMIN", PASSWORD, "10.0.0.1")
    assert (session.username, session.role) == ("admin", "admin")
    who = await access.authenticate(session.token, "cookie", "10.0.0.1")
    assert (who.kind, who.name, who.role, who.via) == ("user", "admin", "admin", "cookie")
    assert who.expires_at == session.expires_at

    failures = []
    for username, password in (("admin", "wrong password!"), ("nobody", PASSWORD), ("off", PASSWORD)):
        with pytest.raises(InvalidCredentials) as refused:
            await access.login(username, password, "10.0.0.1")
        failures.append(str(refused.value))
    assert len(set(failures)) == 1


async def test_sessions_end_when_the_account_is_disabled_or_its_password_changes(engine: AsyncEngine) -> None:
    clock = Clock()
    access = make(engine, clock)
    store = AccessStore(engine)
    await store.create_account("agent7", "agent", hash_password(PASSWORD))
    token = (await access.login("agent7", PASSWORD, "a")).token
    await store.set_password("agent7", hash_password("a brand new password"))
    clock.now += 5.1  # past the account cache
    with pytest.raises(Unauthenticated):
        await access.authenticate(token, "header", "a")
    fresh = (await access.login("agent7", "a brand new password", "a")).token
    assert (await access.authenticate(fresh, "header", "a")).name == "agent7"
    await store.disable("agent7")
    clock.now += 5.1
    with pytest.raises(Unauthenticated):
        await access.authenticate(fresh, "header", "a")
    await store.enable("agent7")
    clock.now += 5.1
    with pytest.raises(Unauthenticated):  # enabling again does not revive earlier sessions
        await access.authenticate(fresh, "header", "a")


async def test_sign_in_tries_are_limited_per_username_and_address(engine: AsyncEngine) -> None:
    clock = Clock()
    access = make(engine, clock, login=Rule(per_s=3 / 60, burst=3))
    await AccessStore(engine).create_account("target", "admin", hash_password(PASSWORD))
    for _ in range(3):
        with pytest.raises(InvalidCredentials):
            await access.login("target", "guess guess guess", "10.0.0.9")
    with pytest.raises(RateLimited) as limited:
        await access.login("target", PASSWORD, "10.0.0.9")  # even the right password waits now
    assert limited.value.scope == "login" and limited.value.retry_after == 20
    assert (await access.login("target", PASSWORD, "10.0.0.10")).role == "admin"  # another address
    with pytest.raises(InvalidCredentials):
        await access.login("someone-else", "guess guess guess", "10.0.0.9")  # another username
    clock.now += 20
    assert (await access.login("TARGET", PASSWORD, "10.0.0.9")).username == "target"


async def test_request_and_turn_limits_have_their_own_buckets(engine: AsyncEngine) -> None:
    clock = Clock()
    access = make(engine, clock, per_key=Rule(1.0, 2), per_user=Rule(1 / 60, 1))
    caller = anonymous("10.1.1.1")
    await access.limit_request(caller)
    await access.limit_request(caller)
    with pytest.raises(RateLimited) as over:
        await access.limit_request(caller)
    assert over.value.scope == "key"
    await access.limit_request(anonymous("10.1.1.2"))
    await access.limit_turn(caller, "user-1")
    with pytest.raises(RateLimited) as turns:
        await access.limit_turn(anonymous("10.9.9.9"), "user-1")  # anonymous users share one namespace
    assert turns.value.scope == "user" and turns.value.retry_after == 60
    keyed = await access.authenticate(None, "header", "x")
    assert keyed.kind == "anonymous"
    off = make(engine, clock)
    for _ in range(100):
        await off.limit_request(caller)
        await off.limit_turn(caller, "user-1")
