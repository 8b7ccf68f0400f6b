"""An admin for a real server: the account is made in its database before it starts, then signs in."""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from kefu.access.accounts import AccessStore, AccountExists
from kefu.access.passwords import hash_password
from kefu.config import load_settings
from kefu.store.database import create_engine, migrate

ADMIN_USER = "e2e-admin"
ADMIN_PASSWORD = "e2e admin password 管理员"


def add_admin(data_dir: Path, database_url: str = "") -> None:
    """The admin account in the database a server on ``data_dir`` (or ``database_url``) will use."""

    async def create() -> None:
        engine = create_engine(load_settings(data_dir=data_dir, database_url=database_url).resolved_database_url)
        try:
            await migrate(engine)
            with contextlib.suppress(AccountExists):  # servers sharing one database share the account
                await AccessStore(engine).create_account(ADMIN_USER, "admin", hash_password(ADMIN_PASSWORD))
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(1) as pool:  # a loop of its own, whether or not the caller runs one
        pool.submit(asyncio.run, create()).result()


def admin_headers(base: str) -> dict[str, str]:
    signed_in = httpx.post(f"{base}/auth/login", json={"username": ADMIN_USER, "password": ADMIN_PASSWORD}, timeout=30)
    assert signed_in.status_code == 200, signed_in.text
    return {"Authorization": f"Bearer {signed_in.json()['token']}"}


def admin_client(base: str, timeout: float = 60) -> httpx.Client:
    return httpx.Client(base_url=base, headers=admin_headers(base), timeout=timeout)
