"""The fused ranking's parts: exact standardisation from moments, chunk rows, int8 candidates, and the
in-memory index's candidate path giving the exhaustive ranking."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kefu.knowledge.base import MINILM, PASSAGE_TOKENS, encode_cached, encoder_names, ranking_for
from kefu.knowledge.encoding import EncodedDocument
from kefu.knowledge.fusion import Moments, chunk_rows
from kefu.knowledge.index import KnowledgeIndex
from kefu.knowledge.vectors import Int8Matrix, Matrices
from kefu.nlu.encoder import MiniLmEncoder, SentenceEncoder, UseEncoder
from kefu.packs.loader import load_pack
from tests.conftest import DATA, MODEL_CACHE


def _unit(rows: int, dim: int, seed: int) -> np.ndarray:  # type: ignore[type-arg]
    v = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_moments_give_the_mean_and_spread_of_every_similarity() -> None:
    matrix, queries = _unit(3000, 64, 1), _unit(5, 64, 2)
    moments = Moments.of(matrix)
    for q in queries:
        sims = (matrix @ q).astype(np.float64)
        mean, std = moments.stats(q)
        assert mean == pytest.approx(float(sims.mean()), abs=1e-7)
        assert std == pytest.approx(float(sims.std()), rel=1e-5)
    assert Moments.of(np.ones((4, 3), dtype=np.float32)).stats(np.ones(3, dtype=np.float32))[1] == 0.0


def test_chunk_rows_lists_each_documents_chunks_in_order() -> None:
    sizes = np.array([2, 3, 1, 4])
    starts = np.array([0, 2, 5, 6])
    assert chunk_rows(np.array([1, 3]), starts, sizes).tolist() == [2, 3, 4, 6, 7, 8, 9]
    assert chunk_rows(np.array([], dtype=np.int64), starts, sizes).tolist() == []


def test_int8_similarities_are_close_and_find_the_nearest_rows() -> None:
    matrix, query = _unit(5000, 384, 3), _unit(1, 384, 4)[0]
    exact = matrix @ query
    approx = Int8Matrix(matrix).scores(query)
    assert np.abs(approx - exact).max() < 0.02
    best = set(np.argsort(-exact)[:10].tolist())
    found = set(Matrices({("e", "chunk"): matrix}, coarse=True).nearest(("e", "chunk"), query, 40).tolist())
    assert best <= found


@pytest.fixture(scope="module")
def encoders() -> dict[str, SentenceEncoder]:
    return {UseEncoder.name: UseEncoder(), MINILM: MiniLmEncoder(1, max_tokens=PASSAGE_TOKENS)}


@pytest.fixture(scope="module")
def pack_docs(encoders: dict[str, SentenceEncoder]) -> list[EncodedDocument]:
    return encode_cached(
        load_pack("ecommerce").documents,
        lambda language: {n: encoders[n] for n in encoder_names(language, True)},
        MODEL_CACHE / "knowledge",
    )


def test_candidates_rank_like_scoring_every_document(
    monkeypatch: pytest.MonkeyPatch, pack_docs: list[EncodedDocument], encoders: dict[str, SentenceEncoder]
) -> None:
    """Above EXHAUSTIVE_DOCS the index scores only candidate documents (int8 nearest rows and BM25); with
    8 per signal for 36 articles, every demo question still gets the exhaustive top 5."""
    rankings = {lang: ranking_for(lang, True) for lang in ("en", "zh")}
    exhaustive = KnowledgeIndex(pack_docs, encoders, rankings)
    monkeypatch.setattr(KnowledgeIndex, "EXHAUSTIVE_DOCS", 0)
    monkeypatch.setattr(KnowledgeIndex, "CANDIDATES", 8)
    sampled = KnowledgeIndex(pack_docs, encoders, rankings)
    rows = [json.loads(line) for line in (DATA / "ecommerce_kb_questions_unseen.jsonl").read_text().splitlines()]
    for row in rows:
        expected = exhaustive.search(row["question"], row["lang"], 5)
        got = sampled.search(row["question"], row["lang"], 5)
        assert [(h.chunk.doc_id, h.chunk.position, round(h.score, 6)) for h in got] == [
            (h.chunk.doc_id, h.chunk.position, round(h.score, 6)) for h in expected
        ], row["question"]
