"""The access repository and the LLM token quota, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from kefu.access.accounts import AccessStore, AccountExists, UnknownAccount, normalise_username
from kefu.access.keys import digest
from kefu.access.passwords import hash_password
from kefu.access.quota import LlmTokenQuota
from kefu.llm.registry import CallRecord, ModelRegistry
from kefu.store.models import ApiKeyRow


async def test_keys_are_stored_hashed_listed_without_secrets_and_revoked(engine: AsyncEngine) -> None:
    store = AccessStore(engine)
    assert not await store.any_active_key()
    info, key = await store.create_key("web widget 网页", "channel")
    admin, _ = await store.create_key("ops", "admin")
    assert await store.any_active_key()
    async with engine.connect() as conn:
        stored = (await conn.execute(select(ApiKeyRow).where(ApiKeyRow.id == info.id))).one()
    assert stored.secret_sha256 == digest(key) and key not in str(tuple(stored))
    listed = await store.keys()
    assert [(k.id, k.name, k.role) for k in listed] == [
        (info.id, "web widget 网页", "channel"),
        (admin.id, "ops", "admin"),
    ]
    assert all("secret_sha256" not in k.to_dict() and "sha" not in str(k.to_dict()) for k in listed)

    revoked = await store.revoke_key(info.id)
    assert revoked is not None and revoked.revoked_at is not None
    again = await store.revoke_key(info.id)
    assert again is not None and again.revoked_at == revoked.revoked_at  # the first revocation time stays
    assert await store.revoke_key("nokey123") is None
    assert await store.any_active_key()  # the admin key is still live
    await store.revoke_key(admin.id)
    assert not await store.any_active_key()


async def test_key_use_is_recorded(engine: AsyncEngine) -> None:
    store = AccessStore(engine)
    info, _ = await store.create_key("app", "agent")
    at = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
    await store.touch_key(info.id, at)
    used = await store.key(info.id)
    assert used is not None and used.last_used_at == at and used.role == "agent"


async def test_key_names_and_roles_are_checked(engine: AsyncEngine) -> None:
    store = AccessStore(engine)
    with pytest.raises(ValueError, match="1-100"):
        await store.create_key("  ", "channel")
    with pytest.raises(ValueError, match="role"):
        await store.create_key("x", "root")  # type: ignore[arg-type]
    assert await store.keys() == []


def test_usernames_are_normalised_in_both_scripts() -> None:
    assert normalise_username(" Alice.Admin ") == "alice.admin"
    assert normalise_username("王小明") == "王小明"
    assert normalise_username("ＡＧＥＮＴ０１") == "agent01"  # full-width typing
    for bad in ("", "a b", "x" * 65, "semi;colon", "<script>"):
        with pytest.raises(ValueError, match="用户名"):
            normalise_username(bad)


async def test_accounts_life_cycle(engine: AsyncEngine) -> None:
    store = AccessStore(engine)
    created = await store.create_account("Alice", "admin", hash_password("first password"))
    assert (created.username, created.role, created.session_gen, created.disabled_at) == ("alice", "admin", 0, None)
    with pytest.raises(AccountExists):
        await store.create_account("ALICE", "agent", hash_password("another password"))
    with pytest.raises(ValueError, match="role"):
        await store.create_account("bob", "channel", hash_password("another password"))
    await store.create_account("王小明", "agent", hash_password("坐席密码一二三四五六"))
    assert [a.username for a in await store.accounts()] == ["alice", "王小明"]
    assert "password_hash" not in created.to_dict() and "scrypt" not in str(created.to_dict())

    changed = await store.set_password("alice", hash_password("second password"))
    assert changed.session_gen == 1 and changed.password_changed_at > created.password_changed_at
    disabled = await store.disable("ALICE")
    assert disabled.disabled_at is not None and disabled.session_gen == 2
    enabled = await store.enable("alice")
    assert enabled.disabled_at is None and enabled.session_gen == 3
    await store.record_login("alice", rehashed="scrypt$new")
    after = await store.account("alice")
    assert after is not None and after.last_login_at is not None and after.password_hash == "scrypt$new"
    with pytest.raises(UnknownAccount):
        await store.disable("nobody")
    assert await store.account("not a valid name") is None


async def test_llm_tokens_used_per_conversation(engine: AsyncEngine) -> None:
    registry = ModelRegistry(engine)

    def call(conversation: str, prompt: int, completion: int) -> CallRecord:
        return CallRecord(conversation, "m1", "local", "smollm2", "stable", "ok", prompt, completion, 12.0, 80.0)

    await registry.record([call("c1", 1200, 150), call("c1", 900, 0), call("c2", 5000, 400)])
    quota = LlmTokenQuota(engine, max_tokens_per_conversation=2500)
    assert await quota.tokens_used("c1") == 2250
    assert await quota.tokens_used("c2") == 5400
    assert await quota.tokens_used("never") == 0
    assert not await quota.exhausted("c1") and await quota.exhausted("c2")
    await registry.record([call("c1", 200, 50)])
    assert await quota.exhausted("c1")  # exactly at the quota counts as used up
    assert not await LlmTokenQuota(engine, 0).exhausted("c2")  # 0: no quota


async def test_the_migration_is_idempotent_and_timestamps_keep_their_zone(engine: AsyncEngine) -> None:
    from kefu.store.database import migrate

    await migrate(engine)
    store = AccessStore(engine)
    info, _ = await store.create_key("tz", "channel")
    fetched = await store.key(info.id)
    assert fetched is not None and fetched.created_at.tzinfo is not None
    assert abs(fetched.created_at - datetime.now(UTC)) < timedelta(minutes=1)
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM accounts")) == 0
