"""The classifier: trains, predicts calibrated rankings, saves atomically, refuses foreign folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kefu.nlu.classifier import ModelFormatError, TextClassifier
from kefu.nlu.encoder import UseEncoder

TEXTS = [
    "where is my parcel",
    "track my order",
    "物流到哪了",
    "refund please",
    "I want my money back",
    "我要退款",
]
LABELS = ["track", "track", "track", "refund", "refund", "refund"]


@pytest.fixture(scope="module")
def encoder() -> UseEncoder:
    return UseEncoder()


def test_train_predict_save_load(tmp_path: Path, encoder: UseEncoder) -> None:
    model = TextClassifier.train(TEXTS, LABELS, encoder)
    text = "when does my package arrive"
    prediction = model.predict(text, encoder.encode([text])[0])
    assert prediction.labels[0] == "track"
    assert abs(sum(prediction.scores) - 1.0) < 1e-6 and prediction.scores == tuple(
        sorted(prediction.scores, reverse=True)
    )
    model.save(tmp_path / "m")
    loaded = TextClassifier.load(tmp_path / "m", encoder)
    again = loaded.predict(text, encoder.encode([text])[0])
    assert again.labels == prediction.labels
    assert not list(tmp_path.glob(".m.*")), "no staging folder left behind"


def test_refuses_bad_training_input(encoder: UseEncoder) -> None:
    with pytest.raises(ValueError, match="at least two labels"):
        TextClassifier.train(["a", "b"], ["x", "x"], encoder)
    with pytest.raises(ValueError, match="same, non-zero number"):
        TextClassifier.train(["a"], ["x", "y"], encoder)


def test_refuses_foreign_or_damaged_folders(tmp_path: Path, encoder: UseEncoder) -> None:
    with pytest.raises(ModelFormatError, match=r"no meta\.json"):
        TextClassifier.load(tmp_path, encoder)
    (tmp_path / "meta.json").write_text(json.dumps({"format": 99, "kefu_version": "9.9"}))
    with pytest.raises(ModelFormatError, match="model format 99"):
        TextClassifier.load(tmp_path, encoder)
    (tmp_path / "meta.json").write_text(json.dumps({"format": 1, "encoder": "other"}))
    with pytest.raises(ModelFormatError, match="trained with encoder 'other'"):
        TextClassifier.load(tmp_path, encoder)
    (tmp_path / "meta.json").write_text(json.dumps({"format": 1, "encoder": encoder.name}))
    (tmp_path / "model.joblib").write_bytes(b"not a pickle")
    with pytest.raises(ModelFormatError, match="cannot be read"):
        TextClassifier.load(tmp_path, encoder)


def test_fast_inference_matches_sklearn(encoder: UseEncoder) -> None:
    for labels in (LABELS, ["a", "b", "c", "a", "b", "c"]):
        model = TextClassifier.train(TEXTS, labels, encoder)
        vectors = encoder.encode(TEXTS)
        from kefu.nlu.classifier import _features

        expected = model.head.predict_proba(_features(vectors, model.vectorizer.transform(TEXTS)))
        assert abs(model.predict_proba(TEXTS, vectors) - expected).max() < 1e-9
