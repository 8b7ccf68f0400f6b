"""Swapping in a retrained intent model while the server runs.

The watched source is either an operator's model folder (``KEFU_INTENT_MODEL``; its ``meta.json`` is
written last, so its time stamp marks a finished model) or the pack's ``<pack>.current`` pointer that
``kefu pack prepare`` rewrites after training. A model whose labels the pack cannot route is refused and
the running one kept: a bad retrain never takes the bot down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kefu.nlu.dataset import OOS_LABEL
from kefu.nlu.encoder import make_encoder
from kefu.nlu.intent_model import IntentModel
from kefu.nlu.model_store import ModelFormatError, load_model, model_stamp
from kefu.nlu.service import NluService

log = logging.getLogger(__name__)


def pointer_path(cache_dir: Path, pack_name: str) -> Path:
    return Path(cache_dir) / f"{pack_name}.current"


def write_pointer(cache_dir: Path, pack_name: str, folder: Path) -> None:
    path = pointer_path(cache_dir, pack_name)
    staging = path.with_suffix(".tmp")
    staging.write_text(folder.name, encoding="utf-8")
    staging.replace(path)


@dataclass
class ModelSource:
    """Where models come from: one intent-model folder, or a pack pointer naming intents/ and acts/."""

    folder: Path | None = None
    pointer: Path | None = None

    def stamp(self) -> float | None:
        if self.folder is not None:
            return model_stamp(self.folder)
        if self.pointer is not None:
            try:
                return self.pointer.stat().st_mtime
            except OSError:
                return None
        return None

    threads: int = 1

    def load(self) -> tuple[IntentModel, IntentModel | None]:
        if self.folder is not None:
            return load_model(self.folder, self.threads), None
        assert self.pointer is not None
        folder = self.pointer.parent / self.pointer.read_text(encoding="utf-8").strip()
        return load_model(folder / "intents"), load_model(folder / "acts")


class ModelReloader:
    def __init__(
        self,
        nlu: NluService,
        source: ModelSource,
        known_intents: set[str],
        *,
        interval_s: float,
        on_reload: Callable[[bool], None] | None = None,
    ) -> None:
        self.nlu = nlu
        self.source = source
        self.known = known_intents | {OOS_LABEL}
        self.interval_s = interval_s
        self.on_reload = on_reload or (lambda _ok: None)
        self.stamp = source.stamp()
        self.reloads = 0

    def check(self, model: IntentModel) -> None:
        unknown = sorted(set(model.labels) - self.known)
        if unknown:
            raise ModelFormatError(f"labels the pack does not have: {', '.join(unknown[:5])}")

    def reload_if_changed(self) -> bool:
        """Blocking (run it in a thread): True when a new model was swapped in."""
        stamp = self.source.stamp()
        if stamp is None or stamp == self.stamp:
            return False
        self.stamp = stamp
        try:
            intents, acts = self.source.load()
            self.check(intents)
            for name in intents.encoders:
                if name != self.nlu.encoder.name and name not in self.nlu.extra_encoders:
                    self.nlu.extra_encoders[name] = make_encoder(name)
        except (ModelFormatError, OSError, ValueError) as exc:
            log.error("kept the running intent model: the retrained one cannot be used (%s)", exc)
            self.on_reload(False)
            return False
        self.nlu.intents = intents
        if acts is not None:
            self.nlu.acts = acts
        self.reloads += 1
        log.info("swapped in a retrained intent model (%d labels)", len(intents.labels))
        self.on_reload(True)
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await asyncio.to_thread(self.reload_if_changed)
