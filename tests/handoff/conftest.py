"""Fixtures of the handover tests: a migrated model registry on a SQLite file of the test's own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kefu.llm.registry import ModelRegistry
from kefu.store.database import create_engine, migrate


@pytest.fixture
async def sqlite_registry(tmp_path: Path) -> AsyncIterator[ModelRegistry]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}")
    await migrate(engine)
    try:
        yield ModelRegistry(engine)
    finally:
        await engine.dispose()
