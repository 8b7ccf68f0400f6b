"""Training and caching a pack's intent and dialogue-act models, with the same trainer as
``kefu intent train``.

The cache key is the pack's training-data fingerprint, the encoder and the model format, so a changed
pack (or kefu) retrains once and an unchanged one loads in milliseconds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kefu.nlu.dataset import Example
from kefu.nlu.encoder import SentenceEncoder
from kefu.nlu.intent_model import IntentModel
from kefu.nlu.model_store import FORMAT_VERSION, ModelFormatError, load_model, save_model
from kefu.nlu.reload import write_pointer
from kefu.nlu.service import OTHER_ACT
from kefu.nlu.trainer import TrainOptions, train_intent_model
from kefu.packs.loader import Pack

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PackModels:
    intents: IntentModel
    acts: IntentModel
    folder: Path


def model_folder(pack: Pack, encoder: SentenceEncoder, cache_dir: Path) -> Path:
    return Path(cache_dir) / f"{pack.name}-{pack.fingerprint()}-{encoder.name}-f{FORMAT_VERSION}"


def _examples(texts: list[str], labels: list[str], source: str) -> list[Example]:
    return [Example(t, label, f"{source} #{i + 1}") for i, (t, label) in enumerate(zip(texts, labels, strict=True))]


def train_pack_models(
    pack: Pack, encoder: SentenceEncoder, folder: Path, progress: Callable[[str], None] | None = None
) -> PackModels:
    """Only the shared encoder: the pack is bilingual, and the server embeds each message once."""
    say = progress or (lambda _msg: None)
    options = TrainOptions(encoders=(encoder.name,), finetune=False)
    encoders = {encoder.name: encoder}
    texts, labels = pack.intent_training_set()
    say(f"training the intent model on {len(texts)} examples")
    intents = train_intent_model(_examples(texts, labels, f"{pack.name} intents"), encoders, options=options)
    act_texts, act_labels = pack.act_training_set(OTHER_ACT)
    say(f"training the dialogue-act model on {len(act_texts)} examples")
    acts = train_intent_model(_examples(act_texts, act_labels, f"{pack.name} acts"), encoders, options=options)
    extra = {"pack": pack.name, "fingerprint": pack.fingerprint()}
    save_model(intents, folder / "intents", extra)
    save_model(acts, folder / "acts", extra)
    write_pointer(folder.parent, pack.name, folder)  # a running server picks the new models up
    return PackModels(intents, acts, folder)


def load_pack_models(pack: Pack, encoder: SentenceEncoder, cache_dir: Path) -> PackModels:
    """The cached models; ``ModelFormatError`` when they are missing or stale."""
    folder = model_folder(pack, encoder, cache_dir)
    return PackModels(load_model(folder / "intents"), load_model(folder / "acts"), folder)


def load_or_train(
    pack: Pack, encoder: SentenceEncoder, cache_dir: Path, progress: Callable[[str], None] | None = None
) -> PackModels:
    try:
        return load_pack_models(pack, encoder, cache_dir)
    except ModelFormatError as exc:
        log.info("training %s models (%s)", pack.name, exc)
    return train_pack_models(pack, encoder, model_folder(pack, encoder, cache_dir), progress)
