"""Trains the moderation model (``model.json`` beside this file) from the hand-written ``examples_*.yaml`` and,
when it is there, the labelled dev set ``tests/data/guard/moderation_dev.jsonl`` (never the test set).

One logistic regression per category over the n-grams of the text as the lexicon prepares it. The threshold
of each category comes from out-of-fold probabilities (grouped, so that a line and the same line with a
greeting in front fall in one fold): the lowest probability, not under ``--floor``, above which no clean
example and few examples of other categories score, raised by a margin. The report gives the model's
out-of-fold figures (what it does on phrasings it has not seen) beside the lexicon's and both together; the
lexicon's are not out of fold: its terms were written with these examples in view.

Usage::

    python -m kefu.guard.lexicons.train [--dev PATH | --no-dev] [--c 16] [--folds 5] [--floor 0.7]
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from kefu.guard.lexicons import CATEGORIES, LANGUAGES, Lexicon
from kefu.guard.lexicons.model import MODEL_PATH, CategoryModel, ngrams, unblanked

DEV_PATH = Path(__file__).resolve().parents[3] / "tests" / "data" / "guard" / "moderation_dev.jsonl"
_MIN_DOCUMENT_FREQUENCY = 2
_MARGIN = 0.5  # log-odds added to each threshold found out of fold
_MAX_THRESHOLD = 0.995
_TRAILING_PUNCTUATION = re.compile(r"[\s!?.。！？…,，]+$")


@dataclass(frozen=True)
class Example:
    text: str
    categories: frozenset[str]
    origin: str  # "examples_zh.yaml", "dev"


def read_examples() -> list[Example]:
    """The hand-written examples: keys are a category, several joined with "+", or "clean"."""
    examples = []
    for language in LANGUAGES:
        name = f"examples_{language}.yaml"
        data = yaml.safe_load(files("kefu.guard.lexicons").joinpath(name).read_text(encoding="utf-8"))
        for key, texts in data.items():
            categories = frozenset() if key == "clean" else frozenset(key.split("+"))
            unknown = sorted(categories - set(CATEGORIES))
            if unknown:
                raise ValueError(f"{name}: unknown categories {unknown} in {key!r}")
            examples += [Example(str(text), categories, name) for text in texts]
    return examples


def read_dev(path: Path) -> list[Example]:
    rows = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return [Example(row["text"], frozenset(row["categories"]), "dev") for row in rows]


def groups(examples: Sequence[Example]) -> list[int]:
    """A group per phrasing: a line that contains a shorter line of the set (the same words with a greeting
    or punctuation added) joins that line's group, so cross-validation never sees one half of a pair."""
    cores = [_TRAILING_PUNCTUATION.sub("", e.text.casefold()) for e in examples]
    by_length = sorted(range(len(examples)), key=lambda i: len(cores[i]))
    group = list(range(len(examples)))
    for position, i in enumerate(by_length):
        for j in by_length[:position]:
            if cores[j] and cores[j] in cores[i] and len(cores[j]) >= 0.5 * len(cores[i]):
                group[i] = group[j]
                break
    return group


class Features:
    """Binary n-gram features scaled by 1/sqrt(n-grams in the text), over a vocabulary fixed at construction."""

    def __init__(self, prepared: Sequence[str]) -> None:
        counts: dict[str, int] = {}
        for text in prepared:
            for gram in ngrams(text):
                counts[gram] = counts.get(gram, 0) + 1
        self.vocabulary = sorted(g for g, n in counts.items() if n >= _MIN_DOCUMENT_FREQUENCY)
        self._index = {g: i for i, g in enumerate(self.vocabulary)}

    def matrix(self, prepared: Sequence[str]) -> Any:
        from scipy.sparse import csr_matrix  # training only: the running service never imports scipy

        rows, cols, values = [], [], []
        for row, text in enumerate(prepared):
            grams = ngrams(text)
            scale = 1.0 / math.sqrt(len(grams))
            for gram in grams:
                if gram in self._index:
                    rows.append(row)
                    cols.append(self._index[gram])
                    values.append(scale)
        return csr_matrix((values, (rows, cols)), shape=(len(prepared), len(self.vocabulary)))


def fit(prepared: Sequence[str], labels: npt.NDArray[np.int_], c: float) -> tuple[list[str], Any, Any]:
    """(vocabulary, weights n-grams x categories, biases) of one-vs-rest logistic regressions."""
    from sklearn.linear_model import LogisticRegression

    features = Features(prepared)
    x = features.matrix(prepared)
    weights = np.zeros((len(features.vocabulary), len(CATEGORIES)), dtype=np.float32)
    bias = np.zeros(len(CATEGORIES))
    for k in range(len(CATEGORIES)):
        if labels[:, k].min() == labels[:, k].max():  # no example of it, or nothing else: a constant answer
            bias[k] = 10.0 if labels[0, k] else -10.0
            continue
        fitted = LogisticRegression(C=c, class_weight="balanced", solver="liblinear", max_iter=2000, random_state=0)
        fitted.fit(x, labels[:, k])
        weights[:, k] = fitted.coef_[0]
        bias[k] = fitted.intercept_[0]
    return features.vocabulary, weights, bias


def out_of_fold(
    prepared: Sequence[str], labels: npt.NDArray[np.int_], group: Sequence[int], c: float, folds: int
) -> npt.NDArray[np.float64]:
    """Each example's probabilities from a model trained without its group."""
    from sklearn.model_selection import GroupKFold

    probabilities = np.zeros(labels.shape)
    for train, held_out in GroupKFold(n_splits=folds).split(prepared, groups=group):
        vocabulary, weights, bias = fit([prepared[i] for i in train], labels[train], c)
        model = CategoryModel(CATEGORIES, vocabulary, weights, bias, [1.0] * len(CATEGORIES))
        for i in held_out:
            probabilities[i] = model.probabilities(prepared[i])
    return probabilities


def choose_thresholds(
    probabilities: npt.NDArray[np.float64],
    labels: npt.NDArray[np.int_],
    floor: float,
    precision: float,
    margin: float = _MARGIN,
) -> list[float]:
    """Per category, the lowest threshold (not under ``floor``) above which no clean example scores and at least
    ``precision`` of what scores belongs to the category, then ``margin`` higher in log-odds: the highest clean
    score of a few hundred examples understates what unseen clean messages reach."""
    clean = labels.sum(axis=1) == 0
    thresholds = []
    for k in range(labels.shape[1]):
        scores = probabilities[:, k]
        chosen = _MAX_THRESHOLD
        for t in sorted({floor, *(round(float(s), 4) + 1e-4 for s in scores if s >= floor)}):
            above = scores >= t
            if not above.any():
                break
            if not (above & clean).any() and labels[above, k].mean() >= precision:
                chosen = t
                break
        raised = 1.0 / (1.0 + math.exp(-(math.log(chosen / (1.0 - chosen)) + margin)))
        thresholds.append(round(min(raised, _MAX_THRESHOLD), 4))
    return thresholds


def report(
    examples: Sequence[Example],
    probabilities: npt.NDArray[np.float64],
    thresholds: Sequence[float],
    lexicon: Lexicon,
) -> None:
    """Out-of-fold figures on the dev rows (when trained with them) and on the hand-written examples."""
    for origin in ("dev", "examples"):
        chosen = [i for i, e in enumerate(examples) if (e.origin == "dev") == (origin == "dev")]
        if not chosen:
            continue
        for name, use_lexicon, use_model in (("model", False, True), ("lexicon", True, False), ("both", True, True)):
            found: dict[str, list[int]] = {c: [0, 0] for c in CATEGORIES}
            clean = clean_flagged = unclean = unclean_flagged = 0
            for i in chosen:
                got: set[str] = set()
                if use_lexicon:
                    got.update(lexicon.scan(examples[i].text)[0])
                if use_model:
                    got.update(c for k, c in enumerate(CATEGORIES) if probabilities[i, k] >= thresholds[k])
                gold = examples[i].categories
                for c in gold:
                    found[c][0] += c in got
                    found[c][1] += 1
                clean += not gold
                clean_flagged += not gold and bool(got)
                unclean += bool(gold)
                unclean_flagged += bool(gold) and bool(got)
            recall = " ".join(f"{c} {n / max(1, total):.2f}" for c, (n, total) in found.items())
            print(
                f"  {origin:8} {name:7} flagged {unclean_flagged / max(1, unclean):.3f} "
                f"clean flagged {clean_flagged / max(1, clean):.3f} | {recall}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev", type=Path, default=DEV_PATH, help="labelled dev set to learn from too")
    parser.add_argument("--no-dev", action="store_true", help="hand-written examples only")
    parser.add_argument("--c", type=float, default=16.0, help="inverse regularisation strength")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--floor", type=float, default=0.7, help="no threshold below this probability")
    parser.add_argument("--precision", type=float, default=0.9, help="out-of-fold precision each threshold keeps")
    parser.add_argument("--out", type=Path, default=MODEL_PATH)
    args = parser.parse_args()

    examples = read_examples()
    if not args.no_dev and args.dev.exists():
        examples += read_dev(args.dev)
    lexicon = Lexicon()
    prepared = [unblanked(lexicon.prepare(e.text)) for e in examples]
    labels = np.array([[int(c in e.categories) for c in CATEGORIES] for e in examples])

    probabilities = out_of_fold(prepared, labels, groups(examples), args.c, args.folds)
    thresholds = choose_thresholds(probabilities, labels, args.floor, args.precision)
    vocabulary, weights, bias = fit(prepared, labels, args.c)
    keep = np.abs(weights).max(axis=1) >= 0.01  # n-grams that barely move any category are left out
    model = CategoryModel(
        CATEGORIES, [g for g, k in zip(vocabulary, keep, strict=True) if k], weights[keep], bias, thresholds
    )
    args.out.write_text(model.to_json(), encoding="utf-8")

    print(f"{len(examples)} examples, {int(keep.sum())} n-grams -> {args.out}")
    print("thresholds: " + ", ".join(f"{c} {t}" for c, t in zip(CATEGORIES, thresholds, strict=True)))
    print("out of fold:")
    report(examples, probabilities, thresholds, lexicon)


if __name__ == "__main__":
    main()
