"""KEFU_KB_INDEX=pgvector against the real PostgreSQL server (a database of its own, with the extension):
the same ranking as the in-memory index, incremental and concurrent syncs, the library and the chat's
tool on top, and clear errors."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlparse

import asyncpg
import numpy as np
import pytest

from kefu.actions.tools import SearchKnowledge
from kefu.config import SettingsError
from kefu.core.types import TurnToolContext
from kefu.knowledge.base import MINILM, PASSAGE_TOKENS, encode_cached, encoder_names, ranking_for
from kefu.knowledge.documents import Document
from kefu.knowledge.encoding import EncodedDocument, encode_documents
from kefu.knowledge.index import KnowledgeIndex
from kefu.knowledge.library import KnowledgeLibrary
from kefu.knowledge.pgvector import PgVectorError, PgVectorStore
from kefu.nlu.encoder import MiniLmEncoder, SentenceEncoder, UseEncoder
from kefu.packs.loader import load_pack
from kefu.runtime import build_knowledge
from kefu.store.database import create_engine, migrate
from tests.conftest import DATA, MODEL_CACHE, POSTGRES_ADMIN_URL, _run_in_thread, make_settings, reachable

pytestmark = pytest.mark.postgres


async def _admin(sql: str, url: str = POSTGRES_ADMIN_URL) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(scope="module")
def pgvector_url() -> Iterator[str]:
    """A fresh database with the vector extension, dropped at the end; skipped (with the reason) where
    the server has no pgvector (`make pgvector` installs it on a Debian server run by this machine)."""
    if not reachable(POSTGRES_ADMIN_URL, 5432):
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}")
    name = f"kefu_pgv_{uuid.uuid4().hex[:10]}"
    _run_in_thread(_admin(f'CREATE DATABASE "{name}"'))
    parsed = urlparse(POSTGRES_ADMIN_URL)
    try:
        try:
            _run_in_thread(_admin("CREATE EXTENSION IF NOT EXISTS vector", f"postgresql://{parsed.netloc}/{name}"))
        except asyncpg.PostgresError as exc:
            pytest.skip(f"the PostgreSQL server has no pgvector extension: {exc}")
        yield f"postgresql+asyncpg://{parsed.netloc}/{name}"
    finally:
        _run_in_thread(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def encoders() -> dict[str, SentenceEncoder]:
    return {UseEncoder.name: UseEncoder(), MINILM: MiniLmEncoder(1, max_tokens=PASSAGE_TOKENS)}


@pytest.fixture(scope="module")
def pack_docs(encoders: dict[str, SentenceEncoder]) -> list[EncodedDocument]:
    pack = load_pack("ecommerce")
    return encode_cached(
        pack.documents,
        lambda language: {n: encoders[n] for n in encoder_names(language, True)},
        MODEL_CACHE / "knowledge",
    )


@pytest.fixture
async def store(pgvector_url: str) -> AsyncIterator[PgVectorStore]:
    # A new store per test, on emptied tables: each test says what it syncs.
    opened = await PgVectorStore.open(pgvector_url, candidates=8)
    await opened.sync([])
    yield opened
    await opened.close()


def _questions() -> list[tuple[str, str]]:
    rows = []
    for name in ("ecommerce_kb_questions", "ecommerce_kb_questions_unseen", "ecommerce_kb_questions_blind"):
        rows += [json.loads(line) for line in (DATA / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]
    return [(str(r["question"]), str(r["lang"])) for r in rows]


def _index(docs: list[EncodedDocument], encoders: dict[str, SentenceEncoder], keep: bool) -> KnowledgeIndex:
    rankings = {lang: ranking_for(lang, True) for lang in ("en", "zh")}
    return KnowledgeIndex(docs, encoders, rankings, keep_vectors=keep)


async def test_the_same_ranking_as_the_in_memory_index(
    store: PgVectorStore, pack_docs: list[EncodedDocument], encoders: dict[str, SentenceEncoder]
) -> None:
    """Every demo question (tuning, unseen and blind sets, zh and en), 8 candidates per index for 36
    articles per language: the same five documents in the same order, the same chunks and scores."""
    report = await store.sync(pack_docs)
    assert report.added == len(pack_docs) and report.removed == 0
    memory, dense = _index(pack_docs, encoders, True), _index(pack_docs, encoders, False)
    questions = _questions()
    assert len(questions) > 600
    for text, lang in questions:
        expected = memory.search(text, lang, 5)  # type: ignore[arg-type]
        got = await dense.search_with(store, text, lang, 5)  # type: ignore[arg-type]
        assert [(h.chunk.doc_id, h.chunk.position) for h in got] == [
            (h.chunk.doc_id, h.chunk.position) for h in expected
        ], text
        assert np.allclose([h.score for h in got], [h.score for h in expected], atol=1e-5), text
    with pytest.raises(RuntimeError, match="search_with"):
        dense.search("退货", "zh", 5)


async def test_sync_writes_only_what_changed(
    store: PgVectorStore, pack_docs: list[EncodedDocument], encoders: dict[str, SentenceEncoder]
) -> None:
    english = [d for d in pack_docs if d.language == "en"]
    await store.sync(english)
    again = await store.sync(english)
    assert (again.added, again.removed, again.rows) == (0, 0, 0)

    # One article's text changes (new vectors), one is removed: two documents touched, nothing else.
    warranty = next(d for d in english if d.doc_id == "warranty")
    changed = replace(warranty, vectors={k: v[::-1].copy() for k, v in warranty.vectors.items()})
    kept = [changed if d.doc_id == "warranty" else d for d in english if d.doc_id != "gift-wrapping"]
    report = await store.sync(kept)
    assert (report.added, report.removed) == (1, 2)
    stored = await store.stored()
    assert ("en", "gift-wrapping") not in stored and len(stored) == len(kept)

    index = _index(kept, encoders, False)
    hits = await index.search_with(store, "can you wrap my order as a present with a card", "en", 5)
    assert hits and all(h.chunk.doc_id != "gift-wrapping" for h in hits)


async def test_concurrent_syncs_leave_one_consistent_copy(
    pgvector_url: str, store: PgVectorStore, pack_docs: list[EncodedDocument]
) -> None:
    """Two server processes starting at once both sync: the advisory lock serialises them."""
    other = await PgVectorStore.open(pgvector_url, candidates=8)
    try:
        first, second = await asyncio.gather(store.sync(pack_docs), other.sync(pack_docs))
    finally:
        await other.close()
    assert sorted([first.added, second.added]) == [0, len(pack_docs)]
    connection = await asyncpg.connect(pgvector_url.replace("+asyncpg", ""))
    try:
        chunks = await connection.fetchval("SELECT count(*) FROM kb_pgv_chunk_zh_use_multilingual_v3_512")
    finally:
        await connection.close()
    assert chunks == sum(len(d.chunks) for d in pack_docs if d.language == "zh")


async def test_documents_the_store_or_the_snapshot_lacks(
    store: PgVectorStore, pack_docs: list[EncodedDocument], encoders: dict[str, SentenceEncoder]
) -> None:
    """Between two refreshes another process may have changed the tables: a document the snapshot does
    not know is ignored, one the store does not hold (yet) is left out, and nothing fails."""
    chinese = [d for d in pack_docs if d.language == "zh"]
    await store.sync([d for d in chinese if d.doc_id != "invoices"])
    snapshot = _index([d for d in chinese if d.doc_id != "warranty"], encoders, False)
    hits = await snapshot.search_with(store, "保修期多久，发票怎么开", "zh", 10)
    ids = [h.chunk.doc_id for h in hits]
    assert ids and "warranty" not in ids and "invoices" not in ids


async def test_the_library_and_the_chat_tool_on_pgvector(pgvector_url: str, tmp_path: Path) -> None:
    """build_knowledge as the server runs it: pack articles and a library document in pgvector, found by
    the chat's search_knowledge tool and gone from the ranking once removed."""
    settings = make_settings(tmp_path, database_url=pgvector_url, kb_index="pgvector", kb_reload_s=0)
    engine = create_engine(settings.resolved_database_url)
    await migrate(engine)
    library = KnowledgeLibrary(engine)
    kb = await build_knowledge(load_pack(settings.pack), settings, UseEncoder(), library)
    try:
        assert kb.dense is not None
        doc = Document(
            "lost-earbud",
            "en",
            "Replacing a single lost earbud",
            "# Lost earbud\nIf you lose one earbud of "
            "the Wireless Earbuds Pro, we sell a single replacement earbud for ¥199.",
            "lost-earbud.md",
        )
        encoded = encode_documents([doc], kb.encoders_for("en"))[0]
        await library.save(encoded, "sha", sorted(kb.encoders_for("en")))
        assert await kb.refresh()
        tool = SearchKnowledge(kb, settings.knowledge_min_score, settings.knowledge_intent_min_score)
        context = TurnToolContext("u1", "en", "c1", "I lost one of my earbuds", None)
        result = await tool({"query": "I lost one of my earbuds, can I buy just one?"}, context)
        assert result["hits"][0]["id"] == "lost-earbud"
        zh = await kb.search_async("退货运费谁承担", "zh", 3)
        assert zh[0].chunk.doc_id == "return-shipping"

        await library.remove("lost-earbud", "en")
        assert await kb.refresh()
        hits = await kb.search_async("I lost one of my earbuds, can I buy just one?", "en", 5)
        assert all(h.chunk.doc_id != "lost-earbud" for h in hits)
        assert ("en", "lost-earbud") not in await kb.dense.stored()
    finally:
        await kb.close()
        await engine.dispose()


def test_pgvector_needs_postgresql(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="KEFU_KB_INDEX=pgvector needs a PostgreSQL database"):
        make_settings(tmp_path, kb_index="pgvector")


async def test_a_database_without_the_extension_is_a_clear_error(pgvector_url: str) -> None:
    """A role that may not create the extension, in a database that does not have it."""
    parsed = urlparse(POSTGRES_ADMIN_URL)
    name, role = f"kefu_novec_{uuid.uuid4().hex[:8]}", f"kefu_novec_{uuid.uuid4().hex[:8]}"
    await _admin(f'CREATE ROLE "{role}" LOGIN')
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        with pytest.raises(PgVectorError, match="no usable pgvector extension"):
            await PgVectorStore.open(f"postgresql+asyncpg://{role}@{parsed.hostname}:{parsed.port or 5432}/{name}")
        with pytest.raises(PgVectorError, match="cannot connect"):
            await PgVectorStore.open(f"postgresql+asyncpg://{role}@127.0.0.1:1/{name}")
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await _admin(f'DROP ROLE IF EXISTS "{role}"')


async def test_a_chat_turn_answers_from_pgvector(pgvector_url: str, tmp_path: Path) -> None:
    """The whole server with KEFU_KB_INDEX=pgvector: a policy question gets the knowledge answer with its
    citation, in both languages."""
    import httpx

    from kefu.api.app import create_app
    from kefu.runtime import build_runtime

    settings = make_settings(tmp_path, database_url=pgvector_url, kb_index="pgvector")
    runtime = await build_runtime(settings)
    try:
        assert runtime.knowledge.dense is not None
        assert len(await runtime.knowledge.dense.stored()) == 72  # the pack's 36 articles in two languages
        app = create_app(settings, runtime)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://kefu") as client:
            for conversation, text, cited in (
                ("pgv-en", "How long is the warranty on your products?", "warranty"),
                ("pgv-zh", "发票怎么开？", "invoices"),
            ):
                response = await client.post(f"/v1/conversations/{conversation}/messages", json={"text": text})
                assert response.status_code == 200, response.text
                citations = [c["id"] for c in response.json()["reply"]["citations"]]
                assert cited in citations, response.json()
    finally:
        await runtime.close()
