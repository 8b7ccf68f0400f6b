"""Scores: accuracy, macro-F1 over gold labels, and out-of-scope detection."""

from __future__ import annotations

import pytest

from kefu.nlu.metrics import score


def test_accuracy_and_macro_f1_by_hand() -> None:
    gold = ["a", "a", "b", "b"]
    predicted = ["a", "b", "b", "b"]
    scores = score(gold, predicted)
    assert scores.accuracy == 0.75
    # a: P 1, R .5, F1 .667; b: P .667, R 1, F1 .8
    assert scores.macro_f1 == pytest.approx((2 / 3 + 0.8) / 2)
    assert scores.confusions == (("a", "b", 1),)
    assert scores.in_scope_accuracy is None and "oos_recall" not in scores.summary()


def test_out_of_scope_measures() -> None:
    gold = ["a", "a", "oos", "oos", "oos", "b"]
    predicted = ["a", "oos", "oos", "oos", "b", "b"]
    scores = score(gold, predicted)
    assert scores.in_scope_accuracy == pytest.approx(2 / 3)
    assert scores.oos_recall == pytest.approx(2 / 3)
    assert scores.oos_precision == pytest.approx(2 / 3)
    summary = scores.summary()
    assert set(summary) >= {"accuracy", "macro_f1", "in_scope_accuracy", "oos_recall", "oos_precision"}


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="same, non-zero"):
        score(["a"], [])
