"""The access tables on SQLite and on PostgreSQL, migrated by the project's own migrations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from kefu.store.database import create_engine, migrate


@pytest.fixture(params=["sqlite", "postgres"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    sqlite = request.param == "sqlite"
    url = f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"
    made = create_engine(url if sqlite else request.getfixturevalue("postgres_url"))
    await migrate(made)
    try:
        yield made
    finally:
        if not sqlite:  # the database is shared by the session: leave it empty
            async with made.begin() as conn:
                await conn.execute(text("DELETE FROM api_keys"))
                await conn.execute(text("DELETE FROM accounts"))
                await conn.execute(text("DELETE FROM llm_calls"))
        await made.dispose()
