"""Choosing the ensemble's weights, its temperature and the out-of-scope detector on held-out data."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import LogisticRegression

from kefu.nlu.intent_model import Calibration, OosDetector

Floats = npt.NDArray[np.float64]
Targets = npt.NDArray[np.int64]
_GRID = {
    "neighbours": (0.0, 0.25, 0.5, 1.0),
    "finetuned": (0.0, 0.5, 1.0, 1.5, 2.0),
    "finetuned_neighbours": (0.0, 0.5, 1.0, 2.0),
}


def _nll(log_proba: Floats, targets: Targets) -> float:
    return float(-log_proba[np.arange(len(targets)), targets].mean())


def fit_calibration(
    scores: Mapping[str, Floats],
    targets: Targets,
    combine: Callable[[Mapping[str, Floats], Calibration], Floats],
) -> Calibration:
    """The member weights with the best held-out accuracy (ties: lower log-loss), then the temperature
    that minimises the log-loss, so a confidence of 0.9 is right about nine times in ten."""
    optional = [name for name in _GRID if name in scores]
    best: tuple[float, float, dict[str, float]] | None = None
    for values in itertools.product(*(_GRID[name] for name in optional)):
        weights = {"linear": 1.0, **dict(zip(optional, values, strict=True))}
        log_proba = combine(scores, Calibration(weights, 1.0))
        accuracy = float((log_proba.argmax(axis=1) == targets).mean())
        key = (accuracy, -_nll(log_proba, targets), weights)
        if best is None or key[:2] > best[:2]:
            best = key
    assert best is not None
    weights = best[2]
    temperatures = np.exp(np.linspace(np.log(0.05), np.log(20.0), 61))
    losses = [_nll(combine(scores, Calibration(weights, float(t))), targets) for t in temperatures]
    return Calibration(weights, float(temperatures[int(np.argmin(losses))]))


def fit_oos_detector(signals: Floats, is_oos: npt.NDArray[np.bool_], correct: npt.NDArray[np.bool_]) -> OosDetector:
    """A logistic detector over the confidence signals; its threshold maximises in-scope accuracy plus
    out-of-scope recall on the held-out rows (``correct``: the in-scope prediction was right)."""
    if is_oos.all() or not is_oos.any():
        raise ValueError("the held-out data needs both in-scope and out-of-scope rows to fit the detector")
    model = LogisticRegression(C=1.0, max_iter=1000, class_weight="balanced")
    model.fit(signals, is_oos)
    detector = OosDetector(model.coef_[0].astype(np.float64), float(model.intercept_[0]), 0.5)
    probability = detector.probability(signals)
    best_threshold, best_value = 0.5, -1.0
    for threshold in np.unique(np.round(probability, 4)):
        flagged = probability >= threshold
        in_scope_accuracy = float((correct & ~flagged)[~is_oos].mean())
        oos_recall = float(flagged[is_oos].mean())
        value = in_scope_accuracy + oos_recall
        if value > best_value:
            best_threshold, best_value = float(threshold), value
    return OosDetector(detector.weights, detector.bias, best_threshold)
