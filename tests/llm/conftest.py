"""A fresh, migrated model registry per test (SQLite, or PostgreSQL for the tests that ask for it)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from kefu.llm.registry import ModelRegistry
from kefu.store.database import create_engine, migrate


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def registry(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ModelRegistry]:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = create_engine(url)
    await migrate(engine)
    if request.param == "postgres":  # one database per session: start each test from empty tables
        async with engine.begin() as conn:
            await conn.execute(text("DELETE FROM llm_calls"))
            await conn.execute(text("DELETE FROM llm_audit"))
            await conn.execute(text("DELETE FROM llm_aliases"))
            await conn.execute(text("DELETE FROM llm_models"))
    try:
        yield ModelRegistry(engine)
    finally:
        await engine.dispose()


@pytest.fixture
async def sqlite_registry(tmp_path: Path) -> AsyncIterator[ModelRegistry]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / f'registry-{uuid.uuid4().hex[:6]}.db'}")
    await migrate(engine)
    try:
        yield ModelRegistry(engine)
    finally:
        await engine.dispose()
