"""The one-message fast path of the n-gram features gives the same numbers as the sparse transform."""

from __future__ import annotations

import numpy as np

from kefu.nlu.ngrams import NgramFeatures

TEXTS = ["where is my order", "我的订单到哪了", "cancel my order please", "退货退款怎么办", "order order order"]


def test_fast_score_matches_the_sparse_transform() -> None:
    features = NgramFeatures.fit(TEXTS * 2)
    weights = np.random.default_rng(0).normal(size=(features.size, 4))
    for text in [*TEXTS, "an unseen message about orders", "完全没见过的话", "???"]:
        expected = np.asarray(features.transform([text]) @ weights)[0]
        assert np.allclose(features.score(text, weights), expected)


def test_characters_only_when_asked() -> None:
    assert len(NgramFeatures.fit(TEXTS * 2, word_ngrams=False).vectorizers) == 1
