"""The linear member: sentence embeddings (one block per encoder) plus n-grams into one logistic head.

Inference is by hand over the learnt weights: sklearn's input checks cost more than the arithmetic on one
message, and plain arrays survive library upgrades better than pickled estimators.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from kefu.nlu.ngrams import NgramFeatures
from kefu.nlu.softmax import fit_softmax

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
        """``targets`` are label indices below ``n_labels``. With ``start`` (a member trained on part of these
        rows) its n-gram vocabulary is kept and the solver starts from its weights: the second fit takes a
        fraction of the first's time. The solver (``kefu.nlu.softmax``) works in float32 with a short
        L-BFGS memory: a fifth of sklearn's peak memory, same held-out accuracy."""
        ngrams = start.ngrams if start is not None else NgramFeatures.fit(texts, word_ngrams=word_ngrams)
        names = sorted(vectors)
        blocks = [np.asarray(vectors[name], dtype=np.float32) * np.float32(EMBEDDING_WEIGHT) for name in names]
        initial = None
        if start is not None:
            initial = ([*(start.dense_weights[n] / EMBEDDING_WEIGHT for n in names), start.ngram_weights], start.bias)
        fit = fit_softmax([*blocks, ngrams.transform(texts)], targets, n_labels, c=c, start=initial)
        # Stored in float64, the dtype the scoring code and saved models have always used.
        dense = {name: fit.weights[i].astype(np.float64) * EMBEDDING_WEIGHT for i, name in enumerate(names)}
        return cls(names, ngrams, dense, fit.weights[-1].astype(np.float64), fit.bias.astype(np.float64))

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
