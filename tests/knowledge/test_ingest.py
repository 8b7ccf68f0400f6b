"""Ingest: a folder with good and bad files; bad ones are refused one by one, the rest go in, and only
changed files are encoded again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kefu.knowledge.encoding import PRIMARY_ENCODER
from kefu.knowledge.ingest import expand, ingest, read_files
from kefu.knowledge.library import KnowledgeLibrary
from kefu.nlu.encoder import SentenceEncoder
from kefu.runtime import Runtime
from kefu.store.database import create_engine, migrate

LIMIT = 20_000


@pytest.fixture
async def library(tmp_path: Path) -> AsyncIterator[KnowledgeLibrary]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'kb.db'}")
    await migrate(engine)
    yield KnowledgeLibrary(engine)
    await engine.dispose()


def _folder(root: Path) -> Path:
    docs = root / "docs"
    (docs / "more").mkdir(parents=True)
    (docs / "returns.md").write_text("# Returns\n\nYou can return any item within 7 days of delivery.\n")
    (docs / "配送.txt").write_bytes("配送说明\n\n下单后24小时内发货，偏远地区3到5天送达。\n".encode("gbk"))
    (docs / "faq.csv").write_text("question,answer\nDo you ship abroad?,Not yet.\nCan I pay by card?,Yes.\n")
    (docs / "page.html").write_text(
        "<html><title>Warranty</title><body><h1>Warranty</h1><p>One year.</p></body></html>"
    )
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (docs / "binary.md").write_bytes(b"\x00\x01\x02 binary")
    (docs / "empty.txt").write_text("   \n\n")
    (docs / "huge.txt").write_text("big " * 10_000)
    (docs / "more" / "returns.md").write_text("# Returns again\n\nA second file with the same id.\n")
    (docs / ".hidden.md").write_text("# Hidden\n\nNever read.\n")
    return docs


@pytest.mark.asyncio
async def test_bad_files_are_refused_one_by_one_and_the_rest_go_in(
    tmp_path: Path, library: KnowledgeLibrary, runtime: Runtime
) -> None:
    docs = _folder(tmp_path)
    files, missing = expand([docs, tmp_path / "nowhere.md"])
    assert [m.error for m in missing] == [f"{tmp_path / 'nowhere.md'}: no such file or folder"]
    assert ".hidden.md" not in {f.name for f in files}
    pack = {("page", "en"): "pack shop"}
    read, refused = read_files(files, language=None, max_bytes=LIMIT, reserved=pack)
    errors = {Path(r.path).name: r.error or "" for r in refused}
    assert set(errors) == {"broken.pdf", "binary.md", "empty.txt", "huge.txt", "returns.md", "page.html"}
    assert "corrupt or unreadable PDF" in errors["broken.pdf"]
    assert "binary" in errors["binary.md"] and "empty document" in errors["empty.txt"]
    assert "over the" in errors["huge.txt"] and "limit" in errors["huge.txt"]
    assert (
        "duplicate document id 'returns'" in errors["returns.md"] and str(docs / "returns.md") in errors["returns.md"]
    )
    assert "belongs to pack shop" in errors["page.html"]
    assert all(r.path in r.error for r in refused if r.error)  # every message names its file

    encoders: dict[str, SentenceEncoder] = {PRIMARY_ENCODER: runtime.encoder}
    encoded: list[int] = []
    results = await ingest(library, read, lambda _: encoders, encoded.append)
    assert sorted((r.id, r.language, r.status, r.version) for r in results) == [
        ("faq", "en", "added", 1),
        ("returns", "en", "added", 1),
        ("配送", "zh", "added", 1),
    ]
    assert sum(encoded) == sum(r.chunks for r in results) == 1 + 1 + 2
    revision = await library.revision()

    again, _ = read_files(files, language=None, max_bytes=LIMIT, reserved=pack)
    encoded.clear()
    assert {r.status for r in await ingest(library, again, lambda _: encoders, encoded.append)} == {"unchanged"}
    assert encoded == [] and await library.revision() == revision

    (docs / "returns.md").write_text("# Returns\n\nYou can return any item within 14 days of delivery.\n")
    changed, _ = read_files([docs / "returns.md", docs / "faq.csv"], language=None, max_bytes=LIMIT)
    results = await ingest(library, changed, lambda _: encoders, encoded.append)
    assert sorted((r.id, r.status, r.version) for r in results) == [
        ("faq", "unchanged", None),
        ("returns", "updated", 2),
    ]
    assert sum(encoded) == 1  # only the changed file was encoded again
    _, stored = await library.encoded()
    assert {d.doc_id: d.chunks[0].text for d in stored}["returns"].endswith("within 14 days of delivery.")
