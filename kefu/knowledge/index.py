"""Hybrid retrieval: BM25 (jieba for Chinese) and dense vectors from one or more encoders, fused on
standardised scores, ranked per document (see ``fusion``).

The lexical side, the documents and the vectors' moments live here; the dense similarities come either
from this process's own matrices (``search``) or from a dense store such as pgvector (``search_with``).
Either way the same ``fusion.rank`` orders the same candidates, so a ranking never differs between the
chat, the search command and the admin pages, nor between the two backends.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Protocol

import bm25s
import numpy as np

from kefu.core.types import Locale
from kefu.knowledge.answer import pick_sentences
from kefu.knowledge.documents import Chunk
from kefu.knowledge.encoding import PRIMARY_ENCODER, EncodedDocument
from kefu.knowledge.fusion import KINDS, Candidates, Floats, Hit, Moments, Ranking, Rows, chunk_rows, rank
from kefu.knowledge.tokens import tokenize
from kefu.knowledge.vectors import Matrices, top_rows
from kefu.nlu.encoder import SentenceEncoder, Vectors

__all__ = ["DenseHits", "DenseStore", "Hit", "KnowledgeIndex", "Ranking"]

Key = tuple[str, str]  # (encoder, kind)


@dataclass(frozen=True, slots=True)
class DenseHits:
    """What a dense store returns for one query: the exact similarity of every chunk, title and opening of
    its candidate documents. ``ordinals`` numbers a chunk within its document (0 for titles, openings)."""

    doc_ids: Mapping[Key, Sequence[str]]
    ordinals: Mapping[Key, Rows]
    sims: Mapping[Key, Floats]


class DenseStore(Protocol):
    candidates: int  # how many of each kind of vector a search asks for by default

    async def nearest(
        self, language: str, queries: Mapping[str, Vectors], lexical_docs: Sequence[str], limit: int
    ) -> DenseHits:
        """Exact similarities for every vector of the documents among ``lexical_docs`` and the ``limit``
        nearest chunks, titles and openings of each encoder in ``queries``."""
        ...


@dataclass(frozen=True, slots=True)
class _Query:
    lexical: Floats
    vectors: dict[str, Vectors]
    stats: dict[Key, tuple[float, float]]


class _LanguageIndex:
    def __init__(self, docs: Sequence[EncodedDocument], encoders: Sequence[str], keep_vectors: bool) -> None:
        self.chunks = [c for d in docs for c in d.chunks]
        self.sizes = np.array([len(d.chunks) for d in docs], dtype=np.int64)
        self.doc_starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)
        self.bm25 = bm25s.BM25()
        self.bm25.index([list(t) or ["\u2205"] for d in docs for t in d.tokens], show_progress=False)
        self.encoders = list(encoders)
        matrices: dict[Key, Vectors] = {}
        for name in encoders:
            missing = [d.doc_id for d in docs if name not in d.vectors]
            if missing:
                raise ValueError(f"documents encoded without {name}: {', '.join(missing[:5])}; add them again")
            matrices[(name, "chunk")] = np.vstack([d.vectors[name] for d in docs]).astype(np.float32)
            matrices[(name, "title")] = np.vstack([d.title_vectors[name] for d in docs]).astype(np.float32)
            matrices[(name, "lead")] = np.vstack([d.lead_vectors[name] for d in docs]).astype(np.float32)
        self.moments = {key: Moments.of(m) for key, m in matrices.items()}
        # Small indexes are scored whole in float32: finding candidates would cost more than it saves.
        self.exhaustive = len(docs) <= KnowledgeIndex.EXHAUSTIVE_DOCS
        self.matrices = Matrices(matrices, coarse=not self.exhaustive) if keep_vectors else None
        # The stacked arrays (or the dense store) hold the only copy of the vectors.
        self.docs = [replace(d, vectors={}, title_vectors={}, lead_vectors={}) for d in docs]
        self.by_id = {d.doc_id: d for d in self.docs}
        self.number = {d.doc_id: i for i, d in enumerate(self.docs)}

    def lexical_docs(self, lexical: Floats, count: int) -> Rows:
        """Documents of the ``count`` chunks with the best BM25 scores (those scoring above zero)."""
        rows = top_rows(lexical, count)
        rows = rows[lexical[rows] > 0]
        return np.unique(np.searchsorted(self.doc_starts, rows, side="right") - 1).astype(np.int64)


class KnowledgeIndex:
    """An immutable snapshot; the knowledge base swaps in a new one when documents change."""

    EXHAUSTIVE_DOCS = 512  # up to this many documents per language, every document is scored
    CANDIDATES = 64  # else: documents of the best chunks, titles and openings per signal

    def __init__(
        self,
        docs: Sequence[EncodedDocument],
        encoders: Mapping[str, SentenceEncoder],
        ranking: Mapping[str, Ranking] | None = None,
        keep_vectors: bool = True,
    ) -> None:
        """``keep_vectors`` False: the vectors live in a dense store (``search_with``); only their moments
        are kept here."""
        self.encoders = dict(encoders)
        self.ranking: dict[str, Ranking] = dict(ranking or {})
        self._by_language: dict[str, _LanguageIndex] = {}
        self._sentence_cache: dict[tuple[str, str], Vectors] = {}
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="kefu-kb-encode")
        self._lock = threading.Lock()
        for language in sorted({d.language for d in docs}):
            rank_ = self.ranking.setdefault(language, Ranking())
            subset = [d for d in docs if d.language == language and d.chunks]
            if subset:
                names = sorted({PRIMARY_ENCODER, *rank_.dense})
                self._by_language[language] = _LanguageIndex(subset, names, keep_vectors)

    @property
    def size(self) -> int:
        return sum(len(i.chunks) for i in self._by_language.values())

    def nbytes(self) -> int:
        """Bytes held by the index's own arrays (vectors, int8 copies, moments, BM25 matrix), not counting
        the documents."""
        total = 0
        for index in self._by_language.values():
            arrays: list[np.ndarray[Any, Any]] = [index.doc_starts, index.sizes]
            arrays += [v for v in index.bm25.scores.values() if isinstance(v, np.ndarray)]
            total += sum(a.nbytes for a in arrays) + sum(m.nbytes for m in index.moments.values())
            total += index.matrices.nbytes if index.matrices is not None else 0
        return total

    def languages(self) -> list[str]:
        return sorted(self._by_language)

    def documents(self, language: str) -> list[EncodedDocument]:
        """The snapshot's documents (without vectors) of one language."""
        index = self._by_language.get(language)
        return list(index.docs) if index is not None else []

    def embed(self, text: str) -> Vectors:
        vector: Vectors = self.encoders[PRIMARY_ENCODER].encode([text])[0]
        return vector

    def answer(self, question: str, hit: Hit, language: Locale, query_vector: Vectors | None = None) -> str:
        """An extractive answer from the hit's document (see ``pick_sentences``)."""
        doc = self._by_language[language].by_id.get(hit.chunk.doc_id) if language in self._by_language else None
        if doc is None:  # removed between the search and now: the hit's own text still answers
            return hit.chunk.text
        return pick_sentences(
            question,
            self.embed(question) if query_vector is None else query_vector,
            [text for text, _ in doc.sentences],
            self._sentence_vectors(doc),
            [position == hit.chunk.position for _, position in doc.sentences],
            language,
        )

    def opening(self, hit: Hit, language: Locale) -> Chunk | None:
        """The first chunk of the hit's document when the hit is another one: help articles state their
        main point first, and a model writing the answer needs it beside the matching section."""
        doc = self._by_language[language].by_id.get(hit.chunk.doc_id) if language in self._by_language else None
        if doc is None or not doc.chunks or doc.chunks[0].position == hit.chunk.position:
            return None
        return doc.chunks[0]

    def _sentence_vectors(self, doc: EncodedDocument) -> Vectors:
        """Encoded when the document first answers, then kept with this snapshot."""
        key = (doc.doc_id, doc.language)
        vectors = self._sentence_cache.get(key)
        if vectors is None:
            vectors = self.encoders[PRIMARY_ENCODER].encode([text for text, _ in doc.sentences])
            self._sentence_cache[key] = vectors
        return vectors

    def _embed_query(self, query: str, names: list[str], primary: Vectors | None) -> dict[str, Vectors]:
        """The query's vector per encoder. With two to compute, the second runs on a pooled thread: the
        encoders release the GIL, so a query costs the slower encoder's time rather than the sum."""
        vectors: dict[str, Vectors] = {PRIMARY_ENCODER: primary} if primary is not None else {}
        missing = [n for n in names if n not in vectors]
        helpers = {n: self._pool.submit(self.encoders[n].encode, [query]) for n in missing[1:]}
        if missing:
            vectors[missing[0]] = self.encoders[missing[0]].encode([query])[0]
        for name, future in helpers.items():
            vectors[name] = future.result()[0]
        return vectors

    def _prepare(self, index: _LanguageIndex, query: str, language: Locale, embedding: Vectors | None) -> _Query:
        tokens = tokenize(query, language)
        lexical: Floats = index.bm25.get_scores(tokens) if tokens else np.zeros(len(index.chunks))
        vectors = self._embed_query(query, index.encoders, embedding)
        stats = {
            (name, kind): index.moments[(name, kind)].stats(vectors[name]) for name in index.encoders for kind in KINDS
        }
        return _Query(np.asarray(lexical, dtype=np.float64), vectors, stats)

    def _rank(self, index: _LanguageIndex, language: str, prepared: _Query, found: Candidates, k: int) -> list[Hit]:
        return rank(
            found,
            ranking=self.ranking[language],
            lexical=prepared.lexical,
            stats=prepared.stats,
            sizes=index.sizes,
            chunks=index.chunks,
            k=k,
        )

    def search(self, query: str, language: Locale, k: int = 5, embedding: Vectors | None = None) -> list[Hit]:
        """The ``k`` best documents for ``query``, each by its best chunk, from this process's vectors.
        ``embedding`` is the query's PRIMARY_ENCODER vector when the caller has it already."""
        index = self._by_language.get(language)
        if index is None or not query.strip():
            return []
        matrices = index.matrices
        if matrices is None:
            raise RuntimeError("this index keeps its vectors in a dense store: use search_with")
        prepared = self._prepare(index, query, language, embedding)
        if index.exhaustive:
            docs = np.arange(len(index.docs), dtype=np.int64)
            rows = np.arange(len(index.chunks), dtype=np.int64)
            sims = {
                (name, kind): matrices.all((name, kind), prepared.vectors[name])
                for name in index.encoders
                for kind in KINDS
            }
            return self._rank(index, language, prepared, Candidates(docs, rows, sims), k)
        found = [index.lexical_docs(prepared.lexical, 2 * self.CANDIDATES)]
        for name in index.encoders:
            vector = prepared.vectors[name]
            nearest = matrices.nearest((name, "chunk"), vector, 2 * self.CANDIDATES)
            found.append(np.searchsorted(index.doc_starts, nearest, side="right") - 1)
            found.append(matrices.nearest((name, "title"), vector, self.CANDIDATES))
            found.append(matrices.nearest((name, "lead"), vector, self.CANDIDATES))
        docs = np.unique(np.concatenate(found)).astype(np.int64)
        rows = chunk_rows(docs, index.doc_starts, index.sizes)
        sims = {}
        for name in index.encoders:
            vector = prepared.vectors[name]
            sims[(name, "chunk")] = matrices.rows((name, "chunk"), rows, vector)
            sims[(name, "title")] = matrices.rows((name, "title"), docs, vector)
            sims[(name, "lead")] = matrices.rows((name, "lead"), docs, vector)
        return self._rank(index, language, prepared, Candidates(docs, rows, sims), k)

    async def search_with(
        self,
        store: DenseStore,
        query: str,
        language: Locale,
        k: int = 5,
        embedding: Vectors | None = None,
        limit: int | None = None,
    ) -> list[Hit]:
        """``search``, with the dense candidates and their similarities from ``store``."""
        index = self._by_language.get(language)
        if index is None or not query.strip():
            return []
        prepared = self._prepare(index, query, language, embedding)
        limit = limit or store.candidates
        lexical = [index.docs[int(d)].doc_id for d in index.lexical_docs(prepared.lexical, 2 * limit)]
        found = await store.nearest(language, prepared.vectors, lexical, limit)
        return self._rank(index, language, prepared, _from_store(index, found), k)


def _from_store(index: _LanguageIndex, found: DenseHits) -> Candidates:
    """The store's rows placed on this snapshot's documents. A document the store does not know fully
    (another process is changing it this moment) is left out; rows of documents this snapshot does not
    have are ignored."""
    numbers = {
        key: np.array([index.number.get(i, -1) for i in ids], dtype=np.int64) for key, ids in found.doc_ids.items()
    }
    known = [n[n >= 0] for n in numbers.values()]
    docs = np.unique(np.concatenate(known)).astype(np.int64) if known else np.zeros(0, dtype=np.int64)
    rows = chunk_rows(docs, index.doc_starts, index.sizes)
    wanted = {(name, kind) for name in index.encoders for kind in KINDS}
    if not len(docs) or not wanted <= set(numbers):
        return Candidates(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), {})
    segments = np.concatenate([[0], np.cumsum(index.sizes[docs])[:-1]]).astype(np.int64)
    complete = np.ones(len(docs), dtype=bool)
    sims: dict[Key, Floats] = {}
    for key in wanted:
        ok = numbers[key] >= 0
        doc_numbers, values_found = numbers[key][ok], found.sims[key][ok]
        if key[1] == "chunk":
            ordinals = np.asarray(found.ordinals[key], dtype=np.int64)[ok]
            fits = ordinals < index.sizes[doc_numbers]  # a changed document may have fewer chunks here
            values = np.full(len(rows), np.nan)
            at = np.searchsorted(rows, index.doc_starts[doc_numbers[fits]] + ordinals[fits])
            values[at] = values_found[fits]
            complete &= np.add.reduceat(np.isnan(values), segments) == 0
        else:
            values = np.full(len(docs), np.nan)
            values[np.searchsorted(docs, doc_numbers)] = values_found
            complete &= ~np.isnan(values)
        sims[key] = values
    if complete.all():
        return Candidates(docs, rows, sims)
    kept_rows = np.repeat(complete, index.sizes[docs])
    return Candidates(
        docs[complete],
        rows[kept_rows],
        {key: v[kept_rows] if key[1] == "chunk" else v[complete] for key, v in sims.items()},
    )
