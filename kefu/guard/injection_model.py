"""A small character n-gram linear model of prompt injection: a second opinion beside the pattern families.

Patterns are precise but only match phrasings someone wrote down; this model scores the character 2- to
4-grams of the normalised text, so a paraphrase that shares enough pieces with known attacks still scores
high. It is trained on the hand-written and template-expanded examples in ``data/injection_examples.jsonl``
(never on the test suite's examples) and ships as ``data/injection_model.json``: one weight per n-gram and a
bias. Scoring is a set intersection and a sum, about 0.1 ms for 500 characters; no scikit-learn at run time.

Retrain after changing the examples::

    python -m kefu.guard.injection_model
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from kefu.guard.normalize import normalize

DATA = Path(__file__).with_name("data")
EXAMPLES_PATH = DATA / "injection_examples.jsonl"
MODEL_PATH = DATA / "injection_model.json"
NGRAM_SIZES = (2, 3)
WINDOW = 600  # characters scored together; a long document is scored window by window, the worst counts
_STRIDE = 500
_MIN_DOCUMENT_FREQUENCY = 2
_REGULARISATION = 4.0
_MARK = "\x00"
_DIGITS_TO_MARK = str.maketrans(dict.fromkeys("0123456789", _MARK))


def ngrams(text: str) -> set[str]:
    """Distinct character n-grams of the (normalised) text, padded with a space at each end.

    N-grams with a digit are left out: order numbers and amounts say nothing about intent, and attacks in the
    training data name the demo orders often enough that a bare "100004" would otherwise look like one.
    """
    padded = f" {text.translate(_DIGITS_TO_MARK)} "
    grams = {padded[i : i + n] for n in NGRAM_SIZES for i in range(len(padded) - n + 1)}
    return {gram for gram in grams if _MARK not in gram} if _MARK in padded else grams


class InjectionModel:
    def __init__(self, weights: dict[str, float], bias: float) -> None:
        self._weights = weights
        self._vocabulary = frozenset(weights)
        self._bias = bias

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> InjectionModel:
        data = json.loads(path.read_text(encoding="utf-8"))
        if tuple(data["ngram_sizes"]) != NGRAM_SIZES:
            raise ValueError(f"{path}: trained for n-gram sizes {data['ngram_sizes']}, not {NGRAM_SIZES}")
        return cls({str(k): float(v) for k, v in data["weights"].items()}, float(data["bias"]))

    def probability(self, normalized: str) -> float:
        """Probability that the normalised text is an injection attempt (the worst window of a long text)."""
        if len(normalized) <= WINDOW:
            return self._window_probability(normalized)
        starts = range(0, len(normalized) - WINDOW + _STRIDE, _STRIDE)
        return max(self._window_probability(normalized[start : start + WINDOW]) for start in starts)

    def _window_probability(self, text: str) -> float:
        grams = ngrams(text)
        if not grams:
            return 0.0
        weights = self._weights
        logit = self._bias + sum(weights[g] for g in grams & self._vocabulary) / math.sqrt(len(grams))
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, logit))))


def read_examples(path: Path = EXAMPLES_PATH) -> list[tuple[str, int]]:
    rows = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return [(str(row["text"]), int(row["label"])) for row in rows]


def train(examples: Sequence[tuple[str, int]], *, regularisation: float = _REGULARISATION) -> InjectionModel:
    """Logistic regression over binary n-gram features scaled by 1/sqrt(n-grams in the text)."""
    import numpy as np  # training only: the running service never imports these
    from scipy.sparse import csr_matrix
    from sklearn.linear_model import LogisticRegression

    grams = [ngrams(normalize(text)) for text, _ in examples]
    counts: dict[str, int] = {}
    for found in grams:
        for gram in found:
            counts[gram] = counts.get(gram, 0) + 1
    vocabulary = sorted(g for g, n in counts.items() if n >= _MIN_DOCUMENT_FREQUENCY)
    index = {g: i for i, g in enumerate(vocabulary)}
    rows, cols, values = [], [], []
    for row, found in enumerate(grams):
        scale = 1.0 / math.sqrt(len(found)) if found else 0.0
        for gram in found:
            if gram in index:
                rows.append(row)
                cols.append(index[gram])
                values.append(scale)
    features = csr_matrix((values, (rows, cols)), shape=(len(examples), len(vocabulary)))
    labels = np.array([label for _, label in examples])
    fitted = LogisticRegression(C=regularisation, class_weight="balanced", solver="liblinear", max_iter=1000)
    fitted.fit(features, labels)
    coefficients = fitted.coef_[0]
    weights = {g: round(float(w), 4) for g, w in zip(vocabulary, coefficients, strict=True) if abs(w) >= 1e-4}
    return InjectionModel(weights, round(float(fitted.intercept_[0]), 4))


def save(model: InjectionModel, path: Path = MODEL_PATH) -> None:
    payload = {"ngram_sizes": list(NGRAM_SIZES), "bias": model._bias, "weights": dict(sorted(model._weights.items()))}
    path.write_text(json.dumps(payload, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")


def evaluate(model: InjectionModel, examples: Iterable[tuple[str, int]], threshold: float = 0.5) -> tuple[float, float]:
    """(true-positive rate, false-positive rate) of the model alone at ``threshold``."""
    hits = {0: [0, 0], 1: [0, 0]}
    for text, label in examples:
        hits[label][0] += model.probability(normalize(text)) >= threshold
        hits[label][1] += 1
    return hits[1][0] / max(1, hits[1][1]), hits[0][0] / max(1, hits[0][1])


def main() -> None:
    examples = read_examples()
    model = train(examples)
    save(model)
    tpr, fpr = evaluate(model, examples)
    print(
        f"{len(examples)} examples, {len(model._weights)} n-grams; on its own training set TPR {tpr:.3f} FPR {fpr:.3f}"
    )


if __name__ == "__main__":
    main()
