"""The linear member: sentence embeddings (one block per encoder) plus n-grams into one logistic head.

Inference is by hand over the learnt weights: sklearn's input checks cost more than the arithmetic on one
message, and plain arrays survive library upgrades better than pickled estimators.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from kefu.nlu.ngrams import NgramFeatures

Floats = npt.NDArray[np.float64]
EMBEDDING_WEIGHT = 2.0  # embeddings carry meaning across paraphrases; n-grams carry exact wording


def log_softmax(scores: Floats) -> Floats:
    shifted = scores - scores.max(axis=1, keepdims=True)
    result: Floats = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return result


class LinearMember:
    def __init__(
        self,
        encoders: Sequence[str],
        ngrams: NgramFeatures,
        dense_weights: Mapping[str, Floats],
        ngram_weights: Floats,
        bias: Floats,
    ) -> None:
        self.encoders = tuple(encoders)
        self.ngrams = ngrams
        self.dense_weights = {name: np.ascontiguousarray(w) for name, w in dense_weights.items()}
        self.ngram_weights = np.ascontiguousarray(ngram_weights)
        self.bias = bias

    @classmethod
    def fit(
        cls,
        texts: Sequence[str],
        targets: npt.NDArray[np.int64],
        n_labels: int,
        vectors: Mapping[str, npt.NDArray[np.float32]],
        *,
        c: float = 10.0,
        word_ngrams: bool = True,
        start: LinearMember | None = None,
    ) -> LinearMember:
        """``targets`` are label indices; every label index below ``n_labels`` must occur at least once.
        With ``start`` (a member trained on part of these rows) its n-gram vocabulary is kept and the solver
        starts from its weights: the second fit takes a fraction of the first's time."""
        ngrams = start.ngrams if start is not None else NgramFeatures.fit(texts, word_ngrams=word_ngrams)
        names = sorted(vectors)
        blocks = [sparse.csr_matrix(vectors[name] * EMBEDDING_WEIGHT) for name in names]
        features = sparse.hstack([*blocks, ngrams.transform(texts)], format="csr")
        head = LogisticRegression(C=c, max_iter=3000, warm_start=start is not None)
        if start is not None and n_labels > 2:
            rows = [*(start.dense_weights[n] / EMBEDDING_WEIGHT for n in names), start.ngram_weights]
            head.coef_ = np.vstack(rows).T.copy()  # sklearn's layout: (labels, features)
            head.intercept_ = start.bias.copy()
        head.fit(features, targets)
        coef = head.coef_.T  # (features, labels), or (features, 1) for two labels
        if coef.shape[1] == 1:  # binary: sklearn keeps one column for the second label
            coef = np.hstack([-coef / 2, coef / 2])
            bias = np.array([-head.intercept_[0] / 2, head.intercept_[0] / 2])
        else:
            bias = head.intercept_.copy()
        if coef.shape[1] != n_labels:
            raise ValueError(f"expected {n_labels} labels in the training targets, got {coef.shape[1]}")
        dense: dict[str, Floats] = {}
        row = 0
        for name in names:
            width = vectors[name].shape[1]
            dense[name] = coef[row : row + width] * EMBEDDING_WEIGHT
            row += width
        return cls(names, ngrams, dense, coef[row:], bias)

    def log_proba(self, texts: Sequence[str], vectors: Mapping[str, npt.NDArray[np.float32]]) -> Floats:
        if len(texts) == 1:
            scores = self.ngrams.score(texts[0], self.ngram_weights)[None, :] + self.bias
        else:
            scores = np.asarray(self.ngrams.transform(texts) @ self.ngram_weights) + self.bias
        for name in self.encoders:
            scores = scores + vectors[name] @ self.dense_weights[name]
        return log_softmax(scores)

    def state(self) -> dict[str, Any]:
        return {
            "encoders": list(self.encoders),
            "ngrams": self.ngrams.state(),
            "dense_weights": self.dense_weights,
            "ngram_weights": self.ngram_weights,
            "bias": self.bias,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LinearMember:
        return cls(
            state["encoders"],
            NgramFeatures.from_state(state["ngrams"]),
            state["dense_weights"],
            state["ngram_weights"],
            state["bias"],
        )
