"""The intent model: ensemble, calibration, out-of-scope detector, persistence (real encoder, real data)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kefu.nlu.dataset import Example
from kefu.nlu.encoder import UseEncoder
from kefu.nlu.intent_model import IntentModel
from kefu.nlu.model_store import ModelFormatError, load_model, read_meta, save_model
from kefu.nlu.trainer import TrainOptions, train_intent_model
from kefu.packs.loader import load_pack
from tests.conftest import DATA

ENCODER = UseEncoder()
OPTIONS = TrainOptions(encoders=(UseEncoder.name,), finetune=False)


def demo_examples() -> list[Example]:
    """The demo pack's examples, its out_of_scope intent relabelled ``oos`` to train the detector."""
    texts, labels = load_pack("ecommerce").intent_training_set()
    return [
        Example(t, "oos" if label == "out_of_scope" else label, f"demo #{i}")
        for i, (t, label) in enumerate(zip(texts, labels, strict=True))
    ]


@pytest.fixture(scope="module")
def model() -> IntentModel:
    return train_intent_model(demo_examples(), {ENCODER.name: ENCODER}, options=OPTIONS)


def predict(model: IntentModel, texts: list[str]) -> list[str]:
    vectors = {ENCODER.name: ENCODER.encode(texts)}
    return [model.decide(p) for p in model.predict_batch(texts, vectors)]


def test_held_out_demo_phrasing_in_both_languages(model: IntentModel) -> None:
    rows = [json.loads(line) for line in (DATA / "ecommerce_intents_heldout.jsonl").read_text().splitlines()]
    gold = ["oos" if r["label"] == "out_of_scope" else r["label"] for r in rows]
    predicted = predict(model, [r["text"] for r in rows])
    for lang in ("en", "zh"):
        idx = [i for i, r in enumerate(rows) if r["lang"] == lang]
        accuracy = sum(predicted[i] == gold[i] for i in idx) / len(idx)
        assert accuracy >= 0.93, (lang, accuracy)


def test_rankings_are_calibrated_probabilities(model: IntentModel) -> None:
    text = "where is my parcel 100001"
    prediction = model.predict(text, {ENCODER.name: ENCODER.encode([text])[0]})
    assert prediction.labels[0] == "order_status"
    assert list(prediction.scores) == sorted(prediction.scores, reverse=True)
    assert 0.0 < sum(prediction.scores) <= 1.0 + 1e-9
    assert model.calibration.temperature > 0
    assert set(model.calibration.weights) == {"linear", "neighbours"}
    assert model.info["held_out_rows"] > 100 and model.info["examples"] == len(demo_examples())


def test_out_of_scope_messages_are_detected(model: IntentModel) -> None:
    assert model.oos is not None
    texts = ["what is the capital of France", "给我讲个关于恐龙的笑话", "where is my order 100001", "我要退货"]
    assert predict(model, texts) == ["oos", "oos", "order_status", "return_refund"]


def test_save_and_load_give_the_same_predictions(model: IntentModel, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    save_model(model, folder, {"note": "test"})
    again = load_model(folder)
    texts = ["can I cancel order 100002?", "发票怎么开", "hello there"]
    vectors = {ENCODER.name: ENCODER.encode(texts)}
    first, second = model.predict_batch(texts, vectors), again.predict_batch(texts, vectors)
    for a, b in zip(first, second, strict=True):
        assert a.labels == b.labels
        assert np.allclose(a.scores, b.scores, atol=1e-3)  # neighbours are stored as float16
    assert read_meta(folder)["note"] == "test"
    save_model(model, folder)  # replacing an existing model leaves no backup or staging folders
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_models_from_another_version_or_damaged_are_refused(model: IntentModel, tmp_path: Path) -> None:
    folder = tmp_path / "old"
    save_model(model, folder)
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "format": 1}))
    with pytest.raises(ModelFormatError, match="train the model again"):
        load_model(folder)
    (folder / "meta.json").write_text(json.dumps(meta))
    (folder / "model.joblib").write_bytes(b"not a pickle")
    with pytest.raises(ModelFormatError, match="cannot be read"):
        load_model(folder)
    with pytest.raises(ModelFormatError, match="no such model folder"):
        load_model(tmp_path / "absent")


def test_a_failed_save_leaves_nothing_half_written(
    model: IntentModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import joblib

    def full_disk(*_args: object, **_kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(joblib, "dump", full_disk)
    with pytest.raises(OSError, match="No space"):
        save_model(model, tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


def test_validation_labels_must_be_trained(tmp_path: Path) -> None:
    examples = [Example(t, lab, "x") for t, lab in [("hi", "a"), ("hello", "a"), ("bye", "b"), ("ciao", "b")]]
    with pytest.raises(ValueError, match="v:1: validation label 'c'"):
        train_intent_model(examples, {ENCODER.name: ENCODER}, validation=[Example("x", "c", "v:1")], options=OPTIONS)
