"""Hybrid retrieval: BM25 (jieba for Chinese) and dense sentence vectors, fused by reciprocal rank.

The same ``search`` serves the chat, the search command and the admin pages, so a ranking never differs
between them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import bm25s
import numpy as np
import numpy.typing as npt

from kefu.core.types import Locale
from kefu.knowledge.answer import pick_sentences, split_sentences
from kefu.knowledge.documents import Chunk
from kefu.knowledge.tokens import tokenize
from kefu.nlu.encoder import SentenceEncoder, Vectors

_RRF_K = 20
_LEXICAL_WEIGHT = 1.5  # measured on the demo pack's held-out questions: exact words matter in policies
_BM25_SATURATION = 6.0  # a BM25 score at which lexical evidence counts as strong


@dataclass(frozen=True, slots=True)
class Hit:
    chunk: Chunk
    score: float  # calibrated 0..1 confidence that this chunk answers the query
    bm25: float
    dense: float


class _LanguageIndex:
    def __init__(self, chunks: list[Chunk], encoder: SentenceEncoder) -> None:
        self.chunks = chunks
        texts = [f"{c.heading_text}\n{c.text}" for c in chunks]
        self.bm25 = bm25s.BM25()
        language = chunks[0].language
        corpus = [
            tokenize(f"{t} {' '.join(c.tags)}", language) or ["\u2205"] for t, c in zip(texts, chunks, strict=True)
        ]
        self.bm25.index(corpus, show_progress=False)
        self.vectors: Vectors = encoder.encode(texts)
        # Headings, and the document's title with its tags, match short questions better than whole sections.
        self.heading_vectors: Vectors = encoder.encode([c.heading_text for c in chunks])
        self.topic_vectors: Vectors = encoder.encode([f"{c.title} {' '.join(c.tags)}" for c in chunks])
        # Sentences of every document with their vectors, for extractive answers without encoding at query time.
        self.sentences: dict[str, list[tuple[str, int]]] = {}
        for chunk in sorted(chunks, key=lambda c: (c.doc_id, c.position)):
            self.sentences.setdefault(chunk.doc_id, []).extend((s, chunk.position) for s in split_sentences(chunk.text))
        self.sentence_vectors: dict[str, Vectors] = {}
        flat = [(doc, text) for doc, items in self.sentences.items() for text, _ in items]
        vectors = encoder.encode([text for _, text in flat])
        start = 0
        for doc, items in self.sentences.items():
            self.sentence_vectors[doc] = vectors[start : start + len(items)]
            start += len(items)


class KnowledgeIndex:
    def __init__(self, chunks: Sequence[Chunk], encoder: SentenceEncoder) -> None:
        self.encoder = encoder
        self._by_language: dict[str, _LanguageIndex] = {}
        for language in sorted({c.language for c in chunks}):
            subset = [c for c in chunks if c.language == language]
            self._by_language[language] = _LanguageIndex(subset, encoder)

    @property
    def size(self) -> int:
        return sum(len(i.chunks) for i in self._by_language.values())

    def embed(self, text: str) -> Vectors:
        vector: Vectors = self.encoder.encode([text])[0]
        return vector

    def answer(self, question: str, hit: Hit, language: Locale, query_vector: Vectors | None = None) -> str:
        """An extractive answer from the hit's document (see ``pick_sentences``)."""
        index = self._by_language[language]
        items = index.sentences.get(hit.chunk.doc_id, [])
        return pick_sentences(
            question,
            self.embed(question) if query_vector is None else query_vector,
            [text for text, _ in items],
            index.sentence_vectors.get(hit.chunk.doc_id),
            [position == hit.chunk.position for _, position in items],
            language,
        )

    def languages(self) -> list[str]:
        return sorted(self._by_language)

    def search(self, query: str, language: Locale, k: int = 5, embedding: Vectors | None = None) -> list[Hit]:
        index = self._by_language.get(language)
        if index is None or not query.strip():
            return []
        tokens = tokenize(query, language)
        lexical = index.bm25.get_scores(tokens) if tokens else np.zeros(len(index.chunks))
        vector = self.encoder.encode([query])[0] if embedding is None else embedding
        dense = np.maximum.reduce(
            [index.vectors @ vector, index.heading_vectors @ vector, index.topic_vectors @ vector]
        )
        fused = np.where(lexical > 0, _LEXICAL_WEIGHT / (_RRF_K + _ranks(-lexical)), 0.0) + 1.0 / (
            _RRF_K + _ranks(-dense)
        )
        order = np.argsort(-fused)[:k]
        hits = []
        for i in order:
            strength = float(lexical[i]) / (float(lexical[i]) + _BM25_SATURATION)
            score = 0.65 * float(dense[i]) + 0.35 * strength
            hits.append(Hit(index.chunks[i], score, float(lexical[i]), float(dense[i])))
        return hits


def _ranks(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """0 for the smallest value, 1 for the next... (ties broken by position)."""
    ranks = np.empty(len(values))
    ranks[np.argsort(values, kind="stable")] = np.arange(len(values))
    return ranks
