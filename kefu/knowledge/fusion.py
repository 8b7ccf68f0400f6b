"""The fused ranking, shared by every dense backend (numpy in memory, pgvector in PostgreSQL): BM25 and
each encoder's similarities, standardised over the whole language index, summed with the ranking's
weights, ranked per document (a document's best chunk stands for it) plus the document's title and
opening vectors.

Standardising needs the mean and spread of a query's similarity to *every* chunk, yet a backend only
scores a set of candidate documents. Both come from two moments kept per vector matrix: the similarities'
mean is ``mean_vector · q`` and their variance ``qᵀ (VᵀV / n) q − mean²``, exact for any query. So the
candidate documents are scored exactly as if every document had been: the backends differ only in how
they find candidates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from kefu.knowledge.documents import Chunk
from kefu.knowledge.encoding import PRIMARY_ENCODER
from kefu.nlu.encoder import Vectors

Floats = npt.NDArray[np.float64]
Rows = npt.NDArray[np.int64]
KINDS = ("chunk", "title", "lead")  # a chunk's vector; per document, its title's and its opening's
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


@dataclass(frozen=True, slots=True)
class Moments:
    """Mean and second moment of a matrix's rows: the exact mean and standard deviation of any query's
    similarities to all of them, without computing those similarities."""

    mean: Floats  # (d,)
    second: Floats  # (d, d): VᵀV / n

    @classmethod
    def of(cls, vectors: Vectors) -> Moments:
        v = np.asarray(vectors, dtype=np.float64)
        n = max(1, len(v))
        return cls(v.sum(axis=0) / n, (v.T @ v) / n)

    def stats(self, query: Vectors) -> tuple[float, float]:
        q = np.asarray(query, dtype=np.float64)
        mean = float(self.mean @ q)
        variance = float(q @ self.second @ q) - mean * mean
        return mean, float(np.sqrt(variance)) if variance > 1e-18 else 0.0

    @property
    def nbytes(self) -> int:
        return int(self.mean.nbytes + self.second.nbytes)


def standardise(values: Floats, stats: tuple[float, float]) -> Floats:
    mean, std = stats
    return (values - mean) / std if std > 1e-9 else np.zeros_like(values)


def z_full(values: Floats) -> Floats:
    """Standardised over the array itself (the lexical scores, always computed for every chunk)."""
    return standardise(values, (float(values.mean()), float(values.std())))


@dataclass(frozen=True, slots=True)
class Candidates:
    """Documents to score and, per encoder and kind, the query's exact similarities: for every chunk of
    those documents (in the order of ``rows``) and for each document's title and opening."""

    docs: Rows  # document numbers, ascending
    rows: Rows  # chunk numbers of those documents, document by document
    sims: Mapping[tuple[str, str], Floats]  # (encoder, kind) -> one value per row (chunk) or per doc


def chunk_rows(docs: Rows, starts: Rows, sizes: Rows) -> Rows:
    """The chunk numbers of ``docs``, document by document."""
    counts = sizes[docs]
    if not len(docs):
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts[docs] - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    rows: Rows = (np.arange(int(counts.sum()), dtype=np.int64) + offsets).astype(np.int64)
    return rows


def rank(
    candidates: Candidates,
    *,
    ranking: Ranking,
    lexical: Floats,
    stats: Mapping[tuple[str, str], tuple[float, float]],
    sizes: Rows,
    chunks: list[Chunk],
    k: int,
) -> list[Hit]:
    """The ``k`` best of the candidate documents, each by its best chunk."""
    if not len(candidates.docs):
        return []
    rows = candidates.rows
    fused = ranking.lexical * z_full(lexical)[rows]
    title_score = np.zeros(len(candidates.docs))
    for name, weight in ranking.dense.items():
        if not weight:
            continue
        fused = fused + weight * standardise(candidates.sims[(name, "chunk")], stats[(name, "chunk")])
        title_z = standardise(candidates.sims[(name, "title")], stats[(name, "title")])
        lead_z = standardise(candidates.sims[(name, "lead")], stats[(name, "lead")])
        title_score += weight * (ranking.title * title_z + ranking.lead * lead_z)
    counts = sizes[candidates.docs]
    segment = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    doc_score = np.maximum.reduceat(fused, segment) + title_score
    # Stable: equal scores keep document order, whichever backend found the candidates.
    top = np.argsort(-doc_score, kind="stable")[:k]
    primary_chunk = candidates.sims[(PRIMARY_ENCODER, "chunk")]
    primary_title = candidates.sims[(PRIMARY_ENCODER, "title")]
    hits = []
    for i in top:
        start = int(segment[i])
        local = start + int(np.argmax(fused[start : start + int(counts[i])]))
        best = int(rows[local])
        dense = max(float(primary_chunk[local]), float(primary_title[i]))
        strength = float(lexical[best]) / (float(lexical[best]) + _BM25_SATURATION)
        score = 0.65 * dense + 0.35 * strength
        hits.append(Hit(chunks[best], score, float(lexical[best]), dense))
    return hits
