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
    loaded, embeddings = again.forward(probe)  # fp16 on disk, int8 linear layers when loaded for serving
    assert list(loaded.argmax(axis=1)) == [0, 1]
    # int8 turns each sentence vector by a few degrees (cosine 0.92-0.97 to the float vector, the same for
    # MiniLM before fine-tuning); the head's logits are cosines × 20, so a probability near the boundary
    # (0.7 after 18 steps on 12 texts) can move by 0.1 or more. Banking77 accuracy is unchanged by it.
    cosines = (embeddings * member.forward(probe)[1]).sum(axis=1)
    assert (cosines > 0.95).all(), cosines
    assert np.allclose(np.exp(loaded), np.exp(log_proba), atol=0.2)


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


def test_a_long_batch_is_split_into_parts_with_the_same_gradient() -> None:
    """Parts of at most ``budget`` tokens (the memory bound) add up to the whole batch's gradient."""
    import torch

    from kefu.nlu.finetuned import _backward, _load, _passes, minilm_path

    tokenizer, model = _load(minilm_path(), 2)
    model.eval()  # no dropout: both ways must give the same numbers
    head = torch.nn.Linear(model.config.hidden_size, 2)
    labels = torch.tensor(TARGETS)
    batch = np.arange(len(TEXTS))
    parts = _passes(tokenizer, TEXTS, batch, budget=24)
    assert len(parts) > 3 and np.array_equal(np.concatenate(parts), batch)
    assert len(_passes(tokenizer, TEXTS, batch)) == 1  # 12 short messages fit one pass
    assert len(_passes(tokenizer, TEXTS, batch, budget=1)) == len(TEXTS)  # never an empty part

    def gradient(budget: int) -> tuple[float, list[torch.Tensor]]:
        model.zero_grad(set_to_none=True)
        head.zero_grad(set_to_none=True)
        loss = _backward(tokenizer, model, head, TEXTS, labels, batch, budget)
        grads = [p.grad.clone() for p in [*model.parameters(), *head.parameters()] if p.grad is not None]
        return loss, grads

    whole_loss, whole = gradient(10_000)
    split_loss, split = gradient(24)
    assert abs(whole_loss - split_loss) < 1e-5
    assert len(whole) == len(split) > 10
    for a, b in zip(whole, split, strict=True):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-4)


def test_the_word_embedding_table_stays_frozen() -> None:
    """Half of MiniLM's weights: freezing them halves a step's cost; the layers above still learn."""
    from kefu.nlu.finetuned import _load, minilm_path

    original = _load(minilm_path(), 1)[1]
    member = FinetunedMember.fit(TEXTS, TARGETS, 2, epochs=2, batch_size=4, threads=2)
    tuned = member.model
    assert torch_equal(tuned.embeddings.word_embeddings.weight, original.embeddings.word_embeddings.weight)
    assert not torch_equal(
        tuned.encoder.layer[0].attention.self.query.weight, original.encoder.layer[0].attention.self.query.weight
    )
    unfrozen = FinetunedMember.fit(TEXTS, TARGETS, 2, epochs=2, batch_size=4, threads=2, freeze_embeddings=False)
    assert not torch_equal(unfrozen.model.embeddings.word_embeddings.weight, original.embeddings.word_embeddings.weight)


def test_forward_keeps_the_callers_order() -> None:
    """Texts are run sorted by length in batches; the rows come back in the order given."""
    member = FinetunedMember.fit(TEXTS, TARGETS, 2, epochs=1, batch_size=6, threads=2)
    texts = [TEXTS[i % len(TEXTS)] + " please" * (i % 7) for i in range(70)]  # > one inference batch
    log_proba, embeddings = member.forward(texts)
    one_by_one = [member.forward([t]) for t in texts[:5] + texts[-5:]]
    for row, (lp, emb) in zip([*range(5), *range(65, 70)], one_by_one, strict=True):
        assert np.allclose(log_proba[row], lp[0], atol=1e-4)
        assert np.allclose(embeddings[row], emb[0], atol=1e-5)
    assert embeddings.dtype == np.float32 and log_proba.shape == (70, 2)


def torch_equal(a: object, b: object) -> bool:
    import torch

    assert isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
    return bool(torch.equal(a, b))
