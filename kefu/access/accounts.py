"""The access tables: API keys (``api_keys``) and agent and admin accounts (``accounts``)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import exists, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from kefu.access.keys import new_key
from kefu.access.principals import ACCOUNT_ROLES, Role, as_role
from kefu.store.models import AccountRow, ApiKeyRow

# Letters of any script (Chinese names too), digits and . _ @ -; stored NFKC-normalised and case-folded.
_USERNAME = re.compile(r"^[\w.@-]{1,64}$")


class AccountExists(Exception):
    pass


class UnknownAccount(Exception):
    pass


def normalise_username(name: str) -> str:
    """The stored form of a username; ValueError (English / Chinese) when it cannot be one."""
    value = unicodedata.normalize("NFKC", name).strip().casefold()
    if not _USERNAME.fullmatch(value):
        raise ValueError("a username has 1-64 letters, digits or . _ @ - / 用户名为 1-64 个字母、数字或 . _ @ - 字符")
    return value


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands timestamps back without their zone; they were written in UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(stamps: dict[str, datetime | None]) -> dict[str, str | None]:
    return {k: v.isoformat() if v else None for k, v in stamps.items()}


@dataclass(frozen=True)
class KeyInfo:
    id: str
    name: str
    role: Role
    secret_sha256: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """What may be shown: never the hash."""
        stamps = {"created_at": self.created_at, "last_used_at": self.last_used_at, "revoked_at": self.revoked_at}
        return {"id": self.id, "name": self.name, "role": self.role, **_iso(stamps)}


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    role: Role
    password_hash: str
    session_gen: int
    created_at: datetime
    password_changed_at: datetime
    last_login_at: datetime | None
    disabled_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """What may be shown: never the password hash."""
        stamps = {
            "created_at": self.created_at,
            "password_changed_at": self.password_changed_at,
            "last_login_at": self.last_login_at,
            "disabled_at": self.disabled_at,
        }
        return {"username": self.username, "role": self.role, **_iso(stamps)}


Record = TypeVar("Record", KeyInfo, Account)


def _from_row(kind: type[Record], row: Any) -> Record:
    values: dict[str, Any] = {f.name: getattr(row, f.name) for f in fields(kind)}
    values = {k: _aware(v) if isinstance(v, datetime) else v for k, v in values.items()}
    return kind(**{**values, "role": as_role(values["role"])})


class AccessStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    # --- API keys
    async def create_key(self, name: str, role: Role) -> tuple[KeyInfo, str]:
        """A new key: its row and the key itself, which is not kept anywhere and cannot be shown again."""
        name = name.strip()
        if not 1 <= len(name) <= 100:
            raise ValueError("a key name has 1-100 characters / 密钥名称为 1-100 个字符")
        as_role(role)
        async with self.engine.begin() as conn:
            while True:  # 36^8 ids: a clash is rare, but it must not overwrite or fail
                made = new_key()
                taken = await conn.scalar(select(exists().where(ApiKeyRow.id == made.id)))
                if not taken:
                    break
            info = KeyInfo(made.id, name, role, made.sha256, _now(), None, None)
            values = {"id": info.id, "name": name, "role": role, "secret_sha256": info.secret_sha256}
            await conn.execute(insert(ApiKeyRow).values(**values, created_at=info.created_at))
        return info, made.key

    async def keys(self) -> list[KeyInfo]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id))).all()
        return [_from_row(KeyInfo, r) for r in rows]

    async def key(self, key_id: str) -> KeyInfo | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(ApiKeyRow).where(ApiKeyRow.id == key_id))).first()
        return _from_row(KeyInfo, row) if row else None

    async def revoke_key(self, key_id: str) -> KeyInfo | None:
        """Revokes a key (a revoked one stays revoked, with its first revocation time); None if unknown."""
        async with self.engine.begin() as conn:
            live = (ApiKeyRow.id == key_id) & ApiKeyRow.revoked_at.is_(None)
            await conn.execute(update(ApiKeyRow).where(live).values(revoked_at=_now()))
            row = (await conn.execute(select(ApiKeyRow).where(ApiKeyRow.id == key_id))).first()
        return _from_row(KeyInfo, row) if row else None

    async def any_active_key(self) -> bool:
        async with self.engine.connect() as conn:
            return bool(await conn.scalar(select(exists().where(ApiKeyRow.revoked_at.is_(None)))))

    async def touch_key(self, key_id: str, at: datetime) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(last_used_at=at))

    # --- accounts
    async def create_account(self, username: str, role: Role, password_hash: str) -> Account:
        username = normalise_username(username)
        if role not in ACCOUNT_ROLES:
            raise ValueError(f"an account's role is one of {', '.join(ACCOUNT_ROLES)}")
        now = _now()
        values = {
            "username": username,
            "role": role,
            "password_hash": password_hash,
            "session_gen": 0,
            "created_at": now,
            "password_changed_at": now,
        }
        try:
            async with self.engine.begin() as conn:
                await conn.execute(insert(AccountRow).values(**values))
        except IntegrityError as exc:
            raise AccountExists(f"account {username!r} exists / 账号 {username!r} 已存在") from exc
        account = await self.account(username)
        assert account is not None
        return account

    async def accounts(self) -> list[Account]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(select(AccountRow).order_by(AccountRow.username))).all()
        return [_from_row(Account, r) for r in rows]

    async def account(self, username: str) -> Account | None:
        try:
            username = normalise_username(username)
        except ValueError:
            return None
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(AccountRow).where(AccountRow.username == username))).first()
        return _from_row(Account, row) if row else None

    async def _change(self, username: str, **values: Any) -> Account:
        """Changes an account and bumps its session generation, so tokens issued before stop working."""
        username = normalise_username(username)
        async with self.engine.begin() as conn:
            done = await conn.execute(
                update(AccountRow)
                .where(AccountRow.username == username)
                .values(session_gen=AccountRow.session_gen + 1, **values)
            )
        if not done.rowcount:
            raise UnknownAccount(f"no account {username!r} / 没有账号 {username!r}")
        account = await self.account(username)
        assert account is not None
        return account

    async def set_password(self, username: str, password_hash: str) -> Account:
        return await self._change(username, password_hash=password_hash, password_changed_at=_now())

    async def disable(self, username: str) -> Account:
        return await self._change(username, disabled_at=_now())

    async def enable(self, username: str) -> Account:
        return await self._change(username, disabled_at=None)

    async def record_login(self, username: str, rehashed: str | None = None) -> None:
        """The sign-in time, and a hash with the current parameters when the stored one is older."""
        values: dict[str, Any] = {"last_login_at": _now()}
        if rehashed is not None:
            values["password_hash"] = rehashed
        async with self.engine.begin() as conn:
            await conn.execute(update(AccountRow).where(AccountRow.username == username).values(**values))
