"""Classification scores: accuracy, macro-F1, per-label table, and out-of-scope detection when present."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kefu.nlu.dataset import OOS_LABEL


@dataclass(frozen=True, slots=True)
class LabelScore:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Scores:
    examples: int
    accuracy: float
    macro_f1: float
    per_label: tuple[LabelScore, ...]
    in_scope_accuracy: float | None = None
    oos_recall: float | None = None
    oos_precision: float | None = None
    confusions: tuple[tuple[str, str, int], ...] = field(default=())  # (gold, predicted, count), most first

    def summary(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "examples": self.examples,
            "accuracy": round(self.accuracy, 4),
            "macro_f1": round(self.macro_f1, 4),
        }
        if self.in_scope_accuracy is not None:
            result["in_scope_accuracy"] = round(self.in_scope_accuracy, 4)
            result["oos_recall"] = round(self.oos_recall or 0.0, 4)
            result["oos_precision"] = round(self.oos_precision or 0.0, 4)
        return result


def score(gold: Sequence[str], predicted: Sequence[str]) -> Scores:
    """Macro-F1 is over the gold labels (a label never seen in the data does not count as an F1 of zero)."""
    if len(gold) != len(predicted) or not gold:
        raise ValueError("scoring needs the same, non-zero number of gold and predicted labels")
    labels = sorted(set(gold))
    true_pos = dict.fromkeys(labels, 0)
    gold_count = dict.fromkeys(labels, 0)
    predicted_count: dict[str, int] = {}
    confusions: dict[tuple[str, str], int] = {}
    for g, p in zip(gold, predicted, strict=True):
        gold_count[g] += 1
        predicted_count[p] = predicted_count.get(p, 0) + 1
        if g == p:
            true_pos[g] += 1
        else:
            confusions[(g, p)] = confusions.get((g, p), 0) + 1
    per_label = []
    for label in labels:
        tp = true_pos[label]
        precision = tp / predicted_count[label] if predicted_count.get(label) else 0.0
        recall = tp / gold_count[label]
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label.append(LabelScore(label, precision, recall, f1, gold_count[label]))
    correct = sum(true_pos.values())
    in_scope_accuracy = oos_recall = oos_precision = None
    if OOS_LABEL in gold_count:
        in_scope = [(g, p) for g, p in zip(gold, predicted, strict=True) if g != OOS_LABEL]
        in_scope_accuracy = sum(g == p for g, p in in_scope) / len(in_scope) if in_scope else 0.0
        oos_recall = true_pos[OOS_LABEL] / gold_count[OOS_LABEL]
        flagged = predicted_count.get(OOS_LABEL, 0)
        oos_precision = true_pos[OOS_LABEL] / flagged if flagged else 0.0
    ranked = sorted(confusions.items(), key=lambda item: (-item[1], item[0]))
    return Scores(
        examples=len(gold),
        accuracy=correct / len(gold),
        macro_f1=sum(s.f1 for s in per_label) / len(per_label),
        per_label=tuple(per_label),
        in_scope_accuracy=in_scope_accuracy,
        oos_recall=oos_recall,
        oos_precision=oos_precision,
        confusions=tuple((g, p, n) for (g, p), n in ranked),
    )
