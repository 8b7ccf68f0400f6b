"""The knowledge base a server or the command line searches: the pack's own articles plus the operator's
library, as one index. The index is an immutable snapshot; ``refresh`` swaps in a new one when the
library's revision changes, so every process serves the same ranking a moment after any change."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from kefu.core.types import Locale
from kefu.knowledge.chunking import MAX_CHARS
from kefu.knowledge.documents import Chunk, Document
from kefu.knowledge.encoding import PRIMARY_ENCODER, EncodedDocument, encode_documents
from kefu.knowledge.index import Hit, KnowledgeIndex, Ranking
from kefu.knowledge.library import DocumentInfo, KnowledgeLibrary
from kefu.knowledge.pgvector import PgVectorStore
from kefu.nlu.encoder import MiniLmEncoder, SentenceEncoder, Vectors

log = logging.getLogger(__name__)
MINILM = MiniLmEncoder.name
PASSAGE_TOKENS = 128  # MiniLM reads passages this far (the chunks are sized to fit)
_FORMAT = 2  # bump when chunking or encoding changes: cached pack articles are encoded again


def encoder_names(language: str, minilm: bool) -> list[str]:
    """The multilingual USE for every language; the English MiniLM for English when enabled
    (it ranks English help articles better: see docs/benchmarks.md)."""
    return [PRIMARY_ENCODER, MINILM] if minilm and language == "en" else [PRIMARY_ENCODER]


def ranking_for(language: str, minilm: bool) -> Ranking:
    """Weights chosen on WixQA's dev questions (over a pool with our distractor articles) and the demo
    pack's tuning questions; the demo's unseen questions only score them (docs/benchmarks.md)."""
    if minilm and language == "en":
        return Ranking(lexical=0.5, dense={MINILM: 1.0, PRIMARY_ENCODER: 0.5}, title=0.5, lead=1.0)
    # USE alone: exact words count for more, and a short title says more than USE's view of a long opening.
    return Ranking(lexical=1.0, dense={PRIMARY_ENCODER: 1.0}, title=1.0, lead=0.5)


def reserved_ids(pack_name: str, docs: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str], str]:
    """(id, language) of the pack's own articles -> who owns them; the library may not use these ids."""
    return {(doc_id, language): f"pack {pack_name} ({source})" for doc_id, language, source in docs}


def owner_of(reserved: Mapping[tuple[str, str], str], doc_id: str, language: str | None) -> str | None:
    return next((o for (i, lg), o in reserved.items() if i == doc_id and language in (None, lg)), None)


def pack_document_info(doc_id: str, language: str, title: str, source: str, kind: str, chunks: int) -> DocumentInfo:
    return DocumentInfo(doc_id, language, title, source, kind, 1, "", chunks, "", origin="pack")


def encode_cached(
    docs: Sequence[Document],
    encoders_for: Callable[[str], Mapping[str, SentenceEncoder]],
    cache_dir: Path | None,
) -> list[EncodedDocument]:
    """Encode the pack's articles, reusing what an earlier start (or ``kefu pack prepare``) stored."""
    out: dict[int, EncodedDocument] = {}
    todo: dict[str, list[tuple[int, Document, Path | None]]] = {}
    for i, doc in enumerate(docs):
        names = sorted(encoders_for(doc.language))
        key = hashlib.sha256(
            json.dumps(
                [_FORMAT, MAX_CHARS, names, doc.id, doc.language, doc.title, doc.body, doc.tags, doc.source]
            ).encode()
        ).hexdigest()[:32]
        path = cache_dir / f"{key}.kbdoc" if cache_dir is not None else None
        if path is not None and path.is_file():
            try:
                out[i] = EncodedDocument.from_bytes(path.read_bytes())
                continue
            except (OSError, ValueError, KeyError) as exc:
                log.warning("knowledge cache %s unreadable (%s); encoding again", path, exc)
        todo.setdefault(doc.language, []).append((i, doc, path))
    for language, items in todo.items():
        encoded = encode_documents([d for _, d, _ in items], encoders_for(language))
        for (i, _, path), enc in zip(items, encoded, strict=True):
            out[i] = enc
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_suffix(".partial")
                partial.write_bytes(enc.to_bytes())
                partial.replace(path)
    return [out[i] for i in range(len(docs))]


class KnowledgeBase:
    def __init__(
        self,
        pack_docs: Sequence[EncodedDocument],
        library: KnowledgeLibrary | None,
        encoders: Mapping[str, SentenceEncoder],
        minilm: bool,
        pack_name: str = "pack",
        dense: PgVectorStore | None = None,
    ) -> None:
        """``dense``: the vectors are searched in pgvector, and this process keeps only BM25, the
        documents and the vectors' moments (``refresh`` keeps the store in step with the library)."""
        self.pack_docs = list(pack_docs)
        self.dense = dense
        self.library = library
        self.encoders = dict(encoders)
        self.minilm = minilm
        self.pack_name = pack_name
        self.revision = -1
        self.index = self._build([])

    def encoders_for(self, language: str) -> dict[str, SentenceEncoder]:
        return {name: self.encoders[name] for name in encoder_names(language, self.minilm)}

    def reserved_ids(self) -> dict[tuple[str, str], str]:
        return reserved_ids(self.pack_name, ((d.doc_id, d.language, d.source) for d in self.pack_docs))

    def _build(self, library_docs: list[EncodedDocument]) -> KnowledgeIndex:
        docs = [*self.pack_docs, *library_docs]
        languages = {d.language for d in docs}
        rankings = {lang: ranking_for(lang, self.minilm) for lang in languages}
        return KnowledgeIndex(docs, self.encoders, rankings, keep_vectors=self.dense is None)

    async def refresh(self, force: bool = False) -> bool:
        """Rebuild the index if the library changed since the last look; True when it did."""
        docs: list[EncodedDocument] = []
        if self.library is None:
            if self.dense is None or (self.revision >= 0 and not force):
                return False
            revision = 0
        else:
            if not force and await self.library.revision() == self.revision:
                return False
            revision, docs = await self.library.encoded()
        if self.dense is not None:  # the store first: the new snapshot may search it at once
            await self.dense.sync([*self.pack_docs, *docs])
        self.index = await asyncio.to_thread(self._build, docs)  # the index keeps the only copy
        self.revision = revision
        return True

    async def close(self) -> None:
        if self.dense is not None:
            await self.dense.close()

    async def watch(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.refresh()
            except Exception:  # a database hiccup must not end the watcher: log it and look again later
                log.exception("knowledge base refresh failed")

    async def documents(self) -> list[DocumentInfo]:
        pack = [
            pack_document_info(d.doc_id, d.language, d.title, d.source, d.kind, len(d.chunks)) for d in self.pack_docs
        ]
        own = await self.library.documents() if self.library is not None else []
        return sorted([*pack, *own], key=lambda d: (d.id, d.language))

    # The index's reading side, so that tools hold the knowledge base and always see the latest snapshot.
    @property
    def size(self) -> int:
        return self.index.size

    def embed(self, text: str) -> Vectors:
        return self.index.embed(text)

    def search(self, query: str, language: Locale, k: int = 5, embedding: Vectors | None = None) -> list[Hit]:
        """In-memory vectors only (``search_async`` serves both backends)."""
        return self.index.search(query, language, k, embedding)

    async def search_async(
        self, query: str, language: Locale, k: int = 5, embedding: Vectors | None = None
    ) -> list[Hit]:
        """The ranking the chat, the admin search and ``kefu kb search`` use, whichever the dense backend."""
        if self.dense is None:
            return self.index.search(query, language, k, embedding)
        return await self.index.search_with(self.dense, query, language, k, embedding)

    def answer(self, question: str, hit: Hit, language: Locale, query_vector: Vectors | None = None) -> str:
        return self.index.answer(question, hit, language, query_vector)

    def opening(self, hit: Hit, language: Locale) -> Chunk | None:
        return self.index.opening(hit, language)
