"""The knowledge library on SQLite and PostgreSQL: versions, revisions, removal, and the stored encoding."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from kefu.knowledge.documents import Chunk
from kefu.knowledge.encoding import PRIMARY_ENCODER, EncodedDocument
from kefu.knowledge.library import KnowledgeLibrary
from kefu.store.database import create_engine, migrate


def _encoded(doc_id: str, language: str = "en", text: str = "Seven days to return.") -> EncodedDocument:
    rng = np.random.default_rng(len(doc_id))
    chunks = (
        Chunk(doc_id, language, "Returns", ("Returns",), text, ("refund",), 0),  # type: ignore[arg-type]
        Chunk(doc_id, language, "Returns", ("Returns", "Costs"), "退货运费由买家承担。", (), 1),  # type: ignore[arg-type]
    )
    return EncodedDocument(
        doc_id,
        language,
        "Returns",
        f"{doc_id}.md",
        "article",
        chunks,
        (("seven", "day", "return"), ("退货", "运费")),
        {
            PRIMARY_ENCODER: rng.random((2, 4), dtype=np.float32),
            "all-minilm-l6-v2": rng.random((2, 3), dtype=np.float32),
        },
        {PRIMARY_ENCODER: rng.random(4, dtype=np.float32)},
        {PRIMARY_ENCODER: rng.random(4, dtype=np.float32)},
        (("Seven days to return.", 0), ("退货运费由买家承担。", 1)),
    )


def test_encoded_document_round_trips_through_bytes() -> None:
    doc = _encoded("returns")
    back = EncodedDocument.from_bytes(doc.to_bytes())
    assert (back.doc_id, back.language, back.title, back.kind, back.chunks, back.tokens, back.sentences) == (
        doc.doc_id, doc.language, doc.title, doc.kind, doc.chunks, doc.tokens, doc.sentences
    )  # fmt: skip
    for name in doc.vectors:
        assert np.array_equal(back.vectors[name], doc.vectors[name])
    assert np.array_equal(back.title_vectors[PRIMARY_ENCODER], doc.title_vectors[PRIMARY_ENCODER])
    assert np.array_equal(back.lead_vectors[PRIMARY_ENCODER], doc.lead_vectors[PRIMARY_ENCODER])


@pytest.fixture(params=["sqlite", "postgresql"])
async def library(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[KnowledgeLibrary]:
    url = (
        f"sqlite+aiosqlite:///{tmp_path / 'kb.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    engine = create_engine(url)
    await migrate(engine)
    if request.param == "postgresql":  # the session database is shared: start from an empty library
        lib = KnowledgeLibrary(engine)
        for info in await lib.documents():
            await lib.remove(info.id)
    yield KnowledgeLibrary(engine)
    await engine.dispose()


@pytest.mark.asyncio
async def test_versions_revisions_and_removal(library: KnowledgeLibrary) -> None:
    start = await library.revision()
    first = await library.save(_encoded("returns"), "a" * 64, [PRIMARY_ENCODER])
    assert (first.version, first.chunks, await library.revision()) == (1, 2, start + 1)
    await library.save(_encoded("returns", "zh"), "b" * 64, [PRIMARY_ENCODER])
    second = await library.save(_encoded("returns", text="Fourteen days now."), "c" * 64, [PRIMARY_ENCODER])
    assert second.version == 2 and await library.revision() == start + 3
    assert await library.fingerprints() == {("returns", "en"): "c" * 64, ("returns", "zh"): "b" * 64}
    revision, docs = await library.encoded()
    assert revision == start + 3
    assert sorted((d.doc_id, d.language, d.chunks[0].text) for d in docs) == [
        ("returns", "en", "Fourteen days now."),
        ("returns", "zh", "Seven days to return."),
    ]
    listed = await library.documents()
    assert [(d.id, d.language, d.version, d.origin) for d in listed] == [
        ("returns", "en", 2, "library"),
        ("returns", "zh", 1, "library"),
    ]
    assert [d.language for d in await library.remove("returns", "zh")] == ["zh"]
    assert await library.remove("returns", "zh") == []
    assert await library.revision() == start + 4  # a removal that found nothing changes nothing
    assert [d.id for d in await library.remove("returns")] == ["returns"]
    assert await library.documents() == [] and await library.fingerprints() == {}
