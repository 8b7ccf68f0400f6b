"""A character n-gram linear model per moderation category: the second signal beside the lexicons.

Lexicon terms are precise and explainable but only match what someone wrote down; this model scores the
character 1- to 3-grams of the normalised text (what the lexicon matches on, with its allow-listed look-alikes
blanked out), one logistic regression per category, so a new phrasing that shares enough pieces with known
examples still scores ("外地人都不讲卫生", "thinking of ways to not be here anymore"). It flags a category only
above a high probability, chosen per category when training so that clean complaints stay clean. A message
longer than a sentence or two is scored sentence by sentence, the worst counting.

Trained offline by ``python -m kefu.guard.lexicons.train`` on the hand-written ``examples_*.yaml`` beside this
file (plus the labelled dev set when it is there) and shipped as ``model.json``: the n-grams, one weight per
n-gram and category, a bias and a threshold per category. Scoring is a set intersection and a sum, numpy only.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

MODEL_PATH = Path(__file__).with_name("model.json")
NGRAM_SIZES = (1, 2, 3)
WINDOW = 160  # a longer message is scored sentence by sentence (cut at this length), the worst counts
_SENTENCE = re.compile(rf"[^。！？!?.\n]{{1,{WINDOW}}}[。！？!?.\n]*")
_BLANKED = re.compile("\x00+")  # the lexicon's allow-listed look-alikes: one space each
_WORDLIKE = re.compile("[\u3400-\u9fff]{2}|[a-z]{3}")


def unblanked(prepared: str) -> str:
    """The lexicon's prepared text with each blanked look-alike one space: what the model reads."""
    return _BLANKED.sub(" ", prepared)


def ngrams(text: str) -> set[str]:
    """Distinct character n-grams of the prepared text, padded with a space at each end."""
    padded = f" {text} "
    return {padded[i : i + n] for n in NGRAM_SIZES for i in range(len(padded) - n + 1)}


@dataclass(frozen=True)
class ModelVerdict:
    categories: tuple[str, ...]  # above their thresholds, in the model's order
    evidence: tuple[str, ...]  # per category, its strongest n-gram in the text ("model:hate~有病")


class CategoryModel:
    """One-vs-rest logistic regression over binary n-gram features scaled by 1/sqrt(n-grams in the text)."""

    def __init__(
        self,
        categories: Sequence[str],
        vocabulary: Sequence[str],
        weights: npt.NDArray[np.float32],  # n-grams x categories
        bias: Sequence[float],
        thresholds: Sequence[float],
    ) -> None:
        if weights.shape != (len(vocabulary), len(categories)):
            raise ValueError(
                f"weights of shape {weights.shape} for {len(vocabulary)} n-grams, {len(categories)} categories"
            )
        if not len(bias) == len(thresholds) == len(categories):
            raise ValueError("one bias and one threshold per category")
        self.categories = tuple(categories)
        self._index: Mapping[str, int] = {gram: i for i, gram in enumerate(vocabulary)}
        self._vocabulary = tuple(vocabulary)
        self._weights = weights
        self._weights.flags.writeable = False  # shared between moderators (``load_model``)
        self._bias = np.asarray(bias, dtype=np.float64)
        self.thresholds = np.asarray(thresholds, dtype=np.float64)

    @classmethod
    def load(cls, path: Path = MODEL_PATH) -> CategoryModel:
        data = json.loads(path.read_text(encoding="utf-8"))
        if tuple(data["ngram_sizes"]) != NGRAM_SIZES:
            raise ValueError(f"{path}: trained for n-gram sizes {data['ngram_sizes']}, not {NGRAM_SIZES}")
        weights = np.asarray(data["weights"], dtype=np.float32).reshape(len(data["vocabulary"]), -1)
        return cls(data["categories"], data["vocabulary"], weights, data["bias"], data["thresholds"])

    def to_json(self) -> str:
        payload = {
            "ngram_sizes": list(NGRAM_SIZES),
            "categories": list(self.categories),
            "bias": [round(float(b), 4) for b in self._bias],
            "thresholds": [round(float(t), 4) for t in self.thresholds],
            "vocabulary": list(self._vocabulary),
            "weights": [round(float(w), 3) for w in self._weights.ravel()],
        }
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")) + "\n"

    def probabilities(self, prepared: str) -> npt.NDArray[np.float64]:
        """Per category, the probability that the text (as ``Lexicon.prepare`` gives it) belongs to it; the
        worst sentence's of a long text."""
        text = unblanked(prepared)
        # The examples it learnt from are a sentence or two: a long text's neighbours would dilute a bad one.
        pieces = [text] if len(text) <= WINDOW else [m.group().strip() for m in _SENTENCE.finditer(text)]
        rows: list[int] = []
        starts, scales = [], []
        for piece in pieces:
            grams = ngrams(piece)
            found = self._rows(grams)
            if found:  # a piece without a known n-gram scores the bias alone, never more than the others
                starts.append(len(rows))
                scales.append(1.0 / math.sqrt(len(grams)))
                rows += found
        logits = self._bias.copy()
        if rows:  # one sum per piece in one call; the worst piece per category counts
            sums = np.add.reduceat(self._weights[rows], starts, axis=0, dtype=np.float64)
            worst = (sums * np.asarray(scales)[:, None]).max(axis=0)
            logits += worst if len(starts) == len(pieces) else np.maximum(worst, 0.0)
        probabilities: npt.NDArray[np.float64] = 1.0 / (1.0 + np.exp(-np.clip(logits, -30.0, 30.0)))
        return probabilities

    def check(self, prepared: str, *, stricter: bool = False) -> ModelVerdict:
        """The categories above their thresholds; ``stricter``: above halfway from the threshold to certainty."""
        probabilities = self.probabilities(prepared)
        thresholds = (1.0 + self.thresholds) / 2 if stricter else self.thresholds
        above = [i for i in range(len(self.categories)) if probabilities[i] >= thresholds[i]]
        if not above:
            return ModelVerdict((), ())
        # The evidence: the word-like n-gram (two Chinese characters, three letters) that pushed each category
        # furthest, so that a reviewer sees what the model saw.
        rows = [r for r in self._rows(ngrams(unblanked(prepared)[:2000])) if _WORDLIKE.search(self._vocabulary[r])]
        evidence = []
        for i in above:
            gram = self._vocabulary[rows[int(np.argmax(self._weights[rows, i]))]].strip() if rows else ""
            evidence.append(f"model:{self.categories[i]}~{gram}"[:40])
        return ModelVerdict(tuple(self.categories[i] for i in above), tuple(evidence))

    def _rows(self, grams: set[str]) -> list[int]:
        lookup = self._index.get
        return [row for gram in grams if (row := lookup(gram)) is not None]


@functools.lru_cache(maxsize=4)
def load_model(path: Path = MODEL_PATH) -> CategoryModel:
    """The model at ``path``, read once per process: it never changes after loading."""
    return CategoryModel.load(path)
