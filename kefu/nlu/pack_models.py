"""Training and caching a pack's intent and dialogue-act classifiers.

The cache key is the pack's training-data fingerprint, the encoder and the model format, so a changed
pack (or kefu) retrains once and an unchanged one loads in milliseconds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kefu.nlu.classifier import FORMAT_VERSION, ModelFormatError, TextClassifier
from kefu.nlu.encoder import SentenceEncoder
from kefu.nlu.service import OTHER_ACT
from kefu.packs.loader import Pack

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PackModels:
    intents: TextClassifier
    acts: TextClassifier
    folder: Path


def model_folder(pack: Pack, encoder: SentenceEncoder, cache_dir: Path) -> Path:
    return Path(cache_dir) / f"{pack.name}-{pack.fingerprint()}-{encoder.name}-f{FORMAT_VERSION}"


def train_pack_models(
    pack: Pack, encoder: SentenceEncoder, folder: Path, progress: Callable[[str], None] | None = None
) -> PackModels:
    say = progress or (lambda _msg: None)
    texts, labels = pack.intent_training_set()
    say(f"embedding {len(texts)} intent examples")
    intent_vectors = encoder.encode(texts)
    say("training the intent classifier")
    intents = TextClassifier.train(texts, labels, encoder, embeddings=intent_vectors)
    act_texts, act_labels = pack.act_training_set(OTHER_ACT)
    say(f"training the dialogue-act classifier on {len(act_texts)} examples")
    acts = TextClassifier.train(act_texts, act_labels, encoder)
    intents.save(folder / "intents", {"pack": pack.name, "fingerprint": pack.fingerprint(), "examples": len(texts)})
    acts.save(folder / "acts", {"pack": pack.name, "fingerprint": pack.fingerprint(), "examples": len(act_texts)})
    return PackModels(intents, acts, folder)


def load_or_train(
    pack: Pack, encoder: SentenceEncoder, cache_dir: Path, progress: Callable[[str], None] | None = None
) -> PackModels:
    folder = model_folder(pack, encoder, cache_dir)
    try:
        return PackModels(
            TextClassifier.load(folder / "intents", encoder),
            TextClassifier.load(folder / "acts", encoder),
            folder,
        )
    except ModelFormatError as exc:
        log.info("training %s models (%s)", pack.name, exc)
    return train_pack_models(pack, encoder, folder, progress)
