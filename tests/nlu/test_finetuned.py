"""The fine-tuned MiniLM member on a tiny task: it learns, and survives a save and a load."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kefu.nlu.finetuned import FinetunedMember

TEXTS = [
    "my card has not arrived yet",
    "still waiting for my new card",
    "when will the card be delivered",
    "card delivery is late",
    "where is my card",
    "the card never came",
    "what is the exchange rate",
    "how much is a dollar in euros",
    "currency conversion rate today",
    "exchange rate for pounds",
    "rate to convert yen",
    "what rate do you use for euros",
]
TARGETS = np.array([0] * 6 + [1] * 6, dtype=np.int64)


def test_learns_a_tiny_task_and_round_trips(tmp_path: Path) -> None:
    member = FinetunedMember.fit(TEXTS, TARGETS, 2, epochs=6, batch_size=4, learning_rate=2e-4, threads=2)
    probe = ["my card still hasn't come", "what's the euro exchange rate"]
    log_proba = member.log_proba(probe)
    assert list(log_proba.argmax(axis=1)) == [0, 1]
    member.save(tmp_path / "ft")
    again = FinetunedMember.load(tmp_path / "ft", 2)
    loaded = again.log_proba(probe)  # fp16 on disk, int8 linear layers when loaded for serving
    assert list(loaded.argmax(axis=1)) == [0, 1]
    assert np.allclose(np.exp(loaded), np.exp(log_proba), atol=0.1)


def test_an_ensemble_with_the_fine_tuned_member_round_trips(tmp_path: Path) -> None:
    from kefu.nlu.dataset import Example
    from kefu.nlu.encoder import UseEncoder
    from kefu.nlu.model_store import load_model, save_model
    from kefu.nlu.trainer import TrainOptions, train_intent_model

    encoder = UseEncoder()
    examples = [
        Example(t, ["arrival", "rate"][int(y)], f"t:{i}") for i, (t, y) in enumerate(zip(TEXTS, TARGETS, strict=True))
    ]
    options = TrainOptions(finetune=True, finetune_epochs=4, finetune_max_steps=12, held_out_fraction=0.34)
    model = train_intent_model(examples * 2, {encoder.name: encoder}, options=options)
    assert model.finetuned is not None and model.finetuned_neighbours is not None
    assert model.info["finetuned"] is True
    save_model(model, tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert again.finetuned_neighbours is not None and (tmp_path / "m" / "finetuned" / "head.pt").is_file()
    texts = ["my card still hasn't come", "what's the euro exchange rate"]
    vectors = {encoder.name: encoder.encode(texts)}
    assert [p.labels[0] for p in again.predict_batch(texts, vectors)] == ["arrival", "rate"]
