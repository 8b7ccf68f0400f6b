"""An evaluation report folder: scores as JSON, the per-label table as CSV, the mistakes as JSONL and a
confusion picture (PNG) of the labels that are confused most."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from kefu.nlu.metrics import Scores

MAX_PICTURE_LABELS = 40  # beyond this a confusion matrix is unreadable: show the most confused labels


def write_report(
    folder: Path, scores: Scores, texts: Sequence[str], gold: Sequence[str], predicted: Sequence[str]
) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "scores.json", folder / "per_label.csv", folder / "errors.jsonl", folder / "confusion.png"]
    summary = scores.summary() | {"top_confusions": [list(c) for c in scores.confusions[:20]]}
    written[0].write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    with written[1].open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "precision", "recall", "f1", "support"])
        for row in scores.per_label:
            writer.writerow([row.label, f"{row.precision:.4f}", f"{row.recall:.4f}", f"{row.f1:.4f}", row.support])
    with written[2].open("w", encoding="utf-8") as handle:
        for text, g, p in zip(texts, gold, predicted, strict=True):
            if g != p:
                handle.write(json.dumps({"text": text, "label": g, "predicted": p}, ensure_ascii=False) + "\n")
    _confusion_picture(written[3], gold, predicted, scores)
    return written


def _confusion_picture(path: Path, gold: Sequence[str], predicted: Sequence[str], scores: Scores) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Chinese labels (CrossWOZ's acts) need a CJK font; Noto comes with the browser test's packages.
    plt.rcParams["font.sans-serif"] = ["Noto Sans CJK SC", "Noto Sans CJK JP", "DejaVu Sans"]

    labels = sorted(set(gold) | set(predicted))
    if len(labels) > MAX_PICTURE_LABELS:
        confused: list[str] = []
        for g, p, _n in scores.confusions:
            for label in (g, p):
                if label not in confused:
                    confused.append(label)
        labels = sorted(confused[:MAX_PICTURE_LABELS]) or labels[:MAX_PICTURE_LABELS]
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)))
    for g, p in zip(gold, predicted, strict=True):
        if g in index and p in index:
            matrix[index[g], index[p]] += 1
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    size = max(6.0, 0.28 * len(labels) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    axes.imshow(share, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    axes.set_yticks(range(len(labels)), labels, fontsize=7)
    axes.set_xlabel("predicted")
    axes.set_ylabel("gold")
    title = f"accuracy {scores.accuracy:.1%}, macro-F1 {scores.macro_f1:.3f}"
    if len(set(gold) | set(predicted)) > len(labels):
        title += f" ({len(labels)} most confused labels)"
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
