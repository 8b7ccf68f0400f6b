"""The float32 L-BFGS softmax regression: sklearn's optimum, blocks, warm starts and its memory bound."""

from __future__ import annotations

import tracemalloc

import numpy as np
import numpy.typing as npt
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from kefu.nlu.linear import log_softmax
from kefu.nlu.softmax import fit_softmax


def problem(
    rows: int = 600, dense: int = 20, words: int = 300, labels: int = 6, seed: int = 0
) -> tuple[npt.NDArray[np.float32], sparse.csr_matrix, npt.NDArray[np.int64]]:
    """Labels that depend on both a dense and a sparse block, with noise: not separable."""
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, labels, rows)
    centres = rng.normal(size=(labels, dense))
    x_dense = (centres[targets] + rng.normal(scale=2.0, size=(rows, dense))).astype(np.float32)
    x_sparse = sparse.random(rows, words, density=0.03, random_state=seed, format="lil", dtype=np.float64)
    for row, label in enumerate(targets):
        x_sparse[row, label * 5 + rng.integers(0, 5)] = 1.0  # a few words typical of each label
    flipped = rng.random(rows) < 0.1  # some labels wrong, as in real data
    targets[flipped] = rng.integers(0, labels, int(flipped.sum()))
    return x_dense, x_sparse.tocsr(), targets.astype(np.int64)


def log_proba(fit_weights: list[npt.NDArray[np.float32]], bias: npt.NDArray[np.float32], blocks: list) -> np.ndarray:  # type: ignore[type-arg]
    scores = sum(np.asarray(b @ w, dtype=np.float64) for b, w in zip(blocks, fit_weights, strict=True)) + bias
    return log_softmax(np.asarray(scores))


def test_reaches_sklearns_optimum() -> None:
    x_dense, x_sparse, targets = problem()
    fit = fit_softmax([x_dense, x_sparse], targets, 6, c=1.0, tol=1e-6, max_iter=2000)
    reference = LogisticRegression(C=1.0, tol=1e-8, max_iter=5000).fit(
        sparse.hstack([x_dense, x_sparse]).tocsr(), targets
    )
    ours = np.exp(log_proba(fit.weights, fit.bias, [x_dense, x_sparse]))
    theirs = reference.predict_proba(sparse.hstack([x_dense, x_sparse]).tocsr())
    assert np.abs(ours - theirs).max() < 2e-3
    assert (ours.argmax(1) == theirs.argmax(1)).mean() > 0.99
    assert 0.5 < (ours.argmax(1) == targets).mean() < 1.0  # learnt something, and the data is not separable


def test_blocks_are_one_feature_space() -> None:
    """Splitting the columns into a dense and a sparse block changes nothing but the bookkeeping."""
    x_dense, x_sparse, targets = problem(seed=1)
    split = fit_softmax([x_dense, x_sparse], targets, 6, c=1.0, tol=1e-6, max_iter=2000)
    whole = fit_softmax(
        [np.hstack([x_dense, x_sparse.toarray()]).astype(np.float32)], targets, 6, c=1.0, tol=1e-6, max_iter=2000
    )
    assert [w.shape for w in split.weights] == [(20, 6), (300, 6)]
    joined = np.vstack(split.weights)
    assert np.abs(joined - whole.weights[0]).max() < 5e-3
    assert abs(split.loss - whole.loss) < 1e-4


def test_warm_start_from_the_solution_stops_at_once() -> None:
    x_dense, x_sparse, targets = problem(seed=2)
    first = fit_softmax([x_dense, x_sparse], targets, 6)
    assert first.iterations > 5
    again = fit_softmax([x_dense, x_sparse], targets, 6, start=(first.weights, first.bias))
    assert again.iterations <= 2
    assert again.loss <= first.loss + 1e-6


def test_two_labels_and_a_label_without_rows() -> None:
    x_dense, x_sparse, targets = problem(labels=2, seed=3)
    fit = fit_softmax([x_dense, x_sparse], targets, 2)
    assert fit.weights[0].shape == (20, 2)
    assert (log_proba(fit.weights, fit.bias, [x_dense, x_sparse]).argmax(1) == targets).mean() > 0.7
    # A third label that never occurs gets a bias below the others and is never predicted.
    fit3 = fit_softmax([x_dense, x_sparse], targets, 3)
    assert fit3.bias[2] < fit3.bias[:2].min()
    assert (log_proba(fit3.weights, fit3.bias, [x_dense, x_sparse]).argmax(1) != 2).all()


def test_memory_stays_near_the_history_it_keeps() -> None:
    """150 labels × 20k sparse features (3M parameters, 12 MB in float32): SciPy's float64 L-BFGS-B would
    hold 25 copies (600 MB); this solver keeps 2 × history + a few."""
    rng = np.random.default_rng(4)
    rows, words, labels, history = 3000, 20_000, 150, 5
    x_sparse = sparse.random(rows, words, density=0.005, random_state=4, format="csr", dtype=np.float32)
    x_dense = rng.normal(size=(rows, 64)).astype(np.float32)
    targets = rng.integers(0, labels, rows).astype(np.int64)
    parameters = (words + 64 + 1) * labels
    tracemalloc.start()
    try:
        fit = fit_softmax([x_dense, x_sparse], targets, labels, history=history, max_iter=15)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert fit.iterations >= 10
    assert peak < (2 * history + 8) * parameters * 4, peak / 2**20
