"""Hybrid retrieval: BM25 (jieba for Chinese) and dense vectors from one or more encoders, fused on
standardised scores, ranked per document (a document's best chunk stands for it).

The same ``search`` serves the chat, the search command and the admin pages, so a ranking never differs
between them.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import bm25s
import numpy as np
import numpy.typing as npt

from kefu.core.types import Locale
from kefu.knowledge.answer import pick_sentences
from kefu.knowledge.documents import Chunk
from kefu.knowledge.encoding import PRIMARY_ENCODER, EncodedDocument
from kefu.knowledge.tokens import tokenize
from kefu.nlu.encoder import SentenceEncoder, Vectors

Floats = npt.NDArray[np.float64]
_BM25_SATURATION = 6.0  # a BM25 score at which lexical evidence counts as strong


@dataclass(frozen=True, slots=True)
class Ranking:
    """Weights of the standardised signals. Measured on WixQA (dev questions, distractor pool) and the
    demo pack's questions; see docs/benchmarks.md."""

    lexical: float = 0.5
    dense: Mapping[str, float] = field(default_factory=lambda: {PRIMARY_ENCODER: 1.0})
    title: float = 0.5  # share of each encoder's weight given to the document-title vector
    lead: float = 0.5  # ... and to the vector of the document's opening, which says what it is about


@dataclass(frozen=True, slots=True)
class Hit:
    chunk: Chunk
    score: float  # calibrated 0..1 confidence that this chunk answers the query
    bm25: float
    dense: float


def _z(values: Floats) -> Floats:
    std = float(values.std())
    return (values - float(values.mean())) / std if std > 1e-9 else np.zeros_like(values)


class _LanguageIndex:
    def __init__(self, docs: Sequence[EncodedDocument], encoders: Sequence[str]) -> None:
        self.docs = list(docs)
        self.chunks = [c for d in docs for c in d.chunks]
        counts = [len(d.chunks) for d in docs]
        self.doc_starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self.chunk_doc = np.repeat(np.arange(len(docs)), counts)
        self.bm25 = bm25s.BM25()
        self.bm25.index([list(t) or ["\u2205"] for d in docs for t in d.tokens], show_progress=False)
        self.vectors: dict[str, Vectors] = {}
        self.title_vectors: dict[str, Vectors] = {}
        self.lead_vectors: dict[str, Vectors] = {}
        for name in encoders:
            missing = [d.doc_id for d in docs if name not in d.vectors]
            if missing:
                raise ValueError(f"documents encoded without {name}: {', '.join(missing[:5])}; add them again")
            self.vectors[name] = np.vstack([d.vectors[name] for d in docs]).astype(np.float32)
            self.title_vectors[name] = np.vstack([d.title_vectors[name] for d in docs]).astype(np.float32)
            self.lead_vectors[name] = np.vstack([d.lead_vectors[name] for d in docs]).astype(np.float32)
        # The stacked arrays are the only copy of the vectors kept: half the memory at 100k chunks.
        self.docs = [replace(d, vectors={}, title_vectors={}, lead_vectors={}) for d in docs]
        self.by_id = {d.doc_id: d for d in self.docs}


class KnowledgeIndex:
    """An immutable snapshot; the knowledge base swaps in a new one when documents change."""

    def __init__(
        self,
        docs: Sequence[EncodedDocument],
        encoders: Mapping[str, SentenceEncoder],
        ranking: Mapping[str, Ranking] | None = None,
    ) -> None:
        self.encoders = dict(encoders)
        self.ranking: dict[str, Ranking] = dict(ranking or {})
        self._by_language: dict[str, _LanguageIndex] = {}
        self._sentence_cache: dict[tuple[str, str], Vectors] = {}
        for language in sorted({d.language for d in docs}):
            rank = self.ranking.setdefault(language, Ranking())
            subset = [d for d in docs if d.language == language and d.chunks]
            if subset:
                self._by_language[language] = _LanguageIndex(subset, sorted({PRIMARY_ENCODER, *rank.dense}))

    @property
    def size(self) -> int:
        return sum(len(i.chunks) for i in self._by_language.values())

    def nbytes(self) -> int:
        """Bytes held by the index's own arrays (stacked vectors, BM25 matrix), not counting the documents."""
        total = 0
        for index in self._by_language.values():
            arrays: list[np.ndarray[Any, Any]] = [*index.vectors.values(), *index.title_vectors.values()]
            arrays += index.lead_vectors.values()
            arrays += [index.doc_starts, index.chunk_doc]
            arrays += [v for v in index.bm25.scores.values() if isinstance(v, np.ndarray)]
            total += sum(a.nbytes for a in arrays)
        return total

    def languages(self) -> list[str]:
        return sorted(self._by_language)

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
        """The query's vector per encoder. With two to compute, one runs in a second thread: the encoders
        release the GIL, so a query costs the slower encoder's time rather than the sum (7 ms, not 11)."""
        vectors: dict[str, Vectors] = {PRIMARY_ENCODER: primary} if primary is not None else {}
        missing = [n for n in names if n not in vectors]

        def encode(name: str) -> None:
            vectors[name] = self.encoders[name].encode([query])[0]

        helpers = [threading.Thread(target=encode, args=(n,), daemon=True) for n in missing[1:]]
        for thread in helpers:
            thread.start()
        if missing:
            encode(missing[0])
        for thread in helpers:
            thread.join()
        lost = [n for n in missing if n not in vectors]
        if lost:  # a helper thread failed (its traceback is already logged): encode here, raising the error
            for name in lost:
                encode(name)
        return vectors

    def search(self, query: str, language: Locale, k: int = 5, embedding: Vectors | None = None) -> list[Hit]:
        """The ``k`` best documents for ``query``, each by its best chunk. ``embedding`` is the query's
        PRIMARY_ENCODER vector when the caller has it already."""
        index = self._by_language.get(language)
        if index is None or not query.strip():
            return []
        rank = self.ranking[language]
        tokens = tokenize(query, language)
        lexical: Floats = index.bm25.get_scores(tokens) if tokens else np.zeros(len(index.chunks))
        fused = rank.lexical * _z(lexical)
        title_score = np.zeros(len(index.docs))
        names = sorted({PRIMARY_ENCODER, *rank.dense})
        queries = self._embed_query(query, names, embedding)
        primary_dense: Floats = np.zeros(len(index.chunks))
        for name in names:
            vector = queries[name]
            chunk_sim = (index.vectors[name] @ vector).astype(np.float64)
            title_sim = (index.title_vectors[name] @ vector).astype(np.float64)
            if name == PRIMARY_ENCODER:
                primary_dense = np.maximum(chunk_sim, title_sim[index.chunk_doc])
            weight = rank.dense.get(name, 0.0)
            if weight:
                fused += weight * _z(chunk_sim)
                lead_sim = (index.lead_vectors[name] @ vector).astype(np.float64)
                title_score += weight * (rank.title * _z(title_sim) + rank.lead * _z(lead_sim))
        doc_score = np.maximum.reduceat(fused, index.doc_starts) + title_score
        top = np.argsort(-doc_score)[:k]
        hits = []
        for d in top:
            start = int(index.doc_starts[d])
            best = start + int(np.argmax(fused[start : start + len(index.docs[d].chunks)]))
            strength = float(lexical[best]) / (float(lexical[best]) + _BM25_SATURATION)
            score = 0.65 * float(primary_dense[best]) + 0.35 * strength
            hits.append(Hit(index.chunks[best], score, float(lexical[best]), float(primary_dense[best])))
        return hits
